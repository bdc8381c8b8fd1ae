"""The fast paths of convolution and pooling, each against the reference loops.

Every special route the vectorized ops take (blocks of rows under a memory budget, the stride-1
correlation for the input gradient, the scatter for strides, 1x1 convolutions, few channels,
tiled pooling windows, the tie and NaN fallbacks of max pooling) gets its own cases here, so a
route that only some shapes reach cannot break unnoticed. The workspace bound is asserted with
tracemalloc (memory, unlike time, is deterministic enough to assert).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from rounding import assert_equal_up_to_rounding, conv_abs_sums, conv_terms

import cnnstep
from cnnstep import reference
from cnnstep.ops.kernels import conv, conv_grads, im2col, pool
from cnnstep.ops.kernels.workspace import CACHE_BLOCK_BYTES, row_blocks, workspace_budget

TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=1e-4)}


def _conv_data(m, H, W, C, F, f, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    f_h, f_w = (f, f) if isinstance(f, int) else f
    A = rng.standard_normal((m, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((f_h, f_w, C, F)).astype(dtype)
    b = rng.standard_normal((1, 1, 1, F)).astype(dtype)
    return A, Wt, b, rng


def _check_conv(A, Wt, b, hp, rng, budget=None):
    """conv forward + backward equal the loops (under ``budget``); returns the fast results."""
    with workspace_budget(budget):
        Z, cache = cnnstep.conv_forward(A, Wt, b, hp)
        dZ = rng.standard_normal(Z.shape).astype(Z.dtype)
        dA, dW, db = cnnstep.conv_backward(dZ, cache)
    A64, W64, b64 = (x.astype(np.float64) for x in (A, Wt, b))
    Zr, cr = reference.conv_forward(A64, W64, b64, hp)
    dAr, dWr, dbr = reference.conv_backward(dZ.astype(np.float64), cr)
    tol = TOL[np.float32] if Z.dtype == np.float32 else TOL[np.float64]
    for got, want in ((Z, Zr), (dA, dAr), (dW, dWr), (db, dbr)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **tol)
    return Z, dA, dW, db


# ----------------------------------------------------------------------------- blocks and budget


@pytest.mark.parametrize(
    "m, n_H, row_bytes, target",
    [(10, 7, 100, 700), (10, 7, 100, 2000), (3, 7, 100, 300), (3, 7, 100, 1), (1, 1, 5, 1),
     (5, 4, 10, 10**9)],
)
def test_row_blocks_cover_every_output_row_once(m, n_H, row_bytes, target):
    seen = np.zeros((m, n_H), dtype=int)
    for ex, h0, h1 in row_blocks(m, n_H, row_bytes, target):
        assert ex.step is None and h0 < h1
        k = ex.stop - ex.start
        # A block fits the target unless it is a single row (the smallest block there is).
        assert k * (h1 - h0) * row_bytes <= target or (k, h1 - h0) == (1, 1)
        if k > 1:
            assert (h0, h1) == (0, n_H)  # several examples: whole examples only
        seen[ex, h0:h1] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize(
    "budget",
    [None, 1, 700, 4_000, 30_000],  # one row at a time ... several whole examples per block
)
@pytest.mark.parametrize(
    "shape, hp",
    [
        ((5, 7, 6, 3, 4, 3), {"stride": 1, "pad": 1}),  # correlation route
        ((5, 7, 6, 3, 40, 3), {"stride": 1, "pad": 1}),  # scatter route (many filters)
        ((5, 9, 8, 3, 4, 3), {"stride": 2, "pad": 1}),  # scatter route (stride)
        ((4, 8, 7, 2, 3, 2), {"stride": 1, "pad": "same"}),  # asymmetric padding
    ],
)
def test_results_do_not_depend_on_the_budget(shape, hp, budget):
    A, Wt, b, rng = _conv_data(*shape)
    _check_conv(A, Wt, b, hp, rng, budget=budget)


def test_a_budget_at_or_above_one_block_gives_bitwise_equal_results():
    """The blocks are cut at CACHE_BLOCK_BYTES whatever larger budget is set, so every product
    is the same call and the results are the same bits (on any CPU and BLAS kernel)."""
    A, Wt, b, rng = _conv_data(16, 20, 20, 8, 16, 3, dtype=np.float32)
    hp = {"stride": 1, "pad": 1}
    Z, cache = cnnstep.conv_forward(A, Wt, b, hp)
    dZ = rng.standard_normal(Z.shape).astype(np.float32)
    grads = cnnstep.conv_backward(dZ, cache)
    for budget in (CACHE_BLOCK_BYTES, 3 * CACHE_BLOCK_BYTES, 2**40):
        with workspace_budget(budget):
            Z2, cache2 = cnnstep.conv_forward(A, Wt, b, hp)
            grads2 = cnnstep.conv_backward(dZ, cache2)
        np.testing.assert_array_equal(Z2, Z)
        for got, want in zip(grads2, grads):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n_C_prev", [4, 8])  # wide windows, and the im2col route
def test_smaller_budgets_give_the_same_results_up_to_rounding(n_C_prev):
    """Below one block the blocks shrink, and BLAS may round a row differently in a product
    of fewer rows (OpenBLAS's Haswell kernels do): equal up to float rounding."""
    A, Wt, b, rng = _conv_data(6, 9, 9, n_C_prev, 5, 3, dtype=np.float32)
    hp = {"stride": 1, "pad": 1}
    Z_big, cache = cnnstep.conv_forward(A, Wt, b, hp)
    dZ = rng.standard_normal(Z_big.shape).astype(np.float32)
    big = cnnstep.conv_backward(dZ, cache)
    Z_abs = conv_abs_sums(A, Wt, b, hp)
    grad_abs = conv_abs_sums(A, Wt, b, hp, dZ)
    n = conv_terms(A, Wt, dZ)
    for budget in (1, 500, 5_000):
        with workspace_budget(budget):
            Z_small, cache = cnnstep.conv_forward(A, Wt, b, hp)
            small = cnnstep.conv_backward(dZ, cache)
        assert_equal_up_to_rounding(Z_small, Z_big, Z_abs, n)
        for got, want, abs_sums in zip(small, big, grad_abs):
            assert_equal_up_to_rounding(got, want, abs_sums, n)


# ----------------------------------------------------------------------------- dA_prev routes


@pytest.mark.parametrize(
    "shape, hp",
    [
        ((2, 6, 6, 4, 8, 3), {"stride": 1, "pad": 1}),
        ((2, 6, 6, 4, 8, 3), {"stride": 1, "pad": 0}),
        # Padding larger than the kernel extent: the outer rows of dZ reach no input cell.
        ((2, 5, 5, 3, 4, 2), {"stride": 1, "pad": 3}),
        ((2, 5, 5, 3, 4, 1), {"stride": 1, "pad": 2}),
        ((2, 6, 7, 3, 4, 3), {"stride": 1, "pad": ((0, 4), (3, 1))}),
        ((2, 9, 9, 3, 4, 3), {"stride": 1, "pad": 2, "dilation": 2}),
        ((2, 9, 8, 3, 4, (3, 2)), {"stride": 1, "pad": "same", "dilation": (1, 3)}),
        ((2, 7, 7, 1, 6, 5), {"stride": 1, "pad": 2}),  # one channel, still the correlation
        # >= 8 input channels: dW from the same window matrix of dZ
        ((2, 6, 7, 8, 5, 3), {"stride": 1, "pad": 1}),
        ((2, 5, 5, 12, 4, 2), {"stride": 1, "pad": 3}),
        ((2, 9, 9, 9, 4, 3), {"stride": 1, "pad": ((0, 3), (2, 1)), "dilation": 2}),
    ],
)
def test_stride_one_input_gradient_by_correlation(shape, hp, monkeypatch):
    monkeypatch.setattr(conv_grads, "prefers_correlation", lambda *args: True)
    A, Wt, b, rng = _conv_data(*shape)
    _check_conv(A, Wt, b, hp, rng)
    _check_conv(A, Wt, b, hp, rng, budget=300)


@pytest.mark.parametrize(
    "shape, hp",
    [
        ((2, 6, 6, 1, 32, 5), {"stride": 1, "pad": 2}),  # many more filters than channels
        ((2, 7, 7, 3, 4, 3), {"stride": 2, "pad": 1}),
        ((2, 8, 9, 5, 4, 3), {"stride": (2, 3), "pad": 0}),
        ((2, 9, 9, 4, 3, 3), {"stride": 3, "pad": 4}),  # windows wholly in padding
        ((2, 9, 9, 2, 3, 3), {"stride": 2, "pad": 1, "dilation": 2}),
        ((2, 2, 2, 16, 64, 3), {"stride": 1, "pad": 1}),  # deep and small: kernel outweighs maps
    ],
)
def test_scatter_input_gradient(shape, hp, monkeypatch):
    monkeypatch.setattr(conv_grads, "prefers_correlation", lambda *args: False)
    A, Wt, b, rng = _conv_data(*shape)
    _check_conv(A, Wt, b, hp, rng)


STRIDED_CASES = [
    ((2, 7, 7, 3, 4, 3), {"stride": 2, "pad": 1}),
    ((2, 8, 8, 3, 4, 3), {"stride": 2, "pad": 1}),  # stride does not divide
    ((2, 9, 8, 2, 3, (3, 2)), {"stride": (2, 3), "pad": 0}),
    ((2, 9, 9, 4, 3, 3), {"stride": 3, "pad": 4}),  # windows wholly in padding
    ((2, 9, 9, 3, 3, 2), {"stride": 3, "pad": 0}),  # stride longer than the kernel
    ((2, 10, 9, 3, 5, 4), {"stride": 2, "pad": "same"}),  # asymmetric padding
    ((2, 11, 11, 3, 2, 5), {"stride": 4, "pad": ((3, 0), (1, 4))}),
    ((2, 6, 6, 3, 4, 1), {"stride": 2, "pad": 1}),
    ((2, 9, 9, 8, 5, 3), {"stride": 2, "pad": 1}),  # >= 8 channels: dW from the phases
    ((2, 10, 9, 10, 3, (3, 2)), {"stride": (3, 2), "pad": ((2, 0), (1, 1))}),
]


@pytest.mark.parametrize("route", ["phases", "scatter"])
@pytest.mark.parametrize("shape, hp", STRIDED_CASES)
def test_strided_input_gradient_both_routes(shape, hp, route, monkeypatch):
    # Force each route, whatever the cost model would pick for these small shapes.
    monkeypatch.setattr(conv_grads, "prefers_correlation", lambda *args: route == "phases")
    A, Wt, b, rng = _conv_data(*shape)
    _check_conv(A, Wt, b, hp, rng)
    _check_conv(A, Wt, b, hp, rng, budget=300)


@pytest.mark.parametrize("n_C_prev", [1, 2, 3, 7, 8, 9])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("route", ["correlation", "scatter"])
def test_few_input_channels(n_C_prev, stride, route, monkeypatch):
    # Scatter: between 2 and 7 channels it loops per channel; 1 and >= 8 add whole slices.
    # Correlation: below 8 channels dW comes from window copies of A_prev, else from dZ's.
    monkeypatch.setattr(conv_grads, "prefers_correlation", lambda *args: route == "correlation")
    A, Wt, b, rng = _conv_data(2, 7, 7, n_C_prev, 5, 3)
    _check_conv(A, Wt, b, {"stride": stride, "pad": 1}, rng)


@pytest.mark.parametrize("stride, pad", [(1, 0), (1, 1), (2, 0), ((1, 2), 0)])
def test_stride_that_does_not_divide_leaves_zero_gradient(stride, pad):
    A, Wt, b, rng = _conv_data(2, 8, 8, 3, 4, 3)
    hp = {"stride": 3, "pad": 0}
    _, dA, _, _ = _check_conv(A, Wt, b, hp, rng)
    assert not dA[:, 6:].any() and not dA[:, :, 6:].any()  # rows/cols 6, 7: read by no window
    _check_conv(A, Wt, b, {"stride": stride, "pad": pad}, rng)


@pytest.mark.parametrize("f", [1, 3])
def test_empty_batch(f):
    A, Wt, b, rng = _conv_data(0, 5, 5, 3, 4, f)
    Z, cache = cnnstep.conv_forward(A, Wt, b, {"stride": 1, "pad": 1})
    dA, dW, db = cnnstep.conv_backward(np.zeros(Z.shape), cache)
    assert Z.shape == (0, 5 + 3 - f, 5 + 3 - f, 4) and dA.shape == A.shape
    assert not dW.any() and not db.any() and dW.shape == Wt.shape


# ----------------------------------------------------------------------------- 1x1 convolutions


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "hp", [{"stride": 1, "pad": 0}, {"stride": 2, "pad": 0}, {"stride": 1, "pad": 1},
           {"stride": 1, "pad": "same"}],
)
def test_pointwise_convolution(hp, dtype):
    A, Wt, b, rng = _conv_data(3, 5, 6, 7, 4, 1, dtype=dtype)
    Z, dA, dW, db = _check_conv(A, Wt, b, hp, rng)
    assert Z.dtype == dA.dtype == dW.dtype == db.dtype == dtype


