"""Max pooling with the taps kept by its forward pass: the same output and gradient as
pool_forward / pool_backward, ties and NaN included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstep import MaxPool2D
from cnnstep.ops.kernels.pool import pool_backward, pool_forward
from cnnstep.ops.kernels.pool_taps import (
    MIN_CHANNELS,
    first_max_taps,
    max_pool_backward_taps,
    max_pool_forward_taps,
)


@st.composite
def tiling_problems(draw):
    f_h, f_w = draw(st.sampled_from([(2, 2), (1, 2), (2, 1), (1, 1), (1, 4), (4, 1)]))
    m = draw(st.integers(1, 3))
    H = draw(st.integers(f_h, 3 * f_h + 1))  # often rows and columns no window covers
    W = draw(st.integers(f_w, 3 * f_w + 1))
    n_C = draw(st.sampled_from([MIN_CHANNELS, MIN_CHANNELS + 3]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    A = rng.integers(-2, 3, (m, H, W, n_C)).astype(dtype)  # few values: many ties
    if draw(st.booleans()):
        A.flat[rng.integers(0, A.size, 3)] = np.nan
    return A, {"f": (f_h, f_w), "stride": (f_h, f_w)}, seed


@settings(max_examples=80, deadline=None)
@given(tiling_problems())
def test_kept_taps_give_pool_backward(problem):
    A_prev, hp, seed = problem
    A, cache, taps = max_pool_forward_taps(A_prev, hp)
    ref_A, ref_cache = pool_forward(A_prev, hp, "max")
    np.testing.assert_array_equal(A, ref_A)
    assert taps is not None and taps.dtype == np.uint8
    dA = np.random.default_rng(seed).standard_normal(A.shape).astype(A.dtype)
    got = max_pool_backward_taps(dA, cache, taps)
    want = pool_backward(dA, ref_cache, "max")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_ties_go_to_the_first_maximum_and_nan_wins():
    A_prev = np.zeros((1, 2, 2, MIN_CHANNELS), np.float32)
    A_prev[0, 1, 0, 1] = np.nan  # channel 1: a NaN at tap 2
    A_prev[0, 0, 1, 2] = A_prev[0, 1, 1, 2] = 1.0  # channel 2: tied maxima at taps 1 and 3
    hp = {"f": 2, "stride": 2}
    A, _ = pool_forward(A_prev, hp)
    from cnnstep.ops.geometry import pool_geometry

    taps = first_max_taps(A_prev, A, pool_geometry(A_prev, hp, "test"))
    assert taps[0, 0, 0, :3].tolist() == [0, 2, 1]


@pytest.mark.parametrize("shape, hp", [
    ((2, 6, 6, MIN_CHANNELS), {"f": 3, "stride": 3}),  # 9 taps: the chain costs more
    ((2, 6, 6, MIN_CHANNELS), {"f": 2, "stride": 1}),  # overlapping windows
    ((2, 6, 6, MIN_CHANNELS), {"f": 2, "stride": 2, "pad": 1}),
    ((2, 6, 6, MIN_CHANNELS - 1), {"f": 2, "stride": 2}),  # few channels
    ((2, 6, 6, MIN_CHANNELS), {"f": 2, "stride": 2, "dtype": np.int64}),
])
def test_no_taps_where_they_do_not_pay(shape, hp):
    hp = dict(hp)
    dtype = hp.pop("dtype", np.float32)
    A_prev = np.ones(shape, dtype)
    A, cache, taps = max_pool_forward_taps(A_prev, hp)
    assert taps is None
    np.testing.assert_array_equal(A, pool_forward(A_prev, hp)[0])


def test_bad_taps_are_refused_with_what_was_expected():
    A_prev = np.ones((2, 4, 4, MIN_CHANNELS), np.float32)
    hp = {"f": 2, "stride": 2}
    A, cache, taps = max_pool_forward_taps(A_prev, hp)
    assert taps is not None
    with pytest.raises(ValueError, match=r"taps must be the uint8 array of shape \(2, 2, 2, 16\)"
                                         r".*got int64 shape"):
        max_pool_backward_taps(A, cache, taps.astype(np.int64))
    with pytest.raises(ValueError, match="taps must be .*got list"):
        max_pool_backward_taps(A, cache, taps.tolist())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dA must have the shape of A"):
        max_pool_backward_taps(A[:1], cache, taps)
    _, cache3, _ = max_pool_forward_taps(A_prev, {"f": 3, "stride": 1})
    with pytest.raises(ValueError, match="taps are kept only for tiling windows"):
        max_pool_backward_taps(np.ones((2, 2, 2, MIN_CHANNELS)), cache3, taps)


def test_the_layer_backward_is_unchanged_by_kept_taps():
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, (3, 8, 6, 2 * MIN_CHANNELS)).astype(np.float32)
    layer = MaxPool2D(2)
    layer.build(x.shape[1:], rng)
    out = layer.forward(x, training=True)
    assert layer._cache.taps is not None  # the taps were kept
    d = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(d),
                                  pool_backward(d, pool_forward(x, {"f": 2, "stride": 2})[1]))
