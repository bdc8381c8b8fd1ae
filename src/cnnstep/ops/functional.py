"""The eight step-by-step functions, vectorized: stateless, NumPy in, NumPy out.

Same names, arguments, caches and results as the classic loop versions (see
:mod:`cnnstep.reference` for those), plus per-axis stride and padding, ``"same"``/``"valid"``,
dilation, non-square windows, padded pooling and float32.
"""

from cnnstep.ops.kernels.conv import conv_backward, conv_forward, conv_single_step
from cnnstep.ops.kernels.pool import (
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
)
from cnnstep.ops.padding import zero_pad

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
]