def test_pointwise_convolution_of_non_contiguous_and_integer_input():
    A, Wt, b, rng = _conv_data(3, 5, 6, 4, 4, 1)
    _check_conv(np.asfortranarray(A), Wt, b, {"stride": 1, "pad": 0}, rng)
    _check_conv(A[:, ::2, ::-1], Wt, b, {"stride": 1, "pad": 0}, rng)
    A_int = np.round(A * 3).astype(np.int32)
    Z, *_ = _check_conv(A_int, Wt, b, {"stride": 1, "pad": 0}, rng)
    assert Z.dtype == np.float64


def test_float32_stays_float32_on_every_route():
    for F, hp in ((4, {"stride": 1, "pad": 1}), (40, {"stride": 1, "pad": 1}),
                  (4, {"stride": 2, "pad": 1})):
        A, Wt, b, rng = _conv_data(2, 7, 7, 3, F, 3, dtype=np.float32)
        for out in _check_conv(A, Wt, b, hp, rng, budget=2_000):
            assert out.dtype == np.float32


def test_float32_sums_over_a_large_batch_stay_accurate():
    # db and dW add up many float32 products; block-wise partial sums keep them accurate.
    rng = np.random.default_rng(3)
    A = rng.random((64, 16, 16, 2), dtype=np.float32)
    Wt = rng.random((3, 3, 2, 3), dtype=np.float32)
    b = np.zeros((1, 1, 1, 3), np.float32)
    hp = {"stride": 1, "pad": 1}
    Z, cache = cnnstep.conv_forward(A, Wt, b, hp)
    dZ = rng.random(Z.shape, dtype=np.float32)
    _, dW, db = cnnstep.conv_backward(dZ, cache)
    np.testing.assert_allclose(db.ravel(), dZ.astype(np.float64).sum(axis=(0, 1, 2)), rtol=1e-5)
    _, dW64, _ = cnnstep.conv_backward(dZ.astype(np.float64), cnnstep.conv_forward(
        A.astype(np.float64), Wt.astype(np.float64), b.astype(np.float64), hp)[1])
    np.testing.assert_allclose(dW, dW64, rtol=1e-5)


