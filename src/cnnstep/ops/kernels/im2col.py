"""The building blocks of the vectorized convolution: window matrices built block by block in
reused scratch buffers, and sums of matrix products.

Shared by the forward pass (:mod:`cnnstep.ops.kernels.conv`) and the gradients
(:mod:`cnnstep.ops.kernels.conv_grads`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.geometry import WindowGeometry, as_array, compute_dtype, conv_geometry
from cnnstep.ops.kernels.windows import block_geometry, block_input_rows, im2col, padded_rows
from cnnstep.ops.kernels.workspace import row_blocks


def conv_inputs(
    A_prev: Any, W: Any, b: Any, hparameters: Any, func: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, WindowGeometry, np.dtype]:
    """The arrays of a convolution as the compute dtype, and its geometry (every check done)."""
    A_prev = as_array(A_prev, "A_prev", func)
    W = as_array(W, "W", func)
    b = as_array(b, "b", func)
    geom = conv_geometry(A_prev, W, b, hparameters, func)
    dtype = compute_dtype(func, A_prev=A_prev, W=W, b=b)
    return A_prev, W.astype(dtype, copy=False), b.astype(dtype, copy=False), geom, dtype


class Scratch:
    """Scratch buffers of one call, allocated on first use and reused by every block."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(self, name: str, size: int) -> np.ndarray:
        if name not in self._buffers or self._buffers[name].size < size:
            self._buffers.pop(name, None)  # free the small one before allocating
            self._buffers[name] = np.empty(size, dtype=self.dtype)
        return self._buffers[name]


class ProductSum:
    """A sum of matrix products added block by block; the first goes straight into the total."""

    def __init__(self, shape: tuple[int, int], dtype: np.dtype):
        self.total = np.zeros(shape, dtype=dtype)  # stays zero for an empty batch
        self._part: np.ndarray | None = None
        self._empty = True

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if self._empty:
            np.matmul(a, b, out=self.total)
            self._empty = False
            return
        if self._part is None:
            self._part = np.empty_like(self.total)
        self.total += np.matmul(a, b, out=self._part)


def rows_of(X: np.ndarray, dtype: np.dtype, scratch: Scratch) -> np.ndarray:
    """``X`` (k, rows, cols, n_C) as a (k * rows * cols, n_C) matrix of ``dtype``; a view when
    possible, else a copy in a reused buffer."""
    if X.dtype == dtype and X.flags.c_contiguous:
        return X.reshape(-1, X.shape[3])
    buf = scratch("rows", X.size)[: X.size].reshape(X.shape)
    np.copyto(buf, X, casting="unsafe")
    return buf.reshape(-1, X.shape[3])


def is_pointwise(geom: WindowGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: every input cell is one window, in order."""
    return geom.kernel == (1, 1) and geom.stride == (1, 1) and not geom.has_pad


def block_cols(
    X: np.ndarray, geom: WindowGeometry, ex: slice, h0: int, h1: int, dtype: np.dtype,
    scratch: Scratch, out: np.ndarray | None = None,
) -> np.ndarray:
    """im2col of output rows ``h0:h1`` of examples ``ex`` of ``X`` (unpadded), built in the
    reusable buffers of ``scratch`` (or in ``out``, a buffer of the block's size)."""
    r0, r1 = block_input_rows(geom, h0, h1)
    k = ex.stop - ex.start
    buf = None
    if geom.has_pad or X.dtype != dtype:  # the block may have to be built: reuse a buffer
        buf = scratch("slab", k * (r1 - r0) * (X.shape[2] + sum(geom.pad[1])) * X.shape[3])
    slab = padded_rows(X, geom.pad, ex, r0, r1, dtype=dtype, out=buf)
    f_h, f_w = geom.kernel
    size = k * (h1 - h0) * geom.out_hw[1] * f_h * f_w * X.shape[3]
    cols = im2col(slab, block_geometry(geom, h1 - h0),
                  out=scratch("cols", size) if out is None else out)
    if out is not None and not np.may_share_memory(cols, out):  # im2col gave a view
        out[...] = cols
        return out
    return cols


def window_rows(geom: WindowGeometry, ex: slice, h0: int, h1: int) -> slice:
    """The rows of the whole window matrix (examples, output rows, output columns in order) that
    hold output rows ``h0:h1`` of examples ``ex``: a block of :func:`row_blocks` is one run."""
    n_H, n_W = geom.out_hw
    start = (ex.start * n_H + h0) * n_W
    return slice(start, start + (ex.stop - ex.start) * (h1 - h0) * n_W)


def dW_from_windows(
    A_in: np.ndarray, dZ: np.ndarray, geom: WindowGeometry, W_shape: tuple[int, ...],
    dtype: np.dtype, scratch: Scratch, windows: np.ndarray | None = None,
) -> np.ndarray:
    """``dW`` (f_h, f_w, n_C_prev, n_C) as the window matrices of ``A_prev`` times ``dZ``,
    block by block; the blocks are read from ``windows`` (the whole window matrix kept by the
    forward pass) when given, else built again."""
    m, n_H, n_W, n_C = dZ.shape
    K = W_shape[0] * W_shape[1] * W_shape[2]
    dW_mat = ProductSum((K, n_C), dtype)
    for ex, h0, h1 in row_blocks(m, n_H, n_W * K * dtype.itemsize):
        cols = (block_cols(A_in, geom, ex, h0, h1, dtype, scratch) if windows is None
                else windows[window_rows(geom, ex, h0, h1)])
        dW_mat.add(cols.T, dZ[ex, h0:h1].reshape(-1, n_C))
    return dW_mat.total.reshape(W_shape)


def all_finite(X: np.ndarray) -> bool:
    """Whether every value of ``X`` is finite, cheaply: one sum over it (no array of flags).

    A NaN or an infinity makes the sum non-finite; so can finite values near the dtype's
    largest, which then merely send the caller down its exact route. Integers are finite.
    """
    if X.dtype.kind not in "fc":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(X)))


def batch_sums(X: np.ndarray, rows: int = 4096) -> np.ndarray:
    """Sum over the rows of a 2-D array, a few thousand rows at a time.

    Each chunk's sum is a vector-matrix product with a vector of ones: BLAS reads the rows
    once, about six times faster than ``sum(axis=0)``, which walks the array column by
    column. Two levels of sums (within a chunk, then of the chunks) keep the float32 rounding
    error small over a large batch.
    """
    n = X.shape[0]
    ones = np.ones(min(rows, n), dtype=X.dtype)
    if n <= rows:
        return np.asarray(ones @ X)
    total = np.asarray(ones @ X[:rows])
    for i in range(rows, n, rows):
        chunk = X[i:i + rows]
        total += ones[: chunk.shape[0]] @ chunk
    return total
