"""oneDNN's max pooling (the onednn extra) against NumPy's kernels: the same maxima and the same
gradients, ties and padding included; NumPy's wherever it does not apply (a NaN in the input)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onednn_helpers import dnn_pool, last_pass, needs_onednn, onednn_on

from cnnstep import MaxPool2D
from cnnstep.backends import pool2d_backward, pool2d_forward
from cnnstep.backends.onednn import primitives
from cnnstep.config import config_context
from cnnstep.ops import get_num_threads, pool_backward, pool_forward, set_num_threads

pytestmark = [needs_onednn, pytest.mark.usefixtures(onednn_on.__name__)]


@st.composite
def pool_problems(draw):
    f_h, f_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    pad = draw(st.sampled_from([0, 1, ((0, 1), (1, 0)), "same", "valid"]))
    m, n_C = draw(st.integers(1, 3)), draw(st.integers(1, 20))
    H, W = draw(st.integers(f_h, 10)), draw(st.integers(f_w, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # small integers: many ties, which must go to the first maximum as in pool_backward
    A = rng.integers(-3, 4, size=(m, H, W, n_C)).astype(np.float32)
    return A, {"f": (f_h, f_w), "stride": s, "pad": pad}, rng


@settings(max_examples=80, deadline=None)
@given(pool_problems())
def test_onednn_max_pooling_gives_the_numpy_numbers(problem):
    A, hp, rng = problem
    try:
        want, cache = pool_forward(A, hp, "max")
    except ValueError as exc:  # a pad as large as the window: refused the same way
        with pytest.raises(ValueError, match="pooling pad must be smaller"):
            pool2d_forward(A, hp, "max")
        assert "pooling pad must be smaller" in str(exc)
        return
    dA = rng.standard_normal(want.shape).astype(np.float32)
    Z, dA_prev = dnn_pool(A, hp, dA)
    np.testing.assert_array_equal(Z, want)
    assert dA_prev.dtype == np.float32
    np.testing.assert_allclose(dA_prev, pool_backward(dA, cache, "max"), rtol=1e-6, atol=1e-6)


def _ran_on(A, hp, mode="max"):
    out, _ = pool2d_forward(A, hp, mode)
    np.testing.assert_array_equal(out, pool_forward(A, hp, mode)[0])
    return last_pass()


def test_numpy_where_onednn_pooling_does_not_apply(monkeypatch):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    hp = {"f": 2, "stride": 2}
    assert _ran_on(A.astype(np.float64), hp) == "numpy: oneDNN runs float32 only"
    assert _ran_on(A[:0], hp) == "numpy: an empty batch"
    assert _ran_on(A, hp, "average") == "numpy: cnnstep uses oneDNN for max pooling only"
    nan = A.copy()
    nan[1, 5, 2, 3] = np.nan  # oneDNN would skip it; cnnstep's maximum is NaN
    assert _ran_on(nan, hp).startswith("numpy: a NaN in the input")
    with config_context(backend="numpy"):
        assert _ran_on(A, hp).startswith("numpy: the backend setting is 'numpy'")
    assert _ran_on(A, hp) == "onednn"
    Z, ctx = pool2d_forward(A, hp, "max", training=True)
    want = pool_backward(Z, ctx.cache, "max")
    for bad in (Z.astype(np.float64), Z[:1]):  # NumPy's kernels take it, or say what is wrong
        try:
            np.testing.assert_array_equal(pool2d_backward(bad, ctx), want)
        except ValueError as exc:
            assert "dA must have the shape of A" in str(exc)
        assert last_pass() == "numpy: dA is not float32 of the output's shape"
    np.testing.assert_array_equal(pool2d_backward(Z, ctx), want)
    assert last_pass() == "onednn"
    monkeypatch.setattr(primitives, "MIN_WORK", 10**9)
    assert _ran_on(A, hp).startswith("numpy: too little work")


@pytest.mark.parametrize("nan", [False, True])
def test_the_layer_uses_it_and_matches_numpy(nan):
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, size=(4, 12, 12, 16)).astype(np.float32)
    if nan:
        x[0, 3, 3, 0] = np.nan
    results = {}
    for flag in (True, False):
        with config_context(backend="auto" if flag else "numpy"):
            layer = MaxPool2D(3, 2, padding=1)
            layer.build(x.shape[1:], np.random.default_rng(0))
            out = layer.forward(x, training=True)
            assert (layer._cache.backend == "onednn") == (flag and not nan)
            d = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
            results[flag] = (out, layer.backward(d))
    for a, b in zip(results[True], results[False]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    if nan:
        assert np.isnan(results[True][0][0, 1, 1, 0])  # the window with the NaN


def test_made_for_each_thread_count():
    x = np.random.default_rng(4).standard_normal((8, 16, 16, 16)).astype(np.float32)
    hp = {"f": 2, "stride": 2}
    want, cache = pool_forward(x, hp, "max")
    before = get_num_threads()
    try:
        for n in (1, 2):
            set_num_threads(n)
            Z, dA_prev = dnn_pool(x, hp, want)
            np.testing.assert_array_equal(Z, want)
            np.testing.assert_array_equal(dA_prev, pool_backward(want, cache, "max"))
    finally:
        set_num_threads(before)
    made = [key[-1] for key in primitives.cached_keys() if key[:2] == ("max pool", x.shape)]
    assert sorted(made) == [1, 2]
