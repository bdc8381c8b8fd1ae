"""Every published value of the step-by-step material, from the fast and the loop versions."""

from __future__ import annotations

import numpy as np
import pytest

import cnnstep
import cnnstep.reference as reference
from cnnstep.ops.published import PUBLISHED_CASES, matches, tolerance

CASE_IDS = [f"{c.function}-{k}" for k, c in enumerate(PUBLISHED_CASES)]


@pytest.mark.parametrize("ops", [cnnstep, reference], ids=["fast", "reference"])
@pytest.mark.parametrize("case", PUBLISHED_CASES, ids=CASE_IDS)
def test_published_value(ops, case):
    result = getattr(ops, case.function)(*case.inputs(cnnstep))
    observed = case.observe(result)
    for name, expected in case.expected.items():
        assert matches(expected, observed[name]), (
            f"{case.function} ({case.label}): {name} = {observed[name]!r}, "
            f"published {expected!r} (tolerance {tolerance(expected)})"
        )


def test_published_scalars_to_1e9():
    """The full-precision published numbers, spelled out, to 1e-9."""
    np.random.seed(1)
    a, W, b = np.random.randn(4, 4, 3), np.random.randn(4, 4, 3), np.random.randn(1, 1, 1)
    Z = cnnstep.conv_single_step(a, W, b)
    assert isinstance(Z, np.floating) and np.ndim(Z) == 0
    assert abs(Z - -6.999089450680221) < 1e-9

    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache = cnnstep.conv_forward(A_prev, W, b, {"pad": 1, "stride": 2})
    assert abs(Z.mean() - 0.5511276474566768) < 1e-9
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b
    assert cache[3] == {"pad": 1, "stride": 2}

    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache = cnnstep.conv_forward(A_prev, W, b, {"pad": 2, "stride": 2})
    dA, dW, db = cnnstep.conv_backward(Z, cache)
    assert (dA.shape, dW.shape, db.shape) == (A_prev.shape, W.shape, b.shape)
    assert abs(dA.mean() - 1.4524377775388075) < 1e-9
    assert abs(dW.mean() - 1.7269914583139097) < 1e-9
    assert abs(db.mean() - 7.839232564616838) < 1e-9

    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    A, cache = cnnstep.pool_forward(A_prev, {"stride": 1, "f": 2})
    dA = np.random.randn(5, 4, 2, 2)
    assert abs(dA.mean() - 0.14571390272918056) < 1e-15
    assert cache[0] is A_prev


def test_printed_arrays_round_to_published_digits():
    """Arrays were published to 8 decimals: ours round to exactly those digits."""
    for case in PUBLISHED_CASES:
        observed = case.observe(getattr(cnnstep, case.function)(*case.inputs(cnnstep)))
        for name, expected in case.expected.items():
            exp = np.asarray(expected)
            if exp.dtype.kind == "f" and exp.ndim > 0 and exp.any():
                np.testing.assert_array_equal(np.round(observed[name], 8), exp)


def test_zero_pad_published():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = cnnstep.zero_pad(x, 3)
    assert x_pad.shape == (4, 9, 9, 2)
    np.testing.assert_array_equal(x_pad[:, 3:6, 3:6, :], x)
    x_pad = cnnstep.zero_pad(x, 2)
    assert x_pad.shape == (4, 7, 7, 2)
    assert not x_pad[1, 1].any()


def test_create_mask_and_distribute_value_published():
    x = np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]])
    mask = cnnstep.create_mask_from_window(x)
    assert mask.dtype == bool
    assert mask.tolist() == [[False] * 3, [False] * 3, [False, True, False]]
    a = cnnstep.distribute_value(2, (2, 2))
    np.testing.assert_array_equal(a, [[0.5, 0.5], [0.5, 0.5]])