# ----------------------------------------------------------------------------- workspace


def _conv_workspace(m: int, budget: int | None) -> int:
    """Bytes traced during conv forward + backward beyond the inputs and the outputs."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, 16, 16, 8), dtype=np.float32)
    Wt = rng.standard_normal((3, 3, 8, 16), dtype=np.float32)
    b = np.zeros((1, 1, 1, 16), np.float32)
    dZ = rng.standard_normal((m, 16, 16, 16), dtype=np.float32)
    hp = {"stride": 1, "pad": 1}
    with workspace_budget(budget):
        # One untraced run first: one-time allocations (lazy imports, NumPy's and the BLAS's
        # first-call buffers) are not workspace, and would make the number depend on test order.
        cnnstep.conv_backward(dZ, cnnstep.conv_forward(A, Wt, b, hp)[1])
        tracemalloc.start()
        try:
            Z, cache = cnnstep.conv_forward(A, Wt, b, hp)
            grads = cnnstep.conv_backward(dZ, cache)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak - Z.nbytes - sum(g.nbytes for g in grads)


@pytest.mark.parametrize("m", [8, 64])
def test_workspace_stays_within_the_budget_whatever_the_batch(m):
    budget = 64 * 2**10
    ws = _conv_workspace(m, budget)
    # Scratch of one block (<= budget) plus the padded input rows that block reads.
    assert ws <= 1.5 * budget, ws
    # The im2col matrix of the whole batch would be 9x the input: far above that.
    assert m * 16 * 16 * 9 * 8 * 4 > 4 * budget


def test_default_workspace_is_far_below_the_im2col_matrix():
    ws = _conv_workspace(64, None)
    assert ws <= 8 * 2**20, ws


# ----------------------------------------------------------------------------- pooling


def _check_pool(A, hp, mode, rng):
    Z, cache = cnnstep.pool_forward(A, hp, mode)
    dZ = rng.standard_normal(Z.shape).astype(Z.dtype)
    dA = cnnstep.pool_backward(dZ, cache, mode)
    Zr, cr = reference.pool_forward(A.astype(np.float64), hp, mode)
    dAr = reference.pool_backward(dZ.astype(np.float64), cr, mode)
    tol = TOL[np.float32] if Z.dtype == np.float32 else TOL[np.float64]
    assert Z.shape == Zr.shape and dA.shape == dAr.shape == A.shape
    np.testing.assert_allclose(Z, Zr, **tol)
    np.testing.assert_allclose(dA, dAr, **tol)
    return Z, dA


POOL_CASES = [
    # tiled windows (stride == window, no padding): the reshape route
    (6, 6, 2, 2, 0),
    (8, 8, 4, 4, 0),
    (7, 9, 2, 2, 0),  # rows and columns left over
    (6, 6, (2, 3), (2, 3), 0),
    (5, 5, 1, 1, 0),
    # other geometries: the tap route
    (7, 7, 3, 2, 1),
    (6, 6, 3, 1, 0),
    (8, 8, 2, 3, 0),  # gaps between windows
    (7, 8, (3, 2), (2, 1), ((1, 2), (0, 1))),
    (6, 6, 2, 2, ((1, 0), (0, 1))),  # tiled sizes, but padded
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("H, W, f, s, pad", POOL_CASES)
def test_pooling_routes(H, W, f, s, pad, mode, dtype):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, H, W, 5)).astype(dtype)
    Z, dA = _check_pool(A, {"f": f, "stride": s, "pad": pad}, mode, rng)
    assert Z.dtype == dA.dtype == dtype


@pytest.mark.parametrize("H, W, f, s, pad", POOL_CASES)
def test_max_pool_ties_fall_back_to_the_first_maximum(H, W, f, s, pad):
    rng = np.random.default_rng(2)
    A = np.round(rng.standard_normal((3, H, W, 4)))  # many ties
    _, dA = _check_pool(A, {"f": f, "stride": s, "pad": pad}, "max", rng)
    A_const = np.ones((2, H, W, 3))  # everything tied
    _check_pool(A_const, {"f": f, "stride": s, "pad": pad}, "max", rng)


@pytest.mark.parametrize("f, s", [(2, 2), (3, 2)])
def test_max_pool_backward_keeps_the_gradient_sum_with_ties(f, s):
    A = np.zeros((2, 6, 6, 3), dtype=np.float32)
    Z, cache = cnnstep.pool_forward(A, {"f": f, "stride": s}, "max")
    dZ = np.ones_like(Z)
    dA = cnnstep.pool_backward(dZ, cache, "max")
    assert dA.sum() == dZ.sum()
    assert dA[0, 0, 0, 0] == 1  # the top-left cell is first in its (only) window


@pytest.mark.parametrize("f, s", [(2, 2), (3, 1)])
def test_max_pool_with_nan_matches_the_loops(f, s):
    rng = np.random.default_rng(4)
    A = rng.standard_normal((2, 6, 6, 3))
    A[0, 1, 1, 0] = np.nan
    Z, cache = cnnstep.pool_forward(A, {"f": f, "stride": s}, "max")
    Zr, cr = reference.pool_forward(A, {"f": f, "stride": s}, "max")
    np.testing.assert_array_equal(np.isnan(Z), np.isnan(Zr))
    dZ = rng.standard_normal(Z.shape)
    np.testing.assert_allclose(
        cnnstep.pool_backward(dZ, cache, "max"), reference.pool_backward(dZ, cr, "max")
    )


def test_padded_max_pool_with_minus_infinity_input():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((2, 5, 5, 2))
    A[:, :2, :2] = -np.inf
    _check_pool(A, {"f": 3, "stride": 2, "pad": 1}, "max", rng)


def test_tiled_pooling_of_non_contiguous_and_integer_input():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((3, 8, 8, 4))
    for mode in ("max", "average"):
        _check_pool(A.transpose(0, 2, 1, 3), {"f": 2, "stride": 2}, mode, rng)
        _check_pool(A[:, :, :, ::2], {"f": 2, "stride": 2}, mode, rng)
        Z, dA = _check_pool(np.round(A * 4).astype(np.int64), {"f": 2, "stride": 2}, mode, rng)
        assert Z.dtype == dA.dtype == np.float64


@pytest.mark.parametrize("n_C", [3, pool.WIDE_CHANNELS - 1, pool.WIDE_CHANNELS, 20])
@pytest.mark.parametrize("hp", [{"f": 2, "stride": 2}, {"f": (2, 3), "stride": (2, 3)}], ids=str)
def test_tiled_pooling_on_both_sides_of_the_channel_route(n_C, hp):
    """Tiled backward passes take one of two broadcasts by channel count: both match the loops,
    with distinct values, ties, NaN and non-contiguous input."""
    rng = np.random.default_rng(8)
    A = rng.standard_normal((2, 8, 9, n_C))
    for mode in ("max", "average"):
        _check_pool(A, hp, mode, rng)
        _check_pool(A.transpose(0, 2, 1, 3)[:, :8, :8], hp, mode, rng)
    ties = rng.integers(0, 2, size=A.shape).astype(np.float32)
    Z, cache = cnnstep.pool_forward(ties, hp, "max")
    assert cnnstep.pool_backward(np.ones_like(Z), cache, "max").sum() == Z.size
    _check_pool(ties, hp, "max", rng)
    A[0, 1, 1, 0] = np.nan
    Z, cache = cnnstep.pool_forward(A, hp, "max")
    dZ = rng.standard_normal(Z.shape)
    np.testing.assert_allclose(cnnstep.pool_backward(dZ, cache, "max"),
                               reference.pool_backward(dZ, reference.pool_forward(A, hp)[1]))


@pytest.mark.parametrize(
    "hp",
    [
        {"f": 2, "stride": 2},  # tiles that cover the input
        {"f": (2, 3), "stride": (2, 3)},  # tiles leaving rows and columns over
        {"f": 3, "stride": 1},  # overlapping
        {"f": 2, "stride": 3},  # disjoint with gaps
        {"f": 3, "stride": 2, "pad": 1},  # padded
        {"f": 2, "stride": 2, "pad": "same"},
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_backward_with_ties_everywhere(hp, dtype):
    """Real training data ties a lot (flat backgrounds, ReLU zeros): every route must send each
    window's gradient to its first maximum only, like the loops."""
    rng = np.random.default_rng(5)
    A = rng.integers(0, 2, size=(3, 8, 9, 4)).astype(dtype)
    A[0] = 0.0  # a whole example of ties
    Z, dA = _check_pool(A, hp, "max", rng)
    Z2, cache = cnnstep.pool_forward(A, hp, "max")
    ones = np.ones_like(Z2)
    # with an all-ones upstream gradient, every window hands exactly 1 to one cell
    assert cnnstep.pool_backward(ones, cache, "max").sum() == Z2.size


