"""Max pooling that records, in its forward pass, which tap of each window holds the maximum.

:func:`cnnstep.ops.pool_backward` finds each window's first maximum again by comparing the
input with the output, tap by tap. In a network that input was written long before the backward
pass runs, so those strided reads come from main memory: the first pooling of the default model
takes 2.2-2.8 ms backward in a training step against 1.0 ms with the input in cache. Here the
forward pass, while its input is still in cache, records the tap of the first maximum as one
byte per output value; the backward pass reads only those bytes and the upstream gradient.

Only where it wins (measured in the default model): windows that tile the input (stride ==
window, no padding) with at most :data:`MAX_TAPS` taps and at least :data:`MIN_CHANNELS`
channels. :func:`keeps_taps` says when; elsewhere :func:`max_pool_forward_taps` keeps none
(``None``) and a layer uses :func:`cnnstep.ops.kernels.pool.pool_backward_with_output`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.geometry import WindowGeometry, as_array, pool_geometry
from cnnstep.ops.kernels.pool import PoolCache, pool_backward_inputs, pool_forward
from cnnstep.ops.kernels.windows import is_tiled, tiles_cover, window_tiles

#: Most taps per window (2x2 windows): with more, the chain of comparisons costs the forward pass
#: more than the backward pass saves.
MAX_TAPS = 4
#: Fewest channels: with fewer, a tap's values are runs too short for whole-array comparisons.
MIN_CHANNELS = 16


def keeps_taps(geom: WindowGeometry, n_C: int) -> bool:
    """Whether :func:`max_pool_forward_taps` records taps for this pooling."""
    return is_tiled(geom) and geom.kernel[0] * geom.kernel[1] <= MAX_TAPS and n_C >= MIN_CHANNELS


def first_max_taps(A_prev: np.ndarray, A: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """For each window of tiling max pooling, the row-major index of its first maximum.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
        The pooling's input.
    A : ndarray of shape (m, n_H, n_W, n_C)
        Its output (each window's maximum; NaN where the window holds a NaN).
    geom : WindowGeometry
        Of tiling windows of at most 255 taps.

    Returns
    -------
    taps : ndarray of shape (m, n_H, n_W, n_C), uint8
        ``i * f_w + j`` of the first tap ``(i, j)`` equal to the maximum (or NaN).
    """
    f_h, f_w = geom.kernel
    X = window_tiles(A_prev, geom)
    has_nan = bool(np.isnan(A).any())
    # From the last tap back: r_t = (not hit_t) * (1 + r_{t+1}) counts the taps after t up to
    # the first hit from t on, so r_0 is the first hit's index (no hit before the last tap:
    # the last tap, k - 1).
    taps = np.zeros(A.shape, dtype=np.uint8)
    hit = np.empty(A.shape, dtype=bool)
    for t in range(f_h * f_w - 2, -1, -1):
        x = X[:, :, t // f_w, :, t % f_w, :]
        np.equal(x, A, out=hit)
        if has_nan:
            hit |= np.isnan(x)
        np.logical_not(hit, out=hit)
        taps += 1
        np.multiply(taps, hit.view(np.uint8), out=taps)
    return taps


def max_pool_forward_taps(
    A_prev: np.ndarray, hparameters: dict[str, Any]
) -> tuple[np.ndarray, PoolCache, np.ndarray | None]:
    """:func:`cnnstep.ops.pool_forward` (max) that also keeps each window's first
    maximum's tap, for :func:`max_pool_backward_taps`.

    Returns
    -------
    A, cache
        As :func:`cnnstep.ops.pool_forward`.
    taps : ndarray of shape (m, n_H, n_W, n_C), uint8, or None
        Of :func:`first_max_taps`; ``None`` where :func:`keeps_taps` is false.
    """
    A, cache = pool_forward(A_prev, hparameters, "max")
    A_in = as_array(A_prev, "A_prev", "pool_forward")
    geom = pool_geometry(A_in, hparameters, "pool_forward")
    if not keeps_taps(geom, A_in.shape[3]) or A_in.dtype != A.dtype:
        return A, cache, None
    return A, cache, first_max_taps(A_in, A, geom)


def max_pool_backward_taps(dA: Any, cache: PoolCache, taps: np.ndarray) -> np.ndarray:
    """Max-pool backward from the taps kept by :func:`max_pool_forward_taps`.

    Parameters
    ----------
    dA : ndarray of shape (m, n_H, n_W, n_C)
        Gradient with respect to the pooling's output.
    cache : tuple
        ``(A_prev, hparameters)`` from the forward pass.
    taps : ndarray of shape (m, n_H, n_W, n_C), uint8
        From the same forward pass.

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
        The same as :func:`cnnstep.ops.pool_backward`: each window's gradient at its first
        maximum, 0 elsewhere (and in rows or columns no window covers).
    """
    func = "pool_backward"
    A_in, dA, _, geom, dtype, _ = pool_backward_inputs(dA, cache, "max")
    expected = dA.shape
    if not keeps_taps(geom, A_in.shape[3]):
        raise ValueError(f"{func}: taps are kept only for tiling windows of at most {MAX_TAPS} "
                         f"taps and {MIN_CHANNELS} or more channels")
    if not isinstance(taps, np.ndarray) or taps.dtype != np.uint8 or taps.shape != expected:
        got = (f"{taps.dtype} shape {taps.shape}" if isinstance(taps, np.ndarray)
               else type(taps).__name__)
        raise ValueError(f"{func}: taps must be the uint8 array of shape {expected} that "
                         f"max_pool_forward_taps kept, got {got}")
    dA_prev = (np.empty if tiles_cover(geom) else np.zeros)(A_in.shape, dtype=dtype)
    D = window_tiles(dA_prev, geom)
    f_w = geom.kernel[1]
    hit = np.empty(expected, dtype=bool)
    for t in range(geom.kernel[0] * f_w):
        np.equal(taps, t, out=hit)
        np.multiply(hit, dA, out=D[:, :, t // f_w, :, t % f_w, :])
    return dA_prev
