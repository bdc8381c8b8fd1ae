"""Max and average pooling, vectorized over examples, positions and channels.

Both passes walk the ``f_h x f_w`` taps of the windows (a handful of whole-array operations on
strided slices) instead of the output cells; taps that fall in padding are simply skipped, so no
padded copy of the input is made. Windows that tile the input (stride == window, no padding) take
a faster route along whole input lines.

Max pooling routes each window's gradient to its *first* maximum in row-major order, as the major
frameworks do, so gradients keep their sum when values tie: the backward pass walks the taps in
row-major order and routes each window at its first cell equal to the maximum.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from cnnstep.ops.checks import check_pool_mode, distribute_args
from cnnstep.ops.geometry import (
    WindowGeometry,
    as_array,
    compute_dtype,
    pool_counts,
    pool_geometry,
    unpack_cache,
)
from cnnstep.ops.kernels.threads import batch_parts, run_parts
from cnnstep.ops.kernels.windows import (
    add_few_channels,
    is_tiled,
    row_tiles,
    tap_slices,
    tile_width,
    tiles_cover,
    window_tiles,
)

PoolCache = tuple[np.ndarray, dict[str, Any]]


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


def _pool_inputs(
    A_prev: Any, hparameters: Any, mode: Any, func: str
) -> tuple[np.ndarray, WindowGeometry, np.dtype[Any], str]:
    mode = check_pool_mode(mode, func)
    A_in = as_array(A_prev, "A_prev", func)
    geom = pool_geometry(A_in, hparameters, func)
    dtype = compute_dtype(func, A_prev=A_in)
    return A_in, geom, dtype, mode


def _taps(geom: WindowGeometry) -> Iterator[tuple[slice, slice, slice, slice]]:
    """Every tap with the windows it reaches on the unpadded input, in row-major order.

    Yields ``(out_rows, out_cols, in_rows, in_cols)``: ``A_prev[:, in_rows, in_cols]`` is the
    tap of windows ``[:, out_rows, out_cols]``. Taps in padding are skipped, which is how max
    pooling ignores padded cells and average pooling leaves them out of its sums.
    """
    for i in range(geom.kernel[0]):
        for j in range(geom.kernel[1]):
            where = tap_slices(geom, i, j)
            if where is not None:
                yield where


def _covers_all(where: tuple[slice, ...], geom: WindowGeometry) -> bool:
    """Whether a tap reaches every window (it lies in padding for none of them)."""
    out_rows, out_cols = where[:2]
    return (out_rows.start, out_rows.stop, out_cols.start, out_cols.stop) == (
        0, geom.out_hw[0], 0, geom.out_hw[1]
    )


def _reduce_windows(
    A_in: np.ndarray, geom: WindowGeometry, dtype: np.dtype, ufunc: np.ufunc, start: float
) -> np.ndarray:
    """``ufunc``-reduce every window over its real cells, tap by tap (whole-array operations)."""
    shape = (A_in.shape[0], *geom.out_hw, A_in.shape[3])
    taps = iter(_taps(geom))
    first = next(taps)  # every window holds a real cell, so the first tap exists
    if _covers_all(first, geom):
        out = np.empty(shape, dtype=dtype)
        np.copyto(out, A_in[:, first[2], first[3]])
    else:
        out = np.full(shape, start, dtype=dtype)
        ufunc(out[:, first[0], first[1]], A_in[:, first[2], first[3]],
              out=out[:, first[0], first[1]])
    for out_rows, out_cols, in_rows, in_cols in taps:
        o = out[:, out_rows, out_cols]
        ufunc(o, A_in[:, in_rows, in_cols], out=o)
    return out


# ----------------------------------------------------------------------------- tiled windows
# Windows that tile the input (stride == window, no padding) need no tap loop: seen as rows of
# ``f_h`` input lines, each window is a run of ``f_w * n_C`` contiguous values in each line, so
# every operation runs along whole lines instead of along ``n_C`` channels at a time.


def _work(A_in: np.ndarray, geom: WindowGeometry) -> int:
    """A pooling's size for :func:`~.threads.batch_parts`: window taps plus inputs."""
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    return int(A_in.shape[0] * A_in.shape[3] * n_H * n_W * f_h * f_w + A_in.size)


def _pool_windows(
    A_in: np.ndarray, geom: WindowGeometry, dtype: np.dtype, ufunc: np.ufunc, start: float
) -> np.ndarray:
    """``ufunc``-reduce every window over its real cells (max or sum)."""
    if not is_tiled(geom):
        return _reduce_windows(A_in, geom, dtype, ufunc, start)
    (n_H, n_W), (f_h, f_w), n_C = geom.out_hw, geom.kernel, A_in.shape[3]
    R = row_tiles(A_in, geom)
    lines = R[:, :, 0].astype(dtype, copy=True)  # first the f_h lines of each window row...
    for i in range(1, f_h):
        ufunc(lines, R[:, :, i], out=lines)
    runs = lines.reshape(A_in.shape[0], n_H, n_W, f_w, n_C)  # ...then along each run
    out: np.ndarray = runs[:, :, :, 0].copy()
    for j in range(1, f_w):
        ufunc(out, runs[:, :, :, j], out=out)
    return out


