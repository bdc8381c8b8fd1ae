"""cnnstep: convolutional networks in NumPy, step by step and fast.

The eight step-by-step functions are importable from here:

    from cnnstep import conv_forward, conv_backward, pool_forward, pool_backward

:mod:`cnnstep.reference` holds the same eight written as plain loops, for reading.
"""

from cnnstep.budget import memory_budget, set_memory_budget
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
from cnnstep.ops.kernels.workspace import (
    get_workspace_budget,
    set_workspace_budget,
    workspace_budget,
)

__version__ = "0.1.0"

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    "get_workspace_budget",
    "set_workspace_budget",
    "workspace_budget",
    "memory_budget",
    "set_memory_budget",
]

# --- training API (issue 4) ------------------------------------------------------------------
from cnnstep.nn.architectures import build_architecture  # noqa: E402
from cnnstep.nn.gradcheck import gradient_check  # noqa: E402
from cnnstep.nn.layers import (  # noqa: E402
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)
from cnnstep.nn.model import Sequential, load_model, save_model  # noqa: E402
from cnnstep.nn.optimizers import SGD, Adam  # noqa: E402

__all__ += [
    "gradient_check",
    "Layer",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "ReLU",
    "Flatten",
    "Dense",
    "Dropout",
    "BatchNorm2D",
    "ZeroPadding2D",
    "Sigmoid",
    "Tanh",
    "LeakyReLU",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "Residual",
    "Sequential",
    "build_architecture",
    "SGD",
    "Adam",
    "load_model",
    "save_model",
]
# --- end of training API -----------------------------------------------------------------------
