"""The window matrix kept by the training forward pass gives the same gradients as new copies."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep.ops.kernels.conv import (
    conv_backward,
    conv_backward_params,
    conv_forward,
    conv_forward_windows,
)
from cnnstep.ops.kernels.conv_grads import conv_grads
from cnnstep.ops.kernels.workspace import workspace_budget

CASES = [
    ((3, 7, 7, 1), (3, 3, 1, 4), {"stride": 1, "pad": "same"}),  # a first layer on MNIST
    ((2, 9, 8, 3), (4, 4, 3, 5), {"stride": 2, "pad": 1}),  # strided: the scatter route
    ((2, 6, 6, 2), (1, 1, 2, 3), {"stride": 1, "pad": 1}),  # 1x1 with padding: im2col's view
    ((2, 8, 8, 5), (3, 3, 5, 4), {"stride": 1, "pad": 2, "dilation": 2}),
    ((2, 6, 6, 12), (3, 3, 12, 4), {"stride": 1, "pad": 1}),  # many channels: dW from dZ
]


def problem(a_shape, w_shape, dtype, seed):
    """Random A_prev, W, b of the given shapes and dtype."""
    rng = np.random.default_rng(seed)
    return rng, *(rng.standard_normal(shape).astype(dtype)
                  for shape in (a_shape, w_shape, (1, 1, 1, w_shape[3])))


@pytest.mark.parametrize("a_shape, w_shape, hp", CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kept_windows_give_the_same_gradients(a_shape, w_shape, hp, dtype):
    rng, A, W, b = problem(a_shape, w_shape, dtype, 0)
    Z, cache = conv_forward(A, W, b, hp)
    Z2, cache2, windows = conv_forward_windows(A, W, b, hp)
    np.testing.assert_array_equal(Z, Z2)
    assert windows is not None and windows.dtype == dtype
    dZ = rng.standard_normal(Z.shape).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12}
    for got, want in zip(conv_backward_params(dZ, cache2, windows),
                         conv_backward_params(dZ, cache)):
        np.testing.assert_allclose(got, want, **tol)
    for got, want in zip(conv_grads(dZ, cache2, True, windows), conv_backward(dZ, cache)):
        np.testing.assert_allclose(got, want, **tol)


def test_windows_over_the_budget_are_not_kept():
    A = np.ones((2, 8, 8, 3), dtype=np.float32)
    W = np.ones((3, 3, 3, 4), dtype=np.float32)
    b = np.zeros((1, 1, 1, 4), dtype=np.float32)
    with workspace_budget(1024):
        Z, _, windows = conv_forward_windows(A, W, b, {"stride": 1, "pad": 1})
    assert windows is None
    np.testing.assert_array_equal(Z, conv_forward(A, W, b, {"stride": 1, "pad": 1})[0])


def test_windows_of_another_shape_are_refused():
    A = np.ones((2, 8, 8, 3), dtype=np.float32)
    W = np.ones((3, 3, 3, 4), dtype=np.float32)
    Z, cache, windows = conv_forward_windows(A, W, np.zeros((1, 1, 1, 4), np.float32),
                                             {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="windows must be the window matrix"):
        conv_backward_params(Z, cache, windows[:-1])


# ------------------------------------------------------------------- wide windows (few channels)

WIDE_CASES = [
    ((2, 7, 9, 1), (3, 3, 1, 4), {"stride": 1, "pad": "same"}),  # n_W not a multiple of GROUP
    ((2, 6, 8, 3), (4, 4, 3, 5), {"stride": 1, "pad": "same"}),  # even kernel: asymmetric pad
    ((1, 5, 3, 2), (2, 3, 2, 3), {"stride": 1, "pad": 0}),  # n_W = 1 after a 3-wide kernel
    ((2, 5, 6, 4), (3, 2, 4, 2), {"stride": 1, "pad": ((0, 2), (3, 1))}),
    ((2, 4, 5, 1), (2, 2, 1, 3), {"stride": 1, "pad": 4}),  # padding beyond the kernel
    ((3, 6, 13, 2), (5, 5, 2, 6), {"stride": 1, "pad": 2}),
]


@pytest.mark.parametrize("a_shape, w_shape, hp", WIDE_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_channel_convolution_matches_the_loops(a_shape, w_shape, hp, dtype):
    from cnnstep import reference

    rng, A, W, b = problem(a_shape, w_shape, dtype, 3)
    Zr, cr = reference.conv_forward(A.astype(np.float64), W.astype(np.float64),
                                    b.astype(np.float64), hp)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10}
    for X in (A, np.asfortranarray(A)):  # contiguous or not
        Z, cache = conv_forward(X, W, b, hp)
        np.testing.assert_allclose(Z, Zr, **tol)
        dZ = rng.standard_normal(Z.shape).astype(dtype)
        want = reference.conv_backward(dZ.astype(np.float64), cr)
        for got, ref in zip(conv_backward(dZ, cache), want):
            np.testing.assert_allclose(got, ref, **tol)
        Z2, cache2, windows = conv_forward_windows(X, W, b, hp)
        np.testing.assert_array_equal(Z2, Z)
        for got, ref in zip(conv_backward_params(dZ, cache2, windows), want[1:]):
            np.testing.assert_allclose(got, ref, **tol)
