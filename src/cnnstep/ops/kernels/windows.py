"""The one window helper under convolution and pooling.

A window op reads, for every output cell ``(h, w)``, the ``f_h x f_w`` taps of the padded input at
rows ``h*s_h + i*d_h`` and columns ``w*s_w + j*d_w``. :func:`window_view` exposes exactly that as a
strided view (no copy); convolution copies it once into a matrix for one GEMM (:func:`im2col`),
pooling reduces over its tap axes. The backward scatter (:func:`col2im_add`) adds tap by tap on
strided slices (never assigning: windows overlap).

The ops work on blocks of output rows (a few examples, or a few rows of one example) so that their
scratch stays small and hot in cache: :func:`padded_rows` pads just the input rows one block
reads, and :func:`block_geometry` describes that block.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnstep.ops.geometry import Pad2D, WindowGeometry


def window_view(A_pad: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """All windows of a padded input, as a read-only view.

    Parameters
    ----------
    A_pad : ndarray of shape (m, n_H_prev + pads, n_W_prev + pads, n_C)
        The padded input (rows beyond the last window are allowed and ignored).
    geom : WindowGeometry

    Returns
    -------
    ndarray of shape (m, n_H, n_W, f_h, f_w, n_C)
        ``[k, h, w, i, j, c]`` is tap ``(i, j)`` of window ``(h, w)`` of example ``k``,
        channel ``c``.
    """
    (e_h, e_w), (s_h, s_w), (d_h, d_w) = geom.extent, geom.stride, geom.dilation
    n_H, n_W = geom.out_hw
    view = sliding_window_view(A_pad, (e_h, e_w), axis=(1, 2))  # (m, ., ., n_C, e_h, e_w)
    view = view[:, : (n_H - 1) * s_h + 1 : s_h, : (n_W - 1) * s_w + 1 : s_w, :, ::d_h, ::d_w]
    return np.asarray(view.transpose(0, 1, 2, 4, 5, 3))


def block_geometry(geom: WindowGeometry, n_rows: int) -> WindowGeometry:
    """The geometry of a block of ``n_rows`` output rows, read from its own padded rows."""
    return dataclasses.replace(geom, out_hw=(n_rows, geom.out_hw[1]))


def block_input_rows(geom: WindowGeometry, h0: int, h1: int) -> tuple[int, int]:
    """Padded input rows ``[r0, r1)`` that output rows ``[h0, h1)`` read."""
    return h0 * geom.stride[0], (h1 - 1) * geom.stride[0] + geom.extent[0]


def padded_rows(
    X: np.ndarray,
    pad: Pad2D,
    examples: slice,
    r0: int,
    r1: int,
    value: float = 0.0,
    dtype: np.dtype | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Rows ``r0:r1`` of the padded input, for some examples, without padding all of ``X``.

    Equivalent to ``pad_hw(X, pad, value)[examples, r0:r1]``, but only the block is built, and
    nothing is copied when the block needs no padding and no dtype change (a view of ``X``).

    Parameters
    ----------
    X : ndarray of shape (m, n_H, n_W, n_C)
        The unpadded input.
    pad : ((top, bottom), (left, right))
    examples : slice
        A contiguous range of examples (step 1).
    r0, r1 : int
        Row range in padded coordinates, ``0 <= r0 < r1 <= n_H + top + bottom``.
    value : float
        Fill value of the padded cells.
    dtype : dtype, optional
        dtype of the block (default ``X.dtype``).
    out : ndarray, optional
        Scratch buffer of at least the block's size to build the block in.

    Returns
    -------
    ndarray of shape (k, r1 - r0, n_W + left + right, n_C)
    """
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    (t, _), (lt, rt) = pad
    n_H, n_W, n_C = X.shape[1:]
    lo = min(max(r0 - t, 0), n_H)  # real rows inside the block: lo:hi (maybe none)
    hi = max(min(r1 - t, n_H), lo)
    src = X[examples, lo:hi]
    if lt == 0 and rt == 0 and lo == r0 - t and hi == r1 - t and X.dtype == dtype:
        return src
    shape = (src.shape[0], r1 - r0, n_W + lt + rt, n_C)
    size = int(np.prod(shape))
    block = (
        np.empty(shape, dtype=dtype) if out is None else out.reshape(-1)[:size].reshape(shape)
    )
    top, bottom = lo + t - r0, hi + t - r0  # where the real rows go in the block
    block[:, :top] = value
    block[:, bottom:] = value
    block[:, top:bottom, :lt] = value
    block[:, top:bottom, lt + n_W:] = value
    block[:, top:bottom, lt:lt + n_W] = src
    return block