@pytest.mark.parametrize(
    "shape, hp",
    [
        ((2, 6, 7, 3, 4, 3), {"stride": 1, "pad": 1}),
        ((2, 6, 7, 9, 4, 3), {"stride": 1, "pad": "same"}),
        ((2, 9, 8, 2, 3, (3, 2)), {"stride": (2, 3), "pad": 0}),
        ((2, 9, 9, 2, 3, 3), {"stride": 2, "pad": 1, "dilation": 2}),
        ((2, 5, 4, 6, 3, 1), {"stride": 1, "pad": 0}),  # 1x1: a single matrix product
        ((0, 5, 5, 2, 3, 3), {"stride": 1, "pad": 1}),  # empty batch
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_backward_without_input_gradient(shape, hp, dtype):
    # Training skips dA_prev of a network's first layer: dW and db must not change.
    A, Wt, b, rng = _conv_data(*shape, dtype=dtype)
    Z, cache = cnnstep.conv_forward(A, Wt, b, hp)
    dZ = rng.standard_normal(Z.shape).astype(dtype)
    _, dW, db = cnnstep.conv_backward(dZ, cache)
    dW2, db2 = conv.conv_backward_params(dZ, cache)
    assert dW2.dtype == dW.dtype == dtype and db2.dtype == dtype
    assert dW2.shape == Wt.shape and db2.shape == b.shape
    np.testing.assert_allclose(dW2, dW, **TOL[dtype])
    np.testing.assert_allclose(db2, db, **TOL[dtype])
    _, dWr, dbr = reference.conv_backward(
        dZ.astype(np.float64), reference.conv_forward(
            *(x.astype(np.float64) for x in (A, Wt, b)), hp)[1])
    np.testing.assert_allclose(dW2, dWr, **TOL[dtype])
    np.testing.assert_allclose(db2, dbr, **TOL[dtype])


def test_bias_gradient_is_accurate_over_a_large_batch():
    # db sums dZ in chunks of 4096 rows through BLAS products: check the chunk edges and the
    # float32 rounding against a float64 sum.
    rng = np.random.default_rng(0)
    for rows in (1, 4095, 4096, 4097, 3 * 4096 + 5):
        X = (rng.standard_normal((rows, 5)) + 0.5).astype(np.float32)
        s = im2col.batch_sums(X)
        assert s.dtype == np.float32 and s.shape == (5,)
        np.testing.assert_allclose(s, X.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-3)
    assert np.array_equal(im2col.batch_sums(np.zeros((0, 3), np.float32)), np.zeros(3))


@pytest.mark.parametrize(
    "shape, hp, correlation",
    [
        ((64, 32, 32, 32, 64, 3), {"stride": 2, "pad": 1}, False),  # phases of <= 2x2 taps
        ((32, 15, 15, 32, 32, 3), {"stride": 2, "pad": 0}, False),
        ((4, 15, 15, 32, 32, (3, 1)), {"stride": (2, 1), "pad": 0}, False),
        ((32, 32, 32, 32, 64, 2), {"stride": 2, "pad": 0}, True),  # one tap per phase
        ((16, 32, 32, 64, 64, 5), {"stride": 2, "pad": 2}, True),  # phases of up to 3x3
        ((4, 15, 15, 32, 32, (1, 2)), {"stride": (2, 1), "pad": 0}, True),  # no split on w
        ((64, 32, 32, 16, 32, 3), {"stride": 1, "pad": 1}, True),
    ],
)
def test_cost_model_routes(shape, hp, correlation):
    from cnnstep.ops.geometry import conv_geometry

    m, H, W, C, F, f = shape
    f_h, f_w = (f, f) if isinstance(f, int) else f
    A = np.broadcast_to(np.float32(0), (m, H, W, C))
    Wt = np.zeros((f_h, f_w, C, F), np.float32)
    b = np.zeros((1, 1, 1, F), np.float32)
    geom = conv_geometry(A, Wt, b, hp, "conv_forward")
    assert conv_grads.prefers_correlation(geom, m, C, F) is correlation


@pytest.mark.parametrize("hp", [{"f": 2, "stride": 2}, {"f": 3, "stride": 2, "pad": 1}], ids=str)
def test_pool_backward_with_output_matches_pool_backward(hp):
    rng = np.random.default_rng(9)
    A = np.round(rng.standard_normal((2, 8, 8, 16)) * 2).astype(np.float32)  # ties
    for mode in ("max", "average"):
        Z, cache = cnnstep.pool_forward(A, hp, mode)
        dZ = rng.standard_normal(Z.shape).astype(np.float32)
        want = cnnstep.pool_backward(dZ, cache, mode)
        np.testing.assert_array_equal(pool.pool_backward_with_output(dZ, cache, Z, mode), want)
        # an output that cannot be this pass's (another dtype) is not trusted: maxima found again
        np.testing.assert_array_equal(
            pool.pool_backward_with_output(dZ, cache, Z.astype(np.float64), mode), want)