#: From this many channels on, tiled backward passes broadcast each window's value over its taps
#: along the channels (:func:`~cnnstep.ops.kernels.windows.window_tiles`); below, the channel
#: runs are too short for that and each value is first repeated over its window's width (measured:
#: 64x28x28x16 2x2 max backward 1.3 ms against 4.5 ms; 64x64x64x8 8x8 3.0 against 4.8 ms the
#: other way).
WIDE_CHANNELS = 16


def _tiled_pair(
    X: np.ndarray, Y: np.ndarray, geom: WindowGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Views of the tiles of ``X`` (m, n_H_prev, n_W_prev, n_C) and of ``Y`` (m, n_H, n_W, n_C)
    that broadcast to each other: every input cell next to its window's value."""
    if X.shape[3] >= WIDE_CHANNELS:
        return window_tiles(X, geom), Y[:, :, None, :, None, :]
    return row_tiles(X, geom), tile_width(Y, geom)[:, :, None]


def _max_backward_tiled(
    A_in: np.ndarray, dA: np.ndarray, geom: WindowGeometry, dtype: np.dtype, M: np.ndarray,
    has_nan: bool,
) -> np.ndarray:
    """Max-pool backward for tiling windows, whole-array.

    Many channels: the taps are walked in row-major order, each compared with its window's
    maximum along the channels; ``unrouted`` keeps ties from routing twice, at no extra cost
    (ties are common: a flat background gives equal outputs in a first layer). Few channels:
    one comparison of every input cell, along whole lines, then a tap walk only for windows with
    more than one hit.
    """
    dA_prev = (np.empty if tiles_cover(geom) else np.zeros)(A_in.shape, dtype=dtype)
    if A_in.shape[3] >= WIDE_CHANNELS:
        X, D = window_tiles(A_in, geom), window_tiles(dA_prev, geom)
        unrouted = np.ones(M.shape, dtype=bool)
        h = np.empty(M.shape, dtype=bool)
        for i in range(geom.kernel[0]):
            for j in range(geom.kernel[1]):
                x = X[:, :, i, :, j, :]
                np.equal(x, M, out=h)
                if has_nan:
                    h |= np.isnan(x)
                h &= unrouted
                unrouted ^= h
                np.multiply(h, dA, out=D[:, :, i, :, j, :])
        return dA_prev
    m, n_C = A_in.shape[0], A_in.shape[3]
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    X, Mx = _tiled_pair(A_in, M, geom)
    hit = np.equal(X, Mx)
    if has_nan:
        hit |= np.isnan(X)
    if has_nan or np.count_nonzero(hit) != M.size:  # some window has more than one hit
        _keep_first_hits(hit.reshape(m, n_H, f_h, n_W, f_w, n_C).transpose(0, 1, 3, 5, 2, 4))
    D, dAx = _tiled_pair(dA_prev, dA, geom)
    np.multiply(hit, dAx, out=D)
    return dA_prev


def _keep_first_hits(hits: np.ndarray) -> None:
    """Clear every hit but the first, in row-major tap order, of each window, in place.

    ``hits`` has shape (m, n_H, n_W, n_C, f_h, f_w) (a view of the boolean hit array).
    """
    unrouted = np.ones(hits.shape[:4], dtype=bool)  # windows whose maximum is not met yet
    for i in range(hits.shape[4]):
        for j in range(hits.shape[5]):
            h = hits[..., i, j]
            h &= unrouted
            unrouted ^= h  # h lies within unrouted: this clears the windows just routed


def _divisor(geom: WindowGeometry, dtype: np.dtype) -> np.ndarray | float:
    """Real cells per window: padded cells do not count towards an average."""
    if not geom.has_pad:
        return float(geom.kernel[0] * geom.kernel[1])
    return pool_counts(geom).astype(dtype)[None, :, :, None]


def pool_forward(
    A_prev: np.ndarray, hparameters: dict[str, Any], mode: str = "max"
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
    parts = batch_parts(A_in.shape[0], _work(A_in, geom), "pool")
    if parts:  # several threads: each its part of the batch
        A_parts = run_parts(lambda s: pool_forward(A_in[s], hparameters, mode)[0], parts)
        return np.concatenate(A_parts), (A_prev, hparameters)
    if mode == "max":
        A = _pool_windows(A_in, geom, dtype, np.maximum, -np.inf)
    else:
        A = _pool_windows(A_in, geom, dtype, np.add, 0.0)
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
    return _backward(dA, cache, mode, None)


def pool_backward_with_output(
    dA: np.ndarray, cache: PoolCache, A: np.ndarray, mode: str = "max"
) -> np.ndarray:
    """:func:`pool_backward`, given the output ``A`` of :func:`pool_forward` for this cache.

    Max pooling then need not find each window's maximum again: a layer that kept its output
    passes it here. ``A`` must be that output unchanged (same shape and dtype as the pass
    computes; otherwise the maxima are found again).

    Parameters
    ----------
    dA : ndarray of shape (m, n_H, n_W, n_C)
    cache : tuple
        ``(A_prev, hparameters)`` from :func:`pool_forward`.
    A : ndarray of shape (m, n_H, n_W, n_C)
        The output of :func:`pool_forward` for ``cache``.
    mode : {"max", "average"}

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
        The same as :func:`pool_backward`.
    """
    return _backward(dA, cache, mode, A)


def pool_backward_inputs(
    dA: Any, cache: Any, mode: Any
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], WindowGeometry, np.dtype[Any], str]:
    """The checked arguments of a pooling's backward pass: ``(A_in, dA, hparameters, geom,
    dtype, mode)``, ``dA`` cast to ``dtype`` (the one both passes compute in); ValueError or
    TypeError naming the argument otherwise (``dA`` of another shape than the output ...)."""
    func = "pool_backward"
    A_prev, hparameters = unpack_cache(cache, ("A_prev", "hparameters"), "pool_forward", func)
    A_in, geom, dtype, mode = _pool_inputs(A_prev, hparameters, mode, func)
    dA = as_array(dA, "dA", func)
    expected = (A_in.shape[0], *geom.out_hw, A_in.shape[3])
    if dA.shape != expected:
        raise ValueError(f"{func}: dA must have the shape of A, {expected}, got shape {dA.shape}")
    dtype = np.result_type(dtype, compute_dtype(func, dA=dA))
    return A_in, dA.astype(dtype, copy=False), hparameters, geom, dtype, mode


def _backward(dA: Any, cache: Any, mode: Any, A_out: np.ndarray | None) -> np.ndarray:
    A_in, dA, hp, geom, dtype, mode = pool_backward_inputs(dA, cache, mode)
    expected = dA.shape
    parts = batch_parts(A_in.shape[0], _work(A_in, geom), "pool")
    if parts:  # several threads: each its part of the batch
        out = A_out if A_out is not None and A_out.shape == expected else None
        return np.concatenate(run_parts(
            lambda s: _backward(dA[s], (A_in[s], hp), mode, None if out is None else out[s]),
            parts))
    if mode == "max":
        if A_out is None or A_out.shape != expected or A_out.dtype != dtype:
            A_out = _pool_windows(A_in, geom, dtype, np.maximum, -np.inf)
        return _max_backward(A_in, dA, geom, dtype, A_out)
    share = dA / _divisor(geom, dtype)
    if is_tiled(geom):
        dA_prev = (np.empty if tiles_cover(geom) else np.zeros)(A_in.shape, dtype=dtype)
        np.copyto(*_tiled_pair(dA_prev, share, geom))
        return dA_prev
    dA_prev = np.zeros(A_in.shape, dtype=dtype)
    for out_rows, out_cols, in_rows, in_cols in _taps(geom):
        add_few_channels(dA_prev[:, in_rows, in_cols], share[:, out_rows, out_cols])
    return dA_prev


def _max_backward(
    A_in: np.ndarray, dA: np.ndarray, geom: WindowGeometry, dtype: np.dtype, M: np.ndarray
) -> np.ndarray:
    """Route each window's gradient to its first maximum (row-major), tap by tap.

    The taps are visited in row-major order and ``unrouted`` marks the windows whose maximum has
    not been met yet, so of tied cells only the first receives the gradient. A NaN counts as its
    window's maximum (as ``np.argmax`` and the frameworks have it).
    """
    has_nan = bool(np.isnan(M).any())
    if is_tiled(geom):
        return _max_backward_tiled(A_in, dA, geom, dtype, M, has_nan)
    (f_h, f_w), (s_h, s_w) = geom.kernel, geom.stride
    overlapping = s_h < f_h or s_w < f_w
    dA_prev = np.zeros(A_in.shape, dtype=dtype)
    unrouted = np.ones(M.shape, dtype=bool)
    hit = np.empty(M.shape, dtype=bool)
    part = np.empty(M.shape, dtype=dtype) if overlapping else None
    for out_rows, out_cols, in_rows, in_cols in _taps(geom):
        h, u = hit[:, out_rows, out_cols], unrouted[:, out_rows, out_cols]
        x = A_in[:, in_rows, in_cols]
        np.equal(x, M[:, out_rows, out_cols], out=h)
        if has_nan:
            h |= np.isnan(x)
        h &= u
        u ^= h
        dst = dA_prev[:, in_rows, in_cols]
        if overlapping:
            assert part is not None
            p = np.multiply(h, dA[:, out_rows, out_cols], out=part[:, out_rows, out_cols])
            add_few_channels(dst, p)
        else:  # disjoint windows write each input cell at most once
            np.multiply(h, dA[:, out_rows, out_cols], out=dst)
    return dA_prev
