"""The eight step-by-step functions written as plain loops (kept here for learners' imports).

``from cnnstep import reference`` and ``import cnnstep.reference`` keep working; the code
lives in :mod:`cnnstep.ops.reference`.
"""

from cnnstep.ops.reference import (
    conv_backward,
    conv_forward,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    zero_pad,
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
]
