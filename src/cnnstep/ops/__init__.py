"""The step-by-step operations: NumPy in, NumPy out, no state.

Lives here: ``geometry`` (hyperparameters, shapes and every argument check), ``checks`` and
``shapes`` (argument checks and output shapes the layers share), ``windows`` (the one window
primitive that convolution and pooling share), ``padding``, ``im2col`` (window matrices),
``conv`` and ``conv_grads``, ``wide`` (convolution with few input channels), ``pool`` and
``pool_taps`` (max pooling that keeps each maximum's tap), ``workspace`` (the scratch-memory
budget), ``functional`` (the eight functions of the course, vectorized), ``reference`` (the same
eight as plain loops), ``published`` (the course's published cases, as data), ``threads`` (how
many threads one op may use), and ``onednn``, ``onednn_pool`` and ``dnnl_api`` (oneDNN's
convolution and max-pooling kernels for the layers, the optional ``onednn`` extra, loaded
through ctypes).

May import: NumPy and modules of this folder only (plus ``cnnstep.errors``; threadpoolctl,
optional, to hold BLAS to one thread while an op runs its parts side by side; and oneDNN's shared
library, optional, loaded on first use). Every other room builds on this one; this one builds on
none.
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
from cnnstep.ops.threads import get_num_threads, set_num_threads
from cnnstep.ops.workspace import get_workspace_budget, set_workspace_budget, workspace_budget

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
