"""The step-by-step operations: NumPy in, NumPy out, no state.

The contract: ``geometry`` (hyperparameters, shapes and every argument check), ``checks`` and
``shapes`` (argument checks and output shapes the layers share) and ``padding``. The course's
faces: ``functional`` (the eight functions of the course, vectorized), ``reference`` (the same
eight as plain loops) and ``published`` (the course's published cases, as data). The NumPy
kernels the eight functions are built on: ``kernels/`` (windows, im2col, convolution and its
gradients, pooling, the workspace budget and op threads). ``onednn`` keeps the old switch
:func:`cnnstep.ops.onednn.set_enabled`; oneDNN's kernels are in :mod:`cnnstep.backends`.

May import: NumPy, this folder and the top-level modules (``config``, ``errors``); threadpoolctl,
optional, to hold BLAS to one thread while an op runs its parts side by side. Every other room
builds on this one; this one builds on none.
"""

from cnnstep.ops.functional import (
    conv_backward,
    conv_forward,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    zero_pad,
)
from cnnstep.ops.kernels.threads import get_num_threads, set_num_threads
from cnnstep.ops.kernels.workspace import (
    get_workspace_budget,
    set_workspace_budget,
    workspace_budget,
)

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    "get_num_threads",
    "set_num_threads",
    "get_workspace_budget",
    "set_workspace_budget",
    "workspace_budget",
]
