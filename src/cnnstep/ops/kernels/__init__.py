"""NumPy's kernels: the vectorized convolution and pooling behind the eight functions.

Lives here: ``windows`` (the one window primitive that convolution and pooling share, padded
blocks of rows), ``im2col`` (window matrices built block by block, sums of products),
``conv`` and ``conv_grads`` (convolution and its gradients), ``wide`` (convolution with few
input channels), ``pool`` and ``pool_taps`` (pooling; max pooling that keeps each maximum's
tap), ``workspace`` (the scratch-memory budget: blocks of rows) and ``threads`` (how many
threads one op may use: batch parts).

They stay under :mod:`cnnstep.ops` because the eight functions are their public face: moving
them above would make ``ops`` import upward. Native kernels (oneDNN) are in
:mod:`cnnstep.backends`, which builds on these.

May import: NumPy, :mod:`cnnstep.ops` (the contract: geometry, checks, padding), this folder,
the top-level modules (``config``, ``errors``) and threadpoolctl (optional: BLAS held to one
thread while an op runs its parts side by side).
"""