def im2col(A_pad: np.ndarray, geom: WindowGeometry, out: np.ndarray | None = None) -> np.ndarray:
    """Copy every window into one row of a matrix, taps in ``(i, j, c)`` order.

    The column order matches ``W.reshape(f_h * f_w * n_C_prev, n_C)``, so a convolution is then a
    single matrix product with no transposed copy of ``W``.

    Parameters
    ----------
    A_pad : ndarray of shape (m, n_H_prev + pads, n_W_prev + pads, n_C_prev)
    geom : WindowGeometry
    out : ndarray, optional
        Buffer of at least ``m * n_H * n_W * f_h * f_w * n_C_prev`` elements to reuse.

    Returns
    -------
    ndarray of shape (m * n_H * n_W, f_h * f_w * n_C_prev)
        A view of ``A_pad`` when the windows are its single cells (1x1 kernel, stride 1, no
        rows left over); a copy otherwise.
    """
    m, n_C = A_pad.shape[0], A_pad.shape[3]
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    if (
        (f_h, f_w) == (1, 1)
        and geom.stride == (1, 1)
        and A_pad.shape[1:3] == (n_H, n_W)
        and A_pad.flags.c_contiguous
    ):
        return A_pad.reshape(m * n_H * n_W, n_C)  # a 1x1 convolution needs no copy at all
    shape = (m, n_H, n_W, f_h, f_w, n_C)
    size = m * n_H * n_W * f_h * f_w * n_C
    cols = np.empty(shape, dtype=A_pad.dtype) if out is None else (
        out.reshape(-1)[:size].reshape(shape)
    )
    np.copyto(cols, window_view(A_pad, geom))
    return cols.reshape(m * n_H * n_W, f_h * f_w * n_C)


