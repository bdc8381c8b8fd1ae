"""dtypes, the "same" rule, and the options beyond the original material."""

from __future__ import annotations

import numpy as np
import pytest

import cnnstep
from cnnstep.ops.geometry import resolve_pad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_preserved(dtype):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 5, 5, 3)).astype(dtype)
    W = rng.standard_normal((3, 3, 3, 2)).astype(dtype)
    b = np.zeros((1, 1, 1, 2), dtype)
    Z, cache = cnnstep.conv_forward(A, W, b, {"stride": 1, "pad": 1})
    assert Z.dtype == dtype
    assert all(g.dtype == dtype for g in cnnstep.conv_backward(Z, cache))
    for mode in ("max", "average"):
        P, cache = cnnstep.pool_forward(A, {"f": 2, "stride": 2}, mode=mode)
        assert P.dtype == dtype and cnnstep.pool_backward(P, cache, mode=mode).dtype == dtype
    assert cnnstep.zero_pad(A, 1).dtype == dtype
    assert isinstance(cnnstep.conv_single_step(A[0, :3, :3], W[..., 0], b[..., 0]), dtype)


def test_integer_input_is_computed_in_float64():
    A = np.arange(2 * 4 * 4 * 1).reshape(2, 4, 4, 1)
    W = np.ones((2, 2, 1, 1), dtype=np.int32)
    b = np.zeros((1, 1, 1, 1), dtype=np.int64)
    Z, cache = cnnstep.conv_forward(A, W, b, {"stride": 2, "pad": 0})
    assert Z.dtype == np.float64
    assert Z[0, 0, 0, 0] == 0 + 1 + 4 + 5
    assert all(g.dtype == np.float64 for g in cnnstep.conv_backward(Z, cache))
    P, cache = cnnstep.pool_forward(A, {"f": 2, "stride": 2}, mode="average")
    assert P.dtype == np.float64 and P[0, 0, 0, 0] == 2.5
    assert cnnstep.pool_backward(P, cache, mode="average").dtype == np.float64
    assert cnnstep.distribute_value(3, (2, 2)).dtype == np.float64
    assert cnnstep.distribute_value(np.float32(3), (2, 2)).dtype == np.float32
    assert isinstance(cnnstep.conv_single_step(np.ones((2, 2, 1), int), np.ones((2, 2, 1), int),
                                               np.ones((1, 1, 1), int)), np.float64)


def test_mixed_precision_promotes_to_float64():
    A = np.ones((1, 3, 3, 1), np.float32)
    W = np.ones((2, 2, 1, 1), np.float64)
    Z, _ = cnnstep.conv_forward(A, W, np.zeros((1, 1, 1, 1), np.float32), {"stride": 1, "pad": 0})
    assert Z.dtype == np.float64


def test_tensorflow_same_padding_rule():
    # TensorFlow's documented example: in 13, window 6, stride 5 -> out 3, pad 1 before, 2 after
    assert resolve_pad("same", (13, 13), (6, 6), (5, 5), "pad", "f") == ((1, 2), (1, 2))
    # even kernel, stride 1: the smaller half goes on top/left
    assert resolve_pad("same", (7, 6), (4, 2), (1, 1), "pad", "f") == ((1, 2), (0, 1))
    # stride 2 that divides the input: less padding than stride 1
    assert resolve_pad("same", (8, 8), (3, 3), (2, 2), "pad", "f") == ((0, 1), (0, 1))
    # no negative padding when the window is smaller than the stride
    assert resolve_pad("same", (5, 5), (1, 1), (3, 3), "pad", "f") == ((0, 0), (0, 0))
    assert resolve_pad("valid", (9, 9), (3, 3), (1, 1), "pad", "f") == ((0, 0), (0, 0))


@pytest.mark.parametrize("n,f,s,d", [(7, 3, 1, 1), (7, 4, 2, 1), (10, 3, 3, 2), (5, 2, 2, 1),
                                     (1, 3, 1, 1), (6, 1, 4, 1)])
def test_same_output_size_is_ceil_n_over_stride(n, f, s, d):
    A = np.ones((1, n, n + 1, 1))
    W = np.ones((f, f, 1, 1))
    Z, _ = cnnstep.conv_forward(A, W, np.zeros((1, 1, 1, 1)),
                                {"stride": s, "pad": "same", "dilation": d})
    assert Z.shape[1:3] == (-(-n // s), -(-(n + 1) // s))
    P, _ = cnnstep.pool_forward(A, {"f": f, "stride": s, "pad": "same"})
    assert P.shape[1:3] == (-(-n // s), -(-(n + 1) // s))


def test_max_pool_ignores_padding_even_for_negative_inputs():
    A = -np.ones((1, 2, 2, 1))
    P, cache = cnnstep.pool_forward(A, {"f": 2, "stride": 1, "pad": 1}, mode="max")
    assert P.shape == (1, 3, 3, 1) and (P == -1).all()  # zero padding would have won
    dA_prev = cnnstep.pool_backward(np.ones_like(P), cache, mode="max")
    assert dA_prev.sum() == 9


def test_average_pool_divides_by_real_cells_only():
    A = np.ones((1, 3, 3, 1))
    P, cache = cnnstep.pool_forward(A, {"f": 3, "stride": 1, "pad": 1}, mode="average")
    np.testing.assert_allclose(P, 1.0)  # zero padding counted would give 4/9 in the corners
    dA_prev = cnnstep.pool_backward(np.ones_like(P), cache, mode="average")
    np.testing.assert_allclose(dA_prev.sum(), P.size)  # each window's gradient sums to 1


def test_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 5, 5, 2))
    W = rng.standard_normal((3, 3, 2, 2))
    b = rng.standard_normal((1, 1, 1, 2))
    copies = [x.copy() for x in (A, W, b)]
    Z, cache = cnnstep.conv_forward(A, W, b, {"stride": 1, "pad": 0})
    dZ = Z.copy()
    cnnstep.conv_backward(dZ, cache)
    P, pc = cnnstep.pool_forward(A, {"f": 2, "stride": 1})
    cnnstep.pool_backward(P, pc)
    for x, c in zip((A, W, b), copies):
        np.testing.assert_array_equal(x, c)
    np.testing.assert_array_equal(dZ, Z)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 6, 6, 4))[:, ::-1, :, ::2]
    W = rng.standard_normal((3, 3, 4, 2))[:, :, ::2]
    b = rng.standard_normal((1, 1, 1, 2))
    Z, cache = cnnstep.conv_forward(A, W, b, {"stride": 1, "pad": 1})
    Zc, cachec = cnnstep.conv_forward(np.ascontiguousarray(A), np.ascontiguousarray(W), b,
                                      {"stride": 1, "pad": 1})
    np.testing.assert_allclose(Z, Zc)
    dZ = rng.standard_normal(Z.shape)[:, ::-1]
    for g, gc in zip(cnnstep.conv_backward(dZ, cache),
                     cnnstep.conv_backward(np.ascontiguousarray(dZ), cachec)):
        np.testing.assert_allclose(g, gc)


def test_b_as_number_array_and_b_flat_in_conv_single_step():
    a = np.ones((2, 2, 1))
    assert cnnstep.conv_single_step(a, a, 1.5) == 5.5
    assert cnnstep.conv_single_step(a, a, np.array([[[1.5]]])) == 5.5
