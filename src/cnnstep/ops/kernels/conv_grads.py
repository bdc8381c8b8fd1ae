"""Gradients of a convolution.

The input gradient takes one of three routes, by the number of input channels and a cost model
(:func:`prefers_correlation`):

* planes (fewer than 8 input channels, or up to 16 where the scatter would run):
  :func:`cnnstep.ops.kernels.wide.dA_planar`, one product for every tap's plane, each added
  to the input's at its offset; ``dW`` from window copies of ``A_prev``;
* correlation: ``dA_prev`` is the upstream gradient correlated with the flipped kernel, through
  the same im2col + GEMM path as the forward pass, with no scatter at all. Stride 1 is one
  correlation; a larger stride splits the input into stride phases, one small correlation each.
  The same window matrix of ``dZ`` also gives ``dW``, so backward makes no window copy of
  ``A_prev``;
* scatter (many more filters than input channels, deep layers on small maps, strided and dilated
  at once, weights that are not finite): one GEMM for the gradient of every window, then a
  scatter-add tap by tap on strided slices.

:func:`conv_grads` computes them; :func:`cnnstep.ops.conv_backward` and
:func:`cnnstep.ops.kernels.conv.conv_backward_params` are its public faces.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.geometry import WindowGeometry, as_array, compute_dtype, unpack_cache
from cnnstep.ops.kernels.im2col import (
    ProductSum,
    Scratch,
    batch_sums,
    block_cols,
    conv_inputs,
    dW_from_windows,
    is_pointwise,
    rows_of,
    window_rows,
)
from cnnstep.ops.kernels.threads import batch_parts, run_parts
from cnnstep.ops.kernels.wide import dA_planar, dW_wide, uses_wide_windows, wide_shape
from cnnstep.ops.kernels.windows import col2im_add
from cnnstep.ops.kernels.workspace import row_blocks

ConvCache = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]


def grads_by_correlation(
    A_in: np.ndarray, dZ: np.ndarray, W: np.ndarray, geom: WindowGeometry,
    dA_prev: np.ndarray, scratch: Scratch,
) -> np.ndarray:
    """``dA_prev`` and ``dW`` of a stride-1 convolution from one window matrix of ``dZ``.

    ``dA_prev`` is the upstream gradient, padded by the kernel extent less the forward padding,
    correlated with the flipped kernel (filters and channels swapped). Row ``q`` of that window
    matrix holds, for each tap, the gradient of the output whose window reads input cell ``q``
    through that tap, so ``A_prev`` (as rows) times the same matrix is ``dW``, taps flipped: no
    window copy of ``A_prev`` is needed at all.

    Fills ``dA_prev`` (m, n_H_prev, n_W_prev, n_C_prev) block by block, reusing the buffers of
    ``scratch``; returns dW (f_h, f_w, n_C_prev, n_C).
    """
    dtype = dA_prev.dtype
    m, n_H, n_W, n_C = dZ.shape
    f_h, f_w, n_C_prev, _ = W.shape
    # Where forward padding exceeds the kernel extent, the outer rows of dZ came from windows
    # lying wholly in padding: they reach no input cell, so they are cropped instead.
    pads = [
        (e - 1 - p0, e - 1 - p1) for e, (p0, p1) in zip(geom.extent, geom.pad)
    ]
    dZ_v = dZ[:, max(0, -pads[0][0]): n_H - max(0, -pads[0][1]),
              max(0, -pads[1][0]): n_W - max(0, -pads[1][1])]
    pad2 = tuple((max(0, p0), max(0, p1)) for p0, p1 in pads)
    g2 = WindowGeometry(
        kernel=geom.kernel, stride=(1, 1), dilation=geom.dilation, pad=pad2,  # type: ignore[arg-type]
        in_hw=(dZ_v.shape[1], dZ_v.shape[2]), out_hw=geom.in_hw,
    )
    W_flip = np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(-1, n_C_prev)
    dW_flip = ProductSum((n_C_prev, f_h * f_w * n_C), dtype)
    n_W_prev = geom.in_hw[1]
    for ex, h0, h1 in row_blocks(m, geom.in_hw[0], n_W_prev * f_h * f_w * n_C * dtype.itemsize):
        cols = block_cols(dZ_v, g2, ex, h0, h1, dtype, scratch)
        np.matmul(cols, W_flip, out=dA_prev[ex, h0:h1].reshape(-1, n_C_prev))
        dW_flip.add(rows_of(A_in[ex, h0:h1], dtype, scratch).T, cols)
    dW = dW_flip.total.reshape(n_C_prev, f_h, f_w, n_C)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
    return np.ascontiguousarray(dW)


def phase_outputs(phase: int, stride: int, pad_before: int, n_in: int) -> tuple[int, int]:
    """Positions ``u0 .. u1`` (inclusive) of the input cells ``u * stride + phase - pad_before``
    that are real (``0 <= cell < n_in``): one stride phase of the input."""
    return -((phase - pad_before) // stride), (n_in - 1 + pad_before - phase) // stride


def grads_by_phases(
    A_in: np.ndarray, dZ: np.ndarray, W: np.ndarray, geom: WindowGeometry,
    dA_prev: np.ndarray, scratch: Scratch,
) -> np.ndarray:
    """``dA_prev`` and ``dW`` of a strided convolution (dilation 1), one stride phase at a time.

    The input cells ``(s_h * u + a, s_w * v + b)`` (padded coordinates) of phase ``(a, b)`` are
    reached only by the taps ``(a + s_h * p, b + s_w * q)``, from output cell ``(u - p, v - q)``:
    a stride-1 correlation of the upstream gradient with that sub-kernel, flipped. Each phase is
    one im2col + GEMM, written to its strided slice of ``dA_prev``; no scatter-add is needed, and
    every cell is written exactly once. As in :func:`grads_by_correlation`, the phase's input
    cells times the same window matrix give ``dW`` of the phase's taps.

    Returns dW (f_h, f_w, n_C_prev, n_C).
    """
    dtype = dA_prev.dtype
    m, n_H, n_W, n_C = dZ.shape
    f_h, f_w, n_C_prev, _ = W.shape
    (s_h, s_w), (t, _), (lt, _) = geom.stride, geom.pad[0], geom.pad[1]
    (H, W_in) = geom.in_hw
    dW = np.zeros(W.shape, dtype=dtype)  # taps no phase reaches (cells in padding only) stay 0
    for a in range(s_h):
        u0, u1 = phase_outputs(a, s_h, t, H)
        k_a = len(range(a, f_h, s_h))
        for b in range(s_w):
            v0, v1 = phase_outputs(b, s_w, lt, W_in)
            if u0 > u1 or v0 > v1:
                continue  # the phase holds no real cell
            U, V, k_b = u1 - u0 + 1, v1 - v0 + 1, len(range(b, f_w, s_w))
            y0, x0 = s_h * u0 + a - t, s_w * v0 + b - lt
            dst = dA_prev[:, y0: y0 + (U - 1) * s_h + 1: s_h, x0: x0 + (V - 1) * s_w + 1: s_w]
            if k_a == 0 or k_b == 0:  # stride longer than the kernel: no tap reaches these
                dst[...] = 0
                continue
            # Output u reads dZ rows u - k_a + 1 .. u: pad dZ (or crop it) to exactly those.
            top, bottom = k_a - 1 - u0, u1 - (n_H - 1)
            left, right = k_b - 1 - v0, v1 - (n_W - 1)
            dZ_v = dZ[:, max(0, -top): n_H - max(0, -bottom),
                      max(0, -left): n_W - max(0, -right)]
            g2 = WindowGeometry(
                kernel=(k_a, k_b), stride=(1, 1), dilation=(1, 1),
                pad=((max(0, top), max(0, bottom)), (max(0, left), max(0, right))),
                in_hw=(dZ_v.shape[1], dZ_v.shape[2]), out_hw=(U, V),
            )
            sub = W[a::s_h, b::s_w][::-1, ::-1].transpose(0, 1, 3, 2)
            W_flip = np.ascontiguousarray(sub).reshape(-1, n_C_prev)
            A_phase = A_in[:, y0: y0 + (U - 1) * s_h + 1: s_h, x0: x0 + (V - 1) * s_w + 1: s_w]
            dW_flip = ProductSum((n_C_prev, k_a * k_b * n_C), dtype)
            for ex, h0, h1 in row_blocks(m, U, V * k_a * k_b * n_C * dtype.itemsize):
                cols = block_cols(dZ_v, g2, ex, h0, h1, dtype, scratch)
                k = ex.stop - ex.start
                out = scratch("phase", k * (h1 - h0) * V * n_C_prev)[: k * (h1 - h0) * V * n_C_prev]
                np.matmul(cols, W_flip, out=out.reshape(-1, n_C_prev))
                dst[ex, h0:h1] = out.reshape(k, h1 - h0, V, n_C_prev)
                dW_flip.add(rows_of(A_phase[ex, h0:h1], dtype, scratch).T, cols)
            dW[a::s_h, b::s_w] = dW_flip.total.reshape(n_C_prev, k_a, k_b, n_C)[
                :, ::-1, ::-1].transpose(1, 2, 0, 3)
    return dW


# Below this many input channels, dW comes from window copies of A_prev, not from those of dZ,
# and dA_prev is computed plane by plane (wide.dA_planar).
DW_FROM_DZ_MIN_CHANNELS = 8
# Up to this many input channels, dA_prev is computed plane by plane instead of by the scatter
# route. Measured at one thread on OpenBLAS's Haswell kernels, forward + backward against
# PyTorch: 8x64x64x8 -> 16 3x3 stride 2 1.68 -> 1.20; with 24 channels the planes cost more.
PLANAR_MAX_CHANNELS = 16


def conv_work(geom: WindowGeometry, m: int, W_shape: tuple[int, ...]) -> int:
    """A convolution's size for :func:`cnnstep.ops.kernels.threads.batch_parts`: output cells times
    taps times input and output channels."""
    f_h, f_w, n_C_prev, n_C = W_shape
    return m * geom.out_hw[0] * geom.out_hw[1] * f_h * f_w * (n_C_prev + n_C)


def prefers_correlation(geom: WindowGeometry, m: int, n_C_prev: int, n_C: int) -> bool:
    """Whether a correlation route (stride 1, or stride phases) is cheaper than the scatter
    route for dA_prev.

    Per input cell and tap (divided by the stride area for phases), a correlation copies ``n_C``
    values (plus, once, a transposed copy of the kernel); the scatter adds ``n_C_prev`` values on
    strided slices, about six times dearer per value (measured). Deep layers on small maps, where
    the kernel outweighs the activations, therefore scatter. Strided and dilated at once: scatter.

    A stride shorter than the kernel but at least half of it (3x3 stride 2, the usual
    downsampling) splits the kernel into phases of at most 2x2 taps: many small products, each
    with its own padded window copy and strided write, which cost more than the model counts.
    There the scatter is measured faster (64x32x32x32 -> 64, 3x3 stride 2, fwd+bwd: 21-24 ms
    against 17-20 ms).
    """
    if geom.stride != (1, 1) and geom.dilation != (1, 1):
        return False
    if any(1 < s < f <= 2 * s for f, s in zip(geom.kernel, geom.stride)):
        return False
    cells = m * geom.in_hw[0] * geom.in_hw[1] // (geom.stride[0] * geom.stride[1])
    return n_C * (cells + 3 * n_C_prev) <= 6 * cells * n_C_prev


def conv_grads(
    dZ: np.ndarray, cache: ConvCache, need_dA_prev: bool = True,
    windows: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """:func:`conv_backward`, optionally without ``dA_prev``, optionally reusing the window
    matrix of the forward pass.

    Training never uses the input gradient of a network's first layer; with
    ``need_dA_prev=False`` it is not computed (``None`` in its place), only ``dW`` and ``db``.
    ``windows`` is the window matrix that :func:`~.conv.conv_forward_windows` kept for
    this cache; where ``dW`` would be built from window copies of ``A_prev``, it is read from
    there instead.
    """
    func = "conv_backward"
    cache = unpack_cache(cache, ("A_prev", "W", "b", "hparameters"), "conv_forward", func)
    A_in, W_, _, geom, dtype = conv_inputs(*cache, func)
    dZ = as_array(dZ, "dZ", func)
    m, n_C_prev, n_C = A_in.shape[0], W_.shape[2], W_.shape[3]
    expected = (m, *geom.out_hw, n_C)
    if dZ.shape != expected:
        raise ValueError(
            f"{func}: dZ must have the shape of Z, {expected}, got shape {dZ.shape}"
        )
    dZ = np.ascontiguousarray(dZ, dtype=np.result_type(dtype, compute_dtype(func, dZ=dZ)))
    dtype = dZ.dtype
    W_ = W_.astype(dtype, copy=False)
    wide = _kept_layout(geom, m, n_C_prev, W_.shape, windows, dtype, func)
    parts = None if windows is not None else \
        batch_parts(m, conv_work(geom, m, W_.shape), "conv")
    if parts:  # several threads: each its part of the batch, then the parameter sums
        out = run_parts(lambda s: conv_grads(dZ[s], (A_in[s], W_, cache[2], cache[3]),
                                             need_dA_prev), parts)
        dA_parts = [dA for dA, _, _ in out if dA is not None]
        dW_sum, db_sum = out[0][1].copy(), out[0][2].copy()
        for _, dW_part, db_part in out[1:]:
            dW_sum += dW_part
            db_sum += db_part
        return (np.concatenate(dA_parts) if need_dA_prev else None), dW_sum, db_sum
    scratch = Scratch(dtype)
    dA_prev, dW, db = _grads(A_in, dZ, W_, geom, need_dA_prev, windows, wide, scratch)
    if not (np.isfinite(dW).all() and np.isfinite(db).all()):
        # A NaN or an infinity came in. The wide windows and the correlations pair A_prev or dZ
        # with zeros the loops never multiply (inf * 0 is NaN), and leave out padding the loops
        # multiply (0 * NaN is NaN): dW again from A_prev's windows, which pair exactly as the
        # loops do. (dA_prev's routes all pair dZ with W as the loops do.) Rare: no cost else.
        dW = dW_from_windows(A_in, dZ, geom, W_.shape, dtype, scratch,
                             None if wide else windows)
    return dA_prev, dW, db


def _kept_layout(geom: WindowGeometry, m: int, n_C_prev: int, W_shape: tuple[int, ...],
                 windows: np.ndarray | None, dtype: np.dtype, func: str) -> bool:
    """Whether the forward pass's window matrix is (or would be) in the wide layout; a
    ``ValueError`` when ``windows`` is given but is neither layout's of this cache."""
    wide = uses_wide_windows(geom, n_C_prev, W_shape[3])
    if windows is None:
        return wide
    n_H, n_W = geom.out_hw
    plain = (m * n_H * n_W, W_shape[0] * W_shape[1] * n_C_prev)
    # the forward pass takes the plain layout for an input with a NaN or an infinity
    shapes = [wide_shape(geom, m, n_C_prev), plain] if wide else [plain]
    if windows.shape not in shapes or windows.dtype != dtype:
        raise ValueError(
            f"{func}: windows must be the window matrix of this cache, shape "
            f"{shapes[0]} {dtype}, got shape {windows.shape} {windows.dtype}"
        )
    return windows.shape == shapes[0] and wide