def _tap_range(n_out: int, n_in: int, start: int, stride: int) -> tuple[int, int]:
    """Output positions ``[lo, hi)`` whose tap lands on a real input cell.

    The tap of output ``h`` reads input cell ``h * stride + start`` (``start`` may be negative:
    padded cells before the input). Only ``0 <= cell < n_in`` are real.
    """
    lo = -(start // stride) if start < 0 else 0
    hi = (n_in - 1 - start) // stride + 1 if n_in - 1 - start >= 0 else 0
    lo = min(lo, n_out)
    return lo, max(lo, min(hi, n_out))


def tap_slices(
    geom: WindowGeometry, i: int, j: int, h0: int = 0, n_rows: int | None = None
) -> tuple[slice, slice, slice, slice] | None:
    """Where tap ``(i, j)`` of every window lands on the *unpadded* input.

    Parameters
    ----------
    geom : WindowGeometry
    i, j : int
        The tap.
    h0, n_rows : int
        A block of output rows ``h0 : h0 + n_rows`` (default: all of them).

    Returns
    -------
    (out_rows, out_cols, in_rows, in_cols) or None
        ``X[:, in_rows, in_cols]`` is tap ``(i, j)`` of windows ``[:, out_rows, out_cols]``
        (rows relative to ``h0``), for the windows whose tap is a real cell; ``None`` when the tap
        lies in padding for every window.
    """
    (n_H, n_W), (s_h, s_w), (d_h, d_w) = geom.out_hw, geom.stride, geom.dilation
    (t, _), (lt, _) = geom.pad
    n_rows = n_H - h0 if n_rows is None else n_rows
    h_lo, h_hi = _tap_range(n_rows, geom.in_hw[0], h0 * s_h + i * d_h - t, s_h)
    w_lo, w_hi = _tap_range(n_W, geom.in_hw[1], j * d_w - lt, s_w)
    if h_lo >= h_hi or w_lo >= w_hi:
        return None
    y0 = (h0 + h_lo) * s_h + i * d_h - t
    x0 = w_lo * s_w + j * d_w - lt
    return (
        slice(h_lo, h_hi),
        slice(w_lo, w_hi),
        slice(y0, y0 + (h_hi - h_lo - 1) * s_h + 1, s_h),
        slice(x0, x0 + (w_hi - w_lo - 1) * s_w + 1, s_w),
    )


def add_few_channels(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst += src`` for strided NHWC slices, fast also when there are only a few channels.

    NumPy would loop over the channels innermost: one tiny loop per cell. A loop per channel
    keeps the inner loop along the row instead.
    """
    n_C = dst.shape[-1]
    if 1 < n_C < 8:
        for c in range(n_C):
            dst[..., c] += src[..., c]
    else:
        dst += src


def col2im_add(
    dcols: np.ndarray, geom: WindowGeometry, dX: np.ndarray, h0: int = 0
) -> None:
    """Scatter-add window gradients onto the *unpadded* input (the adjoint of :func:`im2col`).

    Taps that fall on padding are dropped, so no padded gradient array is needed.

    Parameters
    ----------
    dcols : ndarray of shape (k * n_rows * n_W, f_h * f_w * n_C)
        Gradient with respect to each window's taps, for output rows ``h0 : h0 + n_rows`` of
        ``k`` examples (``n_rows = dcols.shape[0] // (k * n_W)``).
    geom : WindowGeometry
        Geometry of the whole op (padding included).
    dX : ndarray of shape (k, n_H_prev, n_W_prev, n_C)
        Gradient of the same ``k`` examples, accumulated in place; windows that overlap add up.
    h0 : int
        First output row of the block.
    """
    k, n_C = dX.shape[0], dX.shape[3]
    (_, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    n_rows = dcols.shape[0] // (k * n_W)
    d6 = dcols.reshape(k, n_rows, n_W, f_h, f_w, n_C)
    for i in range(f_h):
        for j in range(f_w):
            where = tap_slices(geom, i, j, h0, n_rows)
            if where is not None:
                out_rows, out_cols, in_rows, in_cols = where
                add_few_channels(dX[:, in_rows, in_cols], d6[:, out_rows, out_cols, i, j])


# Windows that tile the input (stride == window, no padding), as views for whole-array passes.


def is_tiled(geom: WindowGeometry) -> bool:
    """Whether the windows tile the input: stride == window, no padding."""
    return geom.stride == geom.kernel and not geom.has_pad


def tiles_cover(geom: WindowGeometry) -> bool:
    """Whether the tiles cover the whole input (no rows or columns left over)."""
    return tuple(n * f for n, f in zip(geom.out_hw, geom.kernel)) == geom.in_hw


def row_tiles(X: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """View of the tiled part of ``X`` (m, n_H_prev, n_W_prev, n_C) as
    (m, n_H, f_h, n_W * f_w * n_C): window row ``h``, its line ``i``, then the line's values."""
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    m, n_C = X.shape[0], X.shape[3]
    if X.strides[2] != n_C * X.strides[3]:
        X = np.ascontiguousarray(X)  # lines must be runs of equally spaced values
    s0, s1, _, s3 = X.strides
    return np.lib.stride_tricks.as_strided(
        X, (m, n_H, f_h, n_W * f_w * n_C), (s0, f_h * s1, s1, s3),
        writeable=X.flags.writeable,
    )


def tile_width(Y: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """``Y`` (m, n_H, n_W, n_C), each value repeated over its window's width:
    (m, n_H, n_W * f_w * n_C), lined up with :func:`row_tiles`."""
    m, n_H, n_W, n_C = Y.shape
    # np.repeat copies whole channel runs; a broadcasting copy would loop n_C values at a time
    # (64x8x8x8 repeated 8 times: 0.02 against 0.55 ms)
    return np.repeat(Y, geom.kernel[1], axis=2).reshape(m, n_H, n_W * geom.kernel[1] * n_C)


def window_tiles(X: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """View of the tiled part of ``X`` (m, n_H_prev, n_W_prev, n_C) as
    (m, n_H, f_h, n_W, f_w, n_C): window ``(h, w)``, its tap ``(i, j)``, the channel."""
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    s0, s1, s2, s3 = X.strides
    return np.lib.stride_tricks.as_strided(
        X, (X.shape[0], n_H, f_h, n_W, f_w, X.shape[3]), (s0, f_h * s1, s1, f_w * s2, s2, s3),
        writeable=X.flags.writeable,
    )
