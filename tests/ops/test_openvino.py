"""OpenVINO's kernels (the openvino extra) against the NumPy ops: the same convolution up to
float32 rounding, over strides, paddings and dilations; NumPy wherever they do not apply."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstep import Conv2D
from cnnstep.ops import conv_backward, conv_forward
from cnnstep.ops import openvino as ov_ops

pytestmark = pytest.mark.skipif(not ov_ops.available(), reason="needs openvino (the extra)")


@pytest.fixture(autouse=True)
def _enabled(monkeypatch):
    monkeypatch.setattr(ov_ops, "MIN_WORK", 0)  # small problems too
    before = ov_ops.enabled()
    ov_ops.set_enabled(True)
    yield
    ov_ops.set_enabled(before)


@st.composite
def conv_problems(draw):
    f_h, f_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    pad = draw(st.sampled_from([0, 1, 2, ((0, 1), (2, 0)), "same", "valid"]))
    if pad == "same":
        s = 1
    m, n_C_prev, n_C = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    H = draw(st.integers(d * (f_h - 1) + 1, 9))
    W = draw(st.integers(d * (f_w - 1) + 1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    A = rng.standard_normal((m, H, W, n_C_prev)).astype(np.float32)
    Wt = rng.standard_normal((f_h, f_w, n_C_prev, n_C)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, n_C)).astype(np.float32)
    return A, Wt, b, {"stride": s, "pad": pad, "dilation": d}, rng


@settings(max_examples=60, deadline=None)
@given(conv_problems())
def test_openvino_gives_the_numpy_convolution(problem):
    A, Wt, b, hp, rng = problem
    Z, cache = conv_forward(A, Wt, b, hp)
    Z_ov = ov_ops.conv_forward_ov(A, Wt, b, hp)
    assert Z_ov is not None and Z_ov.dtype == np.float32 and Z_ov.shape == Z.shape
    np.testing.assert_allclose(Z_ov, Z, rtol=1e-4, atol=1e-4)
    dZ = rng.standard_normal(Z.shape).astype(np.float32)
    dA = ov_ops.conv_input_grad_ov(dZ, cache)
    if dA is not None:  # a stride that output padding cannot reach: NumPy's, in the layer
        np.testing.assert_allclose(dA, conv_backward(dZ, cache)[0], rtol=1e-4, atol=1e-4)


def test_numpy_where_openvino_does_not_apply(monkeypatch):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 6, 6, 3))
    Wt, b = rng.standard_normal((3, 3, 3, 4)), np.zeros((1, 1, 1, 4))
    hp = {"stride": 1, "pad": 1}
    assert ov_ops.conv_forward_ov(A, Wt, b, hp) is None  # float64: the NumPy ops
    Z, cache = conv_forward(A, Wt, b, hp)
    assert ov_ops.conv_input_grad_ov(Z, cache) is None
    A32, W32, b32 = (a.astype(np.float32) for a in (A, Wt, b))
    ov_ops.set_enabled(False)
    assert ov_ops.conv_forward_ov(A32, W32, b32, hp) is None
    ov_ops.set_enabled(True)
    assert ov_ops.conv_forward_ov(A32, W32, b32, hp) is not None
    monkeypatch.setattr(ov_ops, "MIN_WORK", 10**9)  # too little work: NumPy's
    assert ov_ops.conv_forward_ov(A32, W32, b32, hp) is None
    monkeypatch.setattr(ov_ops, "MIN_WORK", 0)
    with pytest.raises(TypeError, match="flag: expected True or False"):
        ov_ops.set_enabled("no")  # type: ignore[arg-type]
    # what the stride leaves unread at the end goes back as output padding (never >= stride)
    A7 = rng.standard_normal((1, 7, 7, 2)).astype(np.float32)
    W7 = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    Z7, cache7 = conv_forward(A7, W7, np.zeros((1, 1, 1, 2), np.float32), {"stride": 3, "pad": 0})
    ov_ops.set_enabled(True)
    dA7 = ov_ops.conv_input_grad_ov(Z7, cache7)
    assert dA7 is not None
    np.testing.assert_allclose(dA7, conv_backward(Z7, cache7)[0], rtol=1e-5, atol=1e-6)
    assert not dA7[:, [1, 2, 4, 5]].any()  # rows no window reads get no gradient


def test_threads_each_get_their_own_request():
    rng = np.random.default_rng(1)
    Wt = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    b = np.zeros((1, 1, 1, 5), np.float32)
    hp = {"stride": 1, "pad": "same"}
    inputs = [rng.standard_normal((4, 10, 10, 4)).astype(np.float32) for _ in range(4)]
    want = [conv_forward(x, Wt, b, hp)[0] for x in inputs]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                got = ov_ops.conv_forward_ov(inputs[i], Wt, b, hp)
                np.testing.assert_allclose(got, want[i], rtol=1e-4, atol=1e-4)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_the_layer_uses_it_and_its_gradients_match_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 9, 9, 8)).astype(np.float32)
    grads = {}
    for flag in (True, False):
        ov_ops.set_enabled(flag)
        layer = Conv2D(5, 3, stride=2, padding=1)
        layer.build(x.shape[1:], np.random.default_rng(0))
        out = layer.forward(x, training=True)
        d = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
        grads[flag] = (out, layer.backward(d), layer.grads["W"], layer.grads["b"])
    for a, b in zip(grads[True], grads[False]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
