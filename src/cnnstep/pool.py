"""Max and average pooling, vectorized over examples, positions and channels.

Both passes walk the ``f_h x f_w`` taps of the window view (a handful of whole-array operations)
instead of the output cells. Max pooling routes each window's gradient to its *first* maximum in
row-major order, as the major frameworks do, so gradients keep their sum when values tie.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.geometry import (
    WindowGeometry,
    as_array,
    check_pool_mode,
    compute_dtype,
    distribute_args,
    pool_counts,
    pool_geometry,
    unpack_cache,
)
from cnnstep.padding import crop_hw, pad_hw
from cnnstep.windows import window_view

PoolCache = tuple[np.ndarray, dict]


def create_mask_from_window(x: np.ndarray) -> np.ndarray:
    """Where the maximum of a window is.

    Parameters
    ----------
    x : ndarray of shape (f, f)
        One window of one channel.

    Returns
    -------
    mask : ndarray of shape (f, f), bool
        True at the first maximum in row-major order, False elsewhere. With ties only one cell
        is marked, so routing a gradient through the mask keeps its sum.
    """
    x = as_array(x, "x", "create_mask_from_window")
    if x.size == 0:
        raise ValueError(f"create_mask_from_window: x must not be empty, got shape {x.shape}")
    mask = np.zeros(x.shape, dtype=bool)
    mask.flat[np.argmax(x)] = True
    return mask


def distribute_value(dz: Any, shape: tuple[int, int]) -> np.ndarray:
    """Spread a gradient evenly over a window (the backward pass of one average).

    Parameters
    ----------
    dz : float
        Gradient arriving at one averaged output cell.
    shape : (n_H, n_W)
        Window shape.

    Returns
    -------
    a : ndarray of shape (n_H, n_W)
        ``dz / (n_H * n_W)`` in every cell, so ``a.sum() == dz``.
    """
    dz, (n_H, n_W), dtype = distribute_args(dz, shape, "distribute_value")
    return np.full((n_H, n_W), dz / (n_H * n_W), dtype=dtype)


def _pool_inputs(A_prev: Any, hparameters: Any, mode: Any, func: str):
    mode = check_pool_mode(mode, func)
    A_in = as_array(A_prev, "A_prev", func)
    geom = pool_geometry(A_in, hparameters, func)
    dtype = compute_dtype(func, A_prev=A_in)
    return A_in, geom, dtype, mode


def _max_windows(A_pad: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    view = window_view(A_pad, geom)
    out = view[:, :, :, 0, 0, :].copy()
    for i in range(geom.kernel[0]):
        for j in range(geom.kernel[1]):
            if i or j:
                np.maximum(out, view[:, :, :, i, j, :], out=out)
    return out


def _sum_windows(A_pad: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    view = window_view(A_pad, geom)
    out = view[:, :, :, 0, 0, :].copy()
    for i in range(geom.kernel[0]):
        for j in range(geom.kernel[1]):
            if i or j:
                out += view[:, :, :, i, j, :]
    return out


def _divisor(geom: WindowGeometry, dtype: np.dtype) -> np.ndarray | float:
    """Real cells per window: padded cells do not count towards an average."""
    if not geom.has_pad:
        return float(geom.kernel[0] * geom.kernel[1])
    return pool_counts(geom).astype(dtype)[None, :, :, None]


def pool_forward(
    A_prev: np.ndarray, hparameters: dict, mode: str = "max"
) -> tuple[np.ndarray, PoolCache]:
    """Forward pass of a pooling layer.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
        Input.
    hparameters : dict
        ``"f"``: window size, int or (f_h, f_w); ``"stride"``: int or (s_h, s_w); optional
        ``"pad"`` (default 0): int, pair, ((top, bottom), (left, right)), ``"same"`` or ``"valid"``.
        Max pooling never picks a padded cell; average pooling divides by the real cells only.
    mode : {"max", "average"}

    Returns
    -------
    A : ndarray of shape (m, n_H, n_W, n_C)
        ``n_H = floor((n_H_prev + top + bottom - f_h) / s_h) + 1``, same for ``n_W``.
    cache : tuple
        ``(A_prev, hparameters)`` as given, for :func:`pool_backward`.
    """
    A_in, geom, dtype, mode = _pool_inputs(A_prev, hparameters, mode, "pool_forward")
    if mode == "max":
        A = _max_windows(pad_hw(A_in, geom.pad, value=-np.inf, dtype=dtype), geom)
    else:
        A = _sum_windows(pad_hw(A_in, geom.pad, dtype=dtype), geom)
        A /= _divisor(geom, dtype)
    return A, (A_prev, hparameters)


def pool_backward(dA: np.ndarray, cache: PoolCache, mode: str = "max") -> np.ndarray:
    """Backward pass of a pooling layer.

    Parameters
    ----------
    dA : ndarray of shape (m, n_H, n_W, n_C)
        Gradient with respect to the output ``A`` of :func:`pool_forward`.
    cache : tuple
        ``(A_prev, hparameters)`` from :func:`pool_forward`.
    mode : {"max", "average"}
        Must match the forward pass.

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
        max: each window's gradient goes to its first maximum; average: spread evenly over the
        window's real cells. Overlapping windows add up; uncovered cells get exactly 0.
    """
    func = "pool_backward"
    cache = unpack_cache(cache, ("A_prev", "hparameters"), "pool_forward", func)
    A_in, geom, dtype, mode = _pool_inputs(cache[0], cache[1], mode, func)
    dA = as_array(dA, "dA", func)
    expected = (A_in.shape[0], *geom.out_hw, A_in.shape[3])
    if dA.shape != expected:
        raise ValueError(f"{func}: dA must have the shape of A, {expected}, got shape {dA.shape}")
    dtype = np.result_type(dtype, compute_dtype(func, dA=dA))
    dA = dA.astype(dtype, copy=False)
    f_h, f_w = geom.kernel
    if mode == "max":
        A_pad = pad_hw(A_in, geom.pad, value=-np.inf, dtype=dtype)
        view = window_view(A_pad, geom)
        A = _max_windows(A_pad, geom)
        dA_pad = np.zeros(A_pad.shape, dtype=dtype)
        unrouted = np.ones(A.shape, dtype=bool)  # windows whose maximum is not found yet
        hit = np.empty(A.shape, dtype=bool)
        for i in range(f_h):
            for j in range(f_w):
                np.equal(view[:, :, :, i, j, :], A, out=hit)
                hit &= unrouted
                unrouted &= ~hit
                rows, cols = geom.tap(i, j)
                dA_pad[:, rows, cols, :] += np.where(hit, dA, 0)
    else:
        share = dA / _divisor(geom, dtype)
        dA_pad = np.zeros(
            (A_in.shape[0], *geom.padded_hw, A_in.shape[3]), dtype=dtype
        )
        for i in range(f_h):
            for j in range(f_w):
                rows, cols = geom.tap(i, j)
                dA_pad[:, rows, cols, :] += share
    return np.ascontiguousarray(crop_hw(dA_pad, geom.pad, geom.in_hw))
