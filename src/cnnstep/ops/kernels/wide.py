"""Convolution with few input channels: wide windows, several output columns per matrix row.

With one to four input channels (a network's first layer on images), a window holds only
``f_h * f_w * n_C_prev`` values, so im2col copies the input many times over in short runs and
the matrix product is a thin one (``n_C`` columns, often 8 or 16) that BLAS runs far below its
peak. Here one row of the window matrix covers ``GROUP`` neighbouring output cells of a row:
``f_h`` runs of ``(f_w + GROUP - 1) * n_C_prev`` contiguous input values, times "wide" weights
of ``GROUP * n_C`` columns (the kernel placed at each of the ``GROUP`` offsets, zeros
elsewhere). The window matrix is about half the size and the product is ``GROUP`` times wider.
Measured at one thread: 64x28x28x1 -> 16 3x3 forward 2.1 -> 0.6 ms, 64x64x64x3 -> 8 4x4
12.8 -> 7.0 ms; with 16 input channels into 32 filters it loses (2.0 -> 3.1 ms), hence the
limits (:data:`MAX_CHANNELS`, and :data:`THIN_MAX_CHANNELS` for thin layers).

With a stride ``s_w`` the ``GROUP`` output cells of a row read ``f_w + (GROUP - 1) * s_w``
columns: still one run, longer, with the kernel ``s_w`` columns apart in the wide weights.
Measured at one thread on OpenBLAS's Haswell kernels, forward + backward against PyTorch
(with the planar input gradient): 32x56x56x3 -> 8 7x7 stride 2 1.48 -> 1.05. Dilation 1 only,
and a stride shorter than the kernel (windows that overlap); :func:`uses_wide_windows` says
when.
"""

from __future__ import annotations

import numpy as np

from cnnstep.ops.geometry import WindowGeometry
from cnnstep.ops.kernels.im2col import ProductSum, Scratch
from cnnstep.ops.kernels.windows import block_input_rows, padded_rows
from cnnstep.ops.kernels.workspace import CACHE_BLOCK_BYTES, get_workspace_budget, row_blocks

#: Output columns per row of the wide window matrix.
GROUP = 4
#: Most input channels for which the wide windows are faster.
MAX_CHANNELS = 4
#: With up to this many input channels and filters (and a kernel at least three strides
#: wide, so that zeros are at most half the wide weights), the product is thin enough that
#: making it four times wider pays for the zeros too. Measured at one thread on OpenBLAS's
#: Haswell kernels, forward: 16x28x28x6 -> 16 5x5 1.49 -> 1.34 ms, 48x20x20x12 -> 12 3x3
#: 2.20 -> 2.01 ms; with 24 or 32 filters it loses (64x14x14x16 -> 32 3x3 2.75 -> 4.19 ms),
#: and with stride 2 through a 3x3 kernel (two thirds zeros).
THIN_MAX_CHANNELS = 16
#: Scratch of one block of :func:`dA_planar` (its planes and phase planes).
PLANAR_BLOCK_BYTES = CACHE_BLOCK_BYTES
#: Scratch of one block of wide windows: half the usual block (the product writes ``GROUP``
#: times wider rows). Measured at one thread on OpenBLAS's Haswell kernels, forward + backward
#: against PyTorch: 8x96x96x3 -> 8 5x5 stride 2 1.8-2.2 -> 1.2-1.5, 32x48x48x3 -> 16 3x3
#: 1.3 -> 1.0.
WIDE_BLOCK_BYTES = CACHE_BLOCK_BYTES // 2


def uses_wide_windows(geom: WindowGeometry, n_C_prev: int, n_C: int) -> bool:
    """Whether a convolution takes the wide-window route: few input channels (or a few more,
    into few filters, where zeros are at most half the wide weights), dilation 1, windows that
    overlap along a row."""
    # a thin layer's wide weights (float64 at most) are larger: not where the workspace budget
    # is kept small
    few = n_C_prev <= MAX_CHANNELS or (
        n_C_prev <= THIN_MAX_CHANNELS and n_C <= THIN_MAX_CHANNELS
        and run_width(geom) <= 2 * geom.kernel[1]
        and 8 * wide_shape(geom, 0, n_C_prev)[1] * GROUP * n_C * 8 <= get_workspace_budget())
    return (
        few
        and geom.dilation == (1, 1)
        and geom.stride[1] < geom.kernel[1]
        and geom.out_hw[1] >= 2
    )


