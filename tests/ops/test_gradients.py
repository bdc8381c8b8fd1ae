"""Central-difference gradient checks of convolution and both poolings (no ties in the data)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnstep
from cnnstep.nn.gradcheck import numerical_gradient

CONV_SETTINGS = [
    {"stride": 1, "pad": 1},
    {"stride": 2, "pad": 0},  # stride that leaves the last row and column uncovered
    {"stride": (2, 1), "pad": "same", "dilation": (1, 2)},
    {"stride": 1, "pad": ((0, 2), (1, 0)), "dilation": 2},
]


@pytest.mark.parametrize("hp", CONV_SETTINGS, ids=str)
def test_conv_gradients_numerically(hp):
    rng = np.random.default_rng(0)
    A_prev = rng.standard_normal((2, 6, 5, 2))
    W = rng.standard_normal((3, 2, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    Z, cache = cnnstep.conv_forward(A_prev, W, b, hp)
    G = rng.standard_normal(Z.shape)  # loss = sum(G * Z), so dL/dZ = G

    def loss():
        return float(np.sum(G * cnnstep.conv_forward(A_prev, W, b, hp)[0]))

    dA_prev, dW, db = cnnstep.conv_backward(G, cache)
    for analytic, x in ((dA_prev, A_prev), (dW, W), (db, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_uncovered_input_cells_get_exactly_zero():
    rng = np.random.default_rng(1)
    A_prev = rng.standard_normal((1, 8, 8, 1))
    W = rng.standard_normal((3, 3, 1, 2))
    Z, cache = cnnstep.conv_forward(A_prev, W, np.zeros((1, 1, 1, 2)), {"stride": 2, "pad": 0})
    assert Z.shape == (1, 3, 3, 2)  # windows cover rows 0..6 only
    dA_prev, _, _ = cnnstep.conv_backward(np.ones_like(Z), cache)
    assert dA_prev.shape == A_prev.shape
    assert not dA_prev[:, 7, :, :].any() and not dA_prev[:, :, 7, :].any()
    assert dA_prev[:, :7, :7, :].all()


POOL_SETTINGS = [
    {"f": 2, "stride": 2},
    {"f": 3, "stride": 1},  # overlapping windows
    {"f": 3, "stride": 2, "pad": 1},
    {"f": (2, 3), "stride": (1, 2), "pad": "same"},
]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("hp", POOL_SETTINGS, ids=str)
def test_pool_gradients_numerically(hp, mode):
    rng = np.random.default_rng(2)
    # Distinct values spaced far more than eps apart: no ties, so max is differentiable.
    A_prev = rng.permutation(2 * 7 * 6 * 2).reshape(2, 7, 6, 2) * 0.1
    A, cache = cnnstep.pool_forward(A_prev, hp, mode=mode)
    G = rng.standard_normal(A.shape)

    def loss():
        return float(np.sum(G * cnnstep.pool_forward(A_prev, hp, mode=mode)[0]))

    analytic = cnnstep.pool_backward(G, cache, mode=mode)
    np.testing.assert_allclose(analytic, numerical_gradient(loss, A_prev, eps=1e-4),
                               rtol=1e-6, atol=1e-8)


def test_max_pool_ties_keep_the_gradient_sum_and_pick_the_first_maximum():
    A_prev = np.zeros((1, 4, 4, 1))  # every cell ties
    A_prev[0, 1, 1, 0] = A_prev[0, 1, 2, 0] = 5.0  # a tie shared by overlapping windows
    A, cache = cnnstep.pool_forward(A_prev, {"f": 2, "stride": 1})
    dA = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    dA_prev = cnnstep.pool_backward(dA, cache)
    assert dA_prev.sum() == dA.sum()
    expected = np.zeros((4, 4))
    # Windows (0,0), (0,1), (1,0), (1,1) meet (1,1) first; (0,2) and (1,2) see only (1,2).
    expected[1, 1] = 1 + 2 + 4 + 5
    expected[1, 2] = 3 + 6
    # The bottom windows hold only zeros: each routes to its own top-left cell.
    expected[2, 0], expected[2, 1], expected[2, 2] = 7, 8, 9
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], expected)


def test_mask_with_ties_is_the_first_in_row_major_order():
    x = np.array([[1.0, 3.0], [3.0, 0.0]])
    np.testing.assert_array_equal(cnnstep.create_mask_from_window(x), [[False, True],
                                                                        [False, False]])