def _grads(
    A_in: np.ndarray, dZ: np.ndarray, W_: np.ndarray, geom: WindowGeometry, need_dA_prev: bool,
    windows: np.ndarray | None, wide: bool, scratch: Scratch,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """:func:`conv_grads` of one part of the batch, by the cheapest route."""
    dtype = dZ.dtype
    m, n_C_prev, n_C = A_in.shape[0], W_.shape[2], W_.shape[3]
    if is_pointwise(geom):
        A_mat = A_in.astype(dtype, copy=False).reshape(-1, n_C_prev)
        dZ_mat = dZ.reshape(-1, n_C)
        dA_prev = None
        if need_dA_prev:
            dA_prev = np.empty(A_in.shape, dtype=dtype)
            np.matmul(dZ_mat, W_.reshape(-1, n_C).T, out=dA_prev.reshape(-1, n_C_prev))
        dW_mat = A_mat.T @ dZ_mat
        db = batch_sums(dZ_mat)
        return dA_prev, np.asarray(dW_mat.reshape(W_.shape)), db.reshape(1, 1, 1, n_C)

    db = batch_sums(dZ.reshape(-1, n_C)).reshape(1, 1, 1, n_C)
    dW_of = dW_wide if wide else dW_from_windows
    if not need_dA_prev:
        return None, dW_of(A_in, dZ, geom, W_.shape, dtype, scratch, windows), db
    # A correlation multiplies the weights with zeros around dZ as well (inf * 0 is NaN):
    # weights that are not finite take a route that pairs them with dZ's own cells only.
    correlate = prefers_correlation(geom, m, n_C_prev, n_C) and bool(np.isfinite(W_).all())
    if n_C_prev < DW_FROM_DZ_MIN_CHANNELS or (not correlate
                                               and n_C_prev <= PLANAR_MAX_CHANNELS):
        # few input channels: dA_prev plane by plane (a product n_C_prev wide runs slowly)
        dW_few = dW_of(A_in, dZ, geom, W_.shape, dtype, scratch, windows)
        return dA_planar(dZ, W_, geom), dW_few, db
    if correlate:  # dW from the same window matrix of dZ
        dA_prev = np.empty(A_in.shape, dtype=dtype)  # every cell gets written
        grads = grads_by_correlation if geom.stride == (1, 1) else grads_by_phases
        return dA_prev, grads(A_in, dZ, W_, geom, dA_prev, scratch), db
    # kept windows of the other layout: this route builds its own
    dA_prev, dW = _scatter(A_in, dZ, W_, geom, None if wide else windows, scratch)
    return dA_prev, dW, db


def _scatter(
    A_in: np.ndarray, dZ: np.ndarray, W_: np.ndarray, geom: WindowGeometry,
    windows: np.ndarray | None, scratch: Scratch,
) -> tuple[np.ndarray, np.ndarray]:
    """``(dA_prev, dW)``: one product for the gradient of every window, scattered tap by tap."""
    dtype = dZ.dtype
    m, (n_H, n_W), n_C = A_in.shape[0], geom.out_hw, W_.shape[3]
    K = W_.shape[0] * W_.shape[1] * W_.shape[2]
    W_mat = W_.reshape(K, n_C)
    dW_mat = ProductSum((K, n_C), dtype)
    dA_prev = np.zeros(A_in.shape, dtype=dtype)
    for ex, h0, h1 in row_blocks(m, n_H, 2 * n_W * K * dtype.itemsize):
        cols = (block_cols(A_in, geom, ex, h0, h1, dtype, scratch) if windows is None
                else windows[window_rows(geom, ex, h0, h1)])
        dz = dZ[ex, h0:h1].reshape(-1, n_C)
        dW_mat.add(cols.T, dz)
        dcols = np.matmul(
            dz, W_mat.T, out=scratch("dcols", cols.size)[: cols.size].reshape(cols.shape)
        )
        col2im_add(dcols, geom, dA_prev[ex], h0)
    return dA_prev, dW_mat.total.reshape(W_.shape)