def run_width(geom: WindowGeometry) -> int:
    """Input columns one row of a group of ``GROUP`` neighbouring windows covers."""
    return geom.kernel[1] + (GROUP - 1) * geom.stride[1]


def groups(geom: WindowGeometry) -> int:
    """Rows of the wide window matrix per output row."""
    return -(-geom.out_hw[1] // GROUP)


def wide_shape(geom: WindowGeometry, m: int, n_C_prev: int) -> tuple[int, int]:
    """Shape of the whole wide window matrix of ``m`` examples."""
    return m * geom.out_hw[0] * groups(geom), geom.kernel[0] * run_width(geom) * n_C_prev


def wide_rows(geom: WindowGeometry, ex: slice, h0: int, h1: int) -> slice:
    """The rows of the whole wide window matrix that hold output rows ``h0:h1`` of ``ex``."""
    n_H, g = geom.out_hw[0], groups(geom)
    start = (ex.start * n_H + h0) * g
    return slice(start, start + (ex.stop - ex.start) * (h1 - h0) * g)


def wide_weights(W: np.ndarray, s_w: int = 1) -> np.ndarray:
    """(f_h * (f_w + (GROUP - 1) * s_w) * n_C_prev, GROUP * n_C): the kernel at each of the
    offsets ``0, s_w, 2 * s_w ...`` (stride ``s_w``), zeros elsewhere."""
    f_h, f_w, n_C_prev, n_C = W.shape
    Ww = np.zeros((f_h, f_w + (GROUP - 1) * s_w, n_C_prev, GROUP, n_C), dtype=W.dtype)
    for k in range(GROUP):
        Ww[:, k * s_w:k * s_w + f_w, :, k, :] = W
    return Ww.reshape(-1, GROUP * n_C)


def fold_wide(dWw: np.ndarray, W_shape: tuple[int, ...], s_w: int = 1) -> np.ndarray:
    """The adjoint of :func:`wide_weights`: sum each offset's part back onto the kernel."""
    f_h, f_w, n_C_prev, n_C = W_shape
    T = dWw.reshape(f_h, f_w + (GROUP - 1) * s_w, n_C_prev, GROUP, n_C)
    dW: np.ndarray = T[:, 0:f_w, :, 0, :].copy()
    for k in range(1, GROUP):
        dW += T[:, k * s_w:k * s_w + f_w, :, k, :]
    return dW


def bytes_per_row(geom: WindowGeometry, n_C_prev: int, dtype: np.dtype) -> int:
    """Scratch bytes of one output row's wide windows."""
    return groups(geom) * wide_shape(geom, 1, n_C_prev)[1] * dtype.itemsize


def wide_cols(
    X: np.ndarray, geom: WindowGeometry, ex: slice, h0: int, h1: int, dtype: np.dtype,
    scratch: Scratch, out: np.ndarray | None = None,
) -> np.ndarray:
    """The wide window matrix of output rows ``h0:h1`` of examples ``ex`` of ``X`` (unpadded):
    ``(k * (h1 - h0) * groups, f_h * run_width * n_C_prev)``, in ``out`` if given."""
    f_h = geom.kernel[0]
    (s_h, s_w) = geom.stride
    n_C_prev = X.shape[3]
    g = groups(geom)
    (t, b), (lt, rt) = geom.pad
    # the last group may reach past the padded input: more zeros on the right
    extra = max(0, (g * GROUP - 1) * s_w + geom.kernel[1] - (geom.in_hw[1] + lt + rt))
    r0, r1 = block_input_rows(geom, h0, h1)
    k = ex.stop - ex.start
    width = geom.in_hw[1] + lt + rt + extra
    slab = padded_rows(X, ((t, b), (lt, rt + extra)), ex, r0, r1, dtype=dtype,
                       out=scratch("slab", k * (r1 - r0) * width * n_C_prev))
    if slab.strides[2] != n_C_prev * slab.strides[3]:  # a view of a non-contiguous input
        slab = np.ascontiguousarray(slab)
    s0, s1, s2, s3 = slab.strides
    run = run_width(geom) * n_C_prev
    view = np.lib.stride_tricks.as_strided(
        slab, (k, h1 - h0, g, f_h, run), (s0, s_h * s1, GROUP * s_w * s2, s1, s3),
        writeable=False,
    )
    rows, K = k * (h1 - h0) * g, f_h * run
    cols = (scratch("cols", rows * K)[: rows * K] if out is None else out).reshape(rows, K)
    np.copyto(cols.reshape(view.shape), view)
    return cols


def forward_wide(
    A_in: np.ndarray, W: np.ndarray, bias: np.ndarray, geom: WindowGeometry, dtype: np.dtype,
    Z: np.ndarray, windows: np.ndarray | None,
) -> None:
    """Fill ``Z`` (m, n_H, n_W, n_C) with the convolution, block by block; the wide window
    matrix is written into ``windows`` (kept for the backward pass) when given."""
    m, n_H, n_W, n_C = Z.shape
    g = groups(geom)
    Ww = wide_weights(W, geom.stride[1])
    scratch = Scratch(dtype)
    for ex, h0, h1 in row_blocks(m, n_H, bytes_per_row(geom, A_in.shape[3], dtype),
                                 WIDE_BLOCK_BYTES):
        out = None if windows is None else windows[wide_rows(geom, ex, h0, h1)]
        cols = wide_cols(A_in, geom, ex, h0, h1, dtype, scratch, out)
        k = ex.stop - ex.start
        if n_W == g * GROUP:
            z = Z[ex, h0:h1].reshape(-1, GROUP * n_C)
            np.matmul(cols, Ww, out=z)
            z += np.tile(bias, GROUP)
            continue
        zw = scratch("zwide", cols.shape[0] * GROUP * n_C)[: cols.shape[0] * GROUP * n_C]
        np.matmul(cols, Ww, out=zw.reshape(-1, GROUP * n_C))
        dst = Z[ex, h0:h1]
        np.add(zw.reshape(k, h1 - h0, g * GROUP, n_C)[:, :, :n_W], bias, out=dst)


def dW_wide(
    A_in: np.ndarray, dZ: np.ndarray, geom: WindowGeometry, W_shape: tuple[int, ...],
    dtype: np.dtype, scratch: Scratch, windows: np.ndarray | None = None,
) -> np.ndarray:
    """``dW`` (f_h, f_w, n_C_prev, n_C) from wide windows of ``A_prev`` (kept ones if given)."""
    m, n_H, n_W, n_C = dZ.shape
    g = groups(geom)
    K = wide_shape(geom, 1, A_in.shape[3])[1]
    total = ProductSum((K, GROUP * n_C), dtype)
    for ex, h0, h1 in row_blocks(m, n_H, bytes_per_row(geom, A_in.shape[3], dtype),
                                 WIDE_BLOCK_BYTES):
        cols = (wide_cols(A_in, geom, ex, h0, h1, dtype, scratch) if windows is None
                else windows[wide_rows(geom, ex, h0, h1)])
        dz = dZ[ex, h0:h1]
        if n_W != g * GROUP:  # the last group's missing columns have no gradient
            k = ex.stop - ex.start
            buf = scratch("dzwide", k * (h1 - h0) * g * GROUP * n_C)
            wide = buf[: k * (h1 - h0) * g * GROUP * n_C].reshape(k, h1 - h0, g * GROUP, n_C)
            wide[:, :, n_W:] = 0
            wide[:, :, :n_W] = dz
            dz = wide
        total.add(cols.T, dz.reshape(-1, GROUP * n_C))
    return fold_wide(total.total, W_shape, geom.stride[1])


def dA_planar(dZ: np.ndarray, W: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """``dA_prev`` of a convolution with few input channels (any stride, padding, dilation).

    With few input channels the usual routes end in a product only ``n_C_prev`` wide, or in a
    scatter of runs that short. Channel by channel instead: one product gives, for every tap
    and input channel, a whole plane of ``W[tap] . dZ`` (``f_h * f_w * n_C_prev`` rows, one
    column per output cell), and each plane is added to the input's plane at the tap's offset.
    The input is cut into its stride-phase planes (cells ``y = q * s_h + phase``), in which a
    tap's offset is a whole number of rows and columns; ``dZ`` is first laid out at the phase
    planes' size (zeros around it), so that offset is one shift of the flattened planes, and
    each tap's plane is added as one contiguous run over every example at once. The zeros add
    nothing to the cells (``x + 0 == x``), and each cell still gets its taps in the order
    ``(i, j)``. Measured at one thread, 1x128x128x3 -> 16 3x3: 2.0 -> 0.6 ms (per-plane adds);
    then, on OpenBLAS's Haswell kernels, one run per tap: 64x64x64x3 -> 8 4x4 20.2 -> 10.8 ms,
    16x28x28x6 -> 16 5x5 2.4 -> 1.9 ms.

    dZ (m, n_H, n_W, n_C), W (f_h, f_w, n_C_prev, n_C); returns dA_prev (m, n_H_prev, n_W_prev,
    n_C_prev).
    """
    m, n_H, n_W, n_C = dZ.shape
    f_h, f_w, n_C_prev, _ = W.shape
    (s_h, s_w), (d_h, d_w) = geom.stride, geom.dilation
    (top, _), (left, _) = geom.pad
    H, W_in = geom.in_hw
    # the padded extent every window and the input itself fit in, and its phase planes: a
    # tap's block (n_H x n_W at offset (q_y, q_x)) stays inside its example's plane
    H_p = max(top + H, (f_h - 1) * d_h + (n_H - 1) * s_h + 1)
    W_p = max(left + W_in, (f_w - 1) * d_w + (n_W - 1) * s_w + 1)
    H_q, W_q = -(-H_p // s_h), -(-W_p // s_w)
    taps = [(divmod(i * d_h, s_h), divmod(j * d_w, s_w)) for i in range(f_h) for j in range(f_w)]
    spill = max(q_y * W_q + q_x for (q_y, _), (q_x, _) in taps)
    W_rows = W.reshape(f_h * f_w * n_C_prev, n_C)
    finite = bool(np.isfinite(W_rows).all())
    dA_prev = np.empty((m, H, W_in, n_C_prev), dtype=dZ.dtype)
    per_example = (f_h * f_w + s_h * s_w) * H_q * W_q * n_C_prev * dZ.dtype.itemsize
    step = max(1, min(m, PLANAR_BLOCK_BYTES // per_example))
    # buffers of one block, reused by the next (no fresh pages to find each time)
    dZ_q = np.zeros((step, H_q, W_q, n_C), dtype=dZ.dtype)
    plane_buf = np.empty(f_h * f_w * n_C_prev * step * H_q * W_q, dtype=dZ.dtype)
    phase_buf = np.empty(s_h * s_w * n_C_prev * (step * H_q * W_q + spill), dtype=dZ.dtype)
    for e0 in range(0, m, step):
        ex = slice(e0, min(m, e0 + step))
        k = ex.stop - ex.start
        dZ_q[:k, :n_H, :n_W] = dZ[ex]
        L = k * H_q * W_q
        planes = plane_buf[: f_h * f_w * n_C_prev * L].reshape(f_h * f_w, n_C_prev, L)
        np.matmul(W_rows, dZ_q[:k].reshape(L, n_C).T, out=planes.reshape(-1, L))
        if not finite:  # inf * 0 is NaN: the zeros around dZ must give exact zeros
            grid = planes.reshape(f_h * f_w, n_C_prev, k, H_q, W_q)
            grid[:, :, :, n_H:] = 0
            grid[:, :, :, :, n_W:] = 0
        phases = phase_buf[: s_h * s_w * n_C_prev * (L + spill)].reshape(
            s_h, s_w, n_C_prev, L + spill)
        phases[...] = 0
        for t, ((q_y, p_y), (q_x, p_x)) in enumerate(taps):
            off = q_y * W_q + q_x
            phases[p_y, p_x, :, off: off + L] += planes[t]
        # (phase_y, phase_x, c, example, q_y, q_x) -> (example, y, x, c)
        grid = phases[:, :, :, :L].reshape(s_h, s_w, n_C_prev, k, H_q, W_q)
        out = grid.transpose(3, 4, 0, 5, 1, 2).reshape(k, H_q * s_h, W_q * s_w, n_C_prev)
        dA_prev[ex] = out[:, top: top + H, left: left + W_in]
    return dA_prev
