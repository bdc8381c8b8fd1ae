"""The argument checks of the functions that take no window: ``conv_single_step``,
``distribute_value`` and the pooling ``mode``. Shared by the fast functions and the loops, so
both raise the same errors.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from cnnstep.ops.geometry import Pair, as_array, compute_dtype


def single_step_args(
    a_slice_prev: Any, W: Any, b: Any, func: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.dtype[Any]]:
    """Checked ``(a_slice_prev, W, b, dtype)`` of ``conv_single_step``."""
    a = as_array(a_slice_prev, "a_slice_prev", func)
    W = as_array(W, "W", func)
    b = as_array(b, "b", func)
    if a.shape != W.shape:
        raise ValueError(
            f"{func}: a_slice_prev and W must have the same shape (f, f, n_C_prev), "
            f"got a_slice_prev {a.shape} and W {W.shape}"
        )
    if b.size != 1:
        raise ValueError(f"{func}: b must hold one number (shape (1, 1, 1)), got shape {b.shape}")
    return a, W, b, compute_dtype(func, a_slice_prev=a, W=W, b=b)


def distribute_args(dz: Any, shape: Any, func: str) -> tuple[Any, Pair, np.dtype[Any]]:
    """Checked ``(dz, (n_H, n_W), dtype)`` of ``distribute_value``; ``dz`` as a NumPy scalar."""
    dz_arr = as_array(dz, "dz", func)
    if dz_arr.size != 1:
        raise ValueError(f"{func}: dz must be a single number, got shape {dz_arr.shape}")
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"{func}: shape must be a pair (n_H, n_W), got {shape!r}")
    for k, n in enumerate(shape):
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"{func}: shape[{k}] must be a positive integer, got {n!r}")
    return dz_arr.reshape(-1)[0], (int(shape[0]), int(shape[1])), compute_dtype(func, dz=dz_arr)


POOL_MODES = ("max", "average")


def check_pool_mode(mode: Any, func: str) -> str:
    """``mode`` if it is ``"max"`` or ``"average"``; ``ValueError`` otherwise."""
    if not isinstance(mode, str) or mode not in POOL_MODES:
        raise ValueError(f"{func}: mode must be 'max' or 'average', got {mode!r}")
    return mode
