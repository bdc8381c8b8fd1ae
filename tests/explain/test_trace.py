"""Traces equal what the fast functions return, for every pad form, stride and dilation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnstep
from cnnstep import explain

PADS = st.one_of(
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
              st.tuples(st.integers(0, 2), st.integers(0, 2))),
    st.sampled_from(["same", "valid"]),
)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(3, 7), w=st.integers(3, 7), fh=st.integers(1, 3), fw=st.integers(1, 3),
       stride=st.integers(1, 3), dil=st.integers(1, 2), pad=PADS, seed=st.integers(0, 99))
def test_conv_forward_trace_equals_fast(h, w, fh, fw, stride, dil, pad, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((2, h, w, 2))
    W = rng.standard_normal((fh, fw, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad, "dilation": dil}
    try:
        Z, _ = cnnstep.conv_forward(A, W, b, hp)
    except ValueError:
        with pytest.raises(ValueError):
            explain.conv_forward(A, W, b, hp)
        return
    trace = explain.conv_forward(A, W, b, hp)
    np.testing.assert_allclose(trace.output, Z, rtol=1e-10, atol=1e-10)
    assert len(trace.steps) == Z.size
    for s in trace.steps:
        assert s.value == pytest.approx(Z[s.example, s.row, s.column, s.channel], abs=1e-10)
        assert s.vert_end - s.vert_start == (fh - 1) * dil + 1
        assert s.horiz_start == s.column * stride


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 7), w=st.integers(2, 7), f=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 2), mode=st.sampled_from(["max", "average"]), seed=st.integers(0, 99))
def test_pool_forward_trace_equals_fast(h, w, f, stride, pad, mode, seed):
    A = np.random.default_rng(seed).standard_normal((2, h, w, 2))
    hp = {"f": f, "stride": stride, "pad": pad}
    try:
        out, _ = cnnstep.pool_forward(A, hp, mode=mode)
    except ValueError:
        with pytest.raises(ValueError):
            explain.pool_forward(A, hp, mode=mode)
        return
    trace = explain.pool_forward(A, hp, mode=mode)
    np.testing.assert_allclose(trace.output, out, rtol=1e-10, atol=1e-10)
    assert [s.value for s in trace.steps] == pytest.approx(
        [out[s.example, s.row, s.column, s.channel] for s in trace.steps], abs=1e-10)


def test_too_large_input_is_refused():
    with pytest.raises(ValueError, match="too many to follow"):
        explain.pool_forward(np.zeros((1, 100, 100, 3)), {"f": 1, "stride": 1})


def test_text_rendering_lists_each_step():
    A = np.arange(16.0).reshape(1, 4, 4, 1)
    trace = explain.pool_forward(A, {"f": 2, "stride": 2})
    text = explain.render_text(trace)
    assert text.count("\nstep ") == 4
    assert "window rows 2:4 columns 2:4 -> 15" in text


@settings(max_examples=30, deadline=None)
@given(h=st.integers(3, 6), w=st.integers(3, 6), fh=st.integers(1, 3), fw=st.integers(1, 3),
       stride=st.integers(1, 3), dil=st.integers(1, 2), pad=PADS, seed=st.integers(0, 99))
def test_conv_backward_trace_equals_fast(h, w, fh, fw, stride, dil, pad, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((2, h, w, 2))
    W = rng.standard_normal((fh, fw, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad, "dilation": dil}
    try:
        Z, cache = cnnstep.conv_forward(A, W, b, hp)
    except ValueError:
        return
    dZ = rng.standard_normal(Z.shape)
    dA, dW, db = cnnstep.conv_backward(dZ, cache)
    trace = explain.conv_backward(dZ, cache)
    np.testing.assert_allclose(trace.output, dA, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(trace.extras["dW"], dW, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(trace.extras["db"], db, rtol=1e-9, atol=1e-9)
    assert [s.value for s in trace.steps] == [dZ[s.example, s.row, s.column, s.channel]
                                              for s in trace.steps]


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 6), w=st.integers(2, 6), f=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 2), mode=st.sampled_from(["max", "average"]), seed=st.integers(0, 99))
def test_pool_backward_trace_equals_fast(h, w, f, stride, pad, mode, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((2, h, w, 2))
    hp = {"f": f, "stride": stride, "pad": pad}
    try:
        out, cache = cnnstep.pool_forward(A, hp, mode=mode)
    except ValueError:
        return
    dA = rng.standard_normal(out.shape)
    trace = explain.pool_backward(dA, cache, mode=mode)
    np.testing.assert_allclose(trace.output, cnnstep.pool_backward(dA, cache, mode=mode),
                               rtol=1e-9, atol=1e-9)


def test_pool_backward_overlapping_windows_add_up():
    A = np.array([[1.0, 0, 0], [0, 5, 0], [0, 0, 2]]).reshape(1, 3, 3, 1)
    _, cache = cnnstep.pool_forward(A, {"f": 2, "stride": 1}, mode="max")
    trace = explain.pool_backward(np.ones((1, 2, 2, 1)), cache, mode="max")
    assert trace.output[0, 1, 1, 0] == 4.0  # the 5 is the max of all four windows


@settings(max_examples=20, deadline=None)
@given(pad=st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                     st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                               st.tuples(st.integers(0, 2), st.integers(0, 2)))))
def test_zero_pad_trace_equals_fast(pad):
    X = np.random.default_rng(1).standard_normal((2, 3, 4, 2))
    trace = explain.zero_pad(X, pad)
    np.testing.assert_array_equal(trace.output, cnnstep.zero_pad(X, pad))
    assert len(trace.steps) == X.size
    for s in trace.steps:
        assert trace.output[s.example, s.vert_start, s.horiz_start, s.channel] == s.value
