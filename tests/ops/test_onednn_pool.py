"""oneDNN's max pooling (the onednn extra) against the NumPy ops: the same maxima and the same
gradients (first maximum, overlaps adding up), ties included; NumPy wherever it does not apply."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onednn_helpers import needs_onednn, onednn_on

from cnnstep import MaxPool2D
from cnnstep.ops import onednn, onednn_pool, pool_backward, pool_forward

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
            onednn_pool.max_pool_forward_dnnl(A, hp)
        assert "pooling pad must be smaller" in str(exc)
        return
    got = onednn_pool.max_pool_forward_dnnl(A, hp)
    assert got is not None
    Z, workspace = got
    np.testing.assert_array_equal(Z, want)
    dA = rng.standard_normal(want.shape).astype(np.float32)
    dA_prev = onednn_pool.max_pool_backward_dnnl(dA, cache, workspace)
    assert dA_prev is not None and dA_prev.dtype == np.float32
    np.testing.assert_allclose(dA_prev, pool_backward(dA, cache, "max"), rtol=1e-6, atol=1e-6)


def test_numpy_where_onednn_pooling_does_not_apply(monkeypatch):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    hp = {"f": 2, "stride": 2}
    assert onednn_pool.max_pool_forward_dnnl(A.astype(np.float64), hp) is None
    assert onednn_pool.max_pool_forward_dnnl(A[:0], hp) is None
    nan = A.copy()
    nan[1, 5, 2, 3] = np.nan  # oneDNN would skip it; cnnstep's maximum is NaN
    assert onednn_pool.max_pool_forward_dnnl(nan, hp) is None
    onednn.set_enabled(False)
    assert onednn_pool.max_pool_forward_dnnl(A, hp) is None
    onednn.set_enabled(True)
    Z, workspace = onednn_pool.max_pool_forward_dnnl(A, hp)
    _, cache = pool_forward(A, hp, "max")
    assert onednn_pool.max_pool_backward_dnnl(Z.astype(np.float64), cache, workspace) is None
    assert onednn_pool.max_pool_backward_dnnl(Z, cache, workspace[:-1]) is None
    assert onednn_pool.max_pool_backward_dnnl(Z, cache, workspace) is not None
    monkeypatch.setattr(onednn_pool, "MIN_WORK", 10**9)
    assert onednn_pool.max_pool_forward_dnnl(A, hp) is None


@pytest.mark.parametrize("nan", [False, True])
def test_the_layer_uses_it_and_matches_numpy(nan):
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, size=(4, 12, 12, 16)).astype(np.float32)
    if nan:
        x[0, 3, 3, 0] = np.nan
    results = {}
    for flag in (True, False):
        onednn.set_enabled(flag)
        layer = MaxPool2D(3, 2, padding=1)
        layer.build(x.shape[1:], np.random.default_rng(0))
        out = layer.forward(x, training=True)
        used = layer._cache[3] is not None  # oneDNN's workspace
        assert used == (flag and not nan)
        d = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
        results[flag] = (out, layer.backward(d))
    for a, b in zip(results[True], results[False]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    if nan:
        assert np.isnan(results[True][0][0, 1, 1, 0])  # the window with the NaN


def test_made_for_each_thread_count():
    from cnnstep.ops import get_num_threads, set_num_threads

    x = np.random.default_rng(4).standard_normal((8, 16, 16, 16)).astype(np.float32)
    hp = {"f": 2, "stride": 2}
    want, cache = pool_forward(x, hp, "max")
    before = get_num_threads()
    try:
        for n in (1, 2):
            set_num_threads(n)
            Z, workspace = onednn_pool.max_pool_forward_dnnl(x, hp)
            np.testing.assert_array_equal(Z, want)
            dA_prev = onednn_pool.max_pool_backward_dnnl(want, cache, workspace)
            np.testing.assert_array_equal(dA_prev, pool_backward(want, cache, "max"))
    finally:
        set_num_threads(before)
    made = [key[-1] for key in onednn._local.cache if key[:2] == ("max pool", x.shape)]
    assert sorted(made) == [1, 2]
