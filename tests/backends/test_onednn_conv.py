"""oneDNN's convolution (the onednn extra) against NumPy's kernels: the same convolution and
gradients up to float32 rounding, over strides, paddings and dilations; NumPy's wherever it does
not apply, with the reason noted, and a refusal remembered."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onednn_helpers import dnn_conv, last_pass, needs_onednn, onednn_on

from cnnstep import Conv2D
from cnnstep.backends import conv2d_backward, conv2d_forward
from cnnstep.backends.onednn import api as dn
from cnnstep.backends.onednn import conv as onednn_conv
from cnnstep.backends.onednn import primitives
from cnnstep.config import config_context
from cnnstep.ops import conv_backward, conv_forward, get_num_threads, set_num_threads

pytestmark = [needs_onednn, pytest.mark.usefixtures(onednn_on.__name__)]


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


def close(a, b):
    # float32 sums of at most 4 x 4 x 6 products of unit normals, in another order
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(conv_problems(), st.booleans())
def test_onednn_gives_the_numpy_convolution_and_gradients(problem, need_dA):
    A, Wt, b, hp, rng = problem
    Z, cache = conv_forward(A, Wt, b, hp)
    dZ = rng.standard_normal(Z.shape).astype(np.float32)
    Z_dn, got = dnn_conv(A, Wt, b, hp, dZ, need_dA)
    assert Z_dn.dtype == np.float32 and Z_dn.shape == Z.shape
    close(Z_dn, Z)
    want = conv_backward(dZ, cache)
    assert (got[0] is None) == (not need_dA)
    for g, w in zip(got, want):
        if g is not None:
            assert g.dtype == np.float32 and g.shape == w.shape
            close(g, w)


def _ran_on(A, Wt, b, hp) -> str:
    Z, ctx = conv2d_forward(A, Wt, b, hp, training=True)
    np.testing.assert_allclose(Z, conv_forward(A, Wt, b, hp)[0], rtol=1e-4, atol=1e-4)
    return last_pass()


def test_numpy_where_onednn_does_not_apply_and_the_reason_is_noted(monkeypatch):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 6, 6, 3))
    Wt, b = rng.standard_normal((3, 3, 3, 4)), np.zeros((1, 1, 1, 4))
    hp = {"stride": 1, "pad": 1}
    assert _ran_on(A, Wt, b, hp) == "numpy: oneDNN runs float32 only"
    A32, W32, b32 = (a.astype(np.float32) for a in (A, Wt, b))
    with config_context(backend="numpy"):
        assert _ran_on(A32, W32, b32, hp) == ("numpy: the backend setting is 'numpy' "
                                              "(cnnstep.config)")
    assert _ran_on(A32, W32, b32, hp) == "onednn"
    assert _ran_on(A32[:0], W32, b32, hp) == "numpy: an empty batch"
    monkeypatch.setattr(primitives, "MIN_WORK", 10**9)  # the one place both kernels read
    assert _ran_on(A32, W32, b32, hp).startswith("numpy: too little work for a oneDNN call")
    monkeypatch.setattr(primitives, "MIN_WORK", 0)
    # rows and columns a stride leaves unread get a zero gradient
    A7 = rng.standard_normal((1, 7, 7, 2)).astype(np.float32)
    W7 = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    hp7 = {"stride": 3, "pad": 0}
    Z7, cache7 = conv_forward(A7, W7, np.zeros((1, 1, 1, 2), np.float32), hp7)
    _, got = dnn_conv(A7, W7, np.zeros((1, 1, 1, 2), np.float32), hp7, Z7)
    close(got[0], conv_backward(Z7, cache7)[0])
    assert not got[0][:, [1, 2, 4, 5]].any()


def test_a_geometry_with_only_the_reference_kernel_runs_on_numpy_and_is_not_tried_again(
        monkeypatch):
    made = []
    real = onednn_conv.ConvPrimitives.__init__

    def counting(self, *args):
        made.append(args[1])
        real(self, *args)

    monkeypatch.setattr(dn.Api, "impl", lambda self, pd: "ref:any")
    monkeypatch.setattr(onednn_conv.ConvPrimitives, "__init__", counting)
    rng = np.random.default_rng(4)
    A = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    Wt = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = np.zeros((1, 1, 1, 4), np.float32)
    for _ in range(3):
        assert "only its reference implementation (ref:any)" in _ran_on(A, Wt, b, {"pad": 1,
                                                                                  "stride": 1})
    assert len(made) == 1  # refused once, remembered
    from cnnstep.backends import status

    assert any("reference implementation" in why for why in status()["refused"].values())


def test_threads_each_run_their_own_primitives():
    rng = np.random.default_rng(1)
    Wt = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    b = np.zeros((1, 1, 1, 5), np.float32)
    hp = {"stride": 1, "pad": "same"}
    inputs = [rng.standard_normal((4, 10, 10, 4)).astype(np.float32) for _ in range(4)]
    want = [conv_forward(x, Wt, b, hp) for x in inputs]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                Z, ctx = conv2d_forward(inputs[i], Wt, b, hp, training=True)
                assert ctx.backend == "onednn"
                close(Z, want[i][0])
                got = conv2d_backward(want[i][0], ctx)
                close(got[1], conv_backward(want[i][0], want[i][1])[1])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@pytest.mark.parametrize("first", [False, True])
def test_the_layer_uses_it_and_its_gradients_match_numpy(first):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 9, 9, 8)).astype(np.float32)
    grads = {}
    for backend in ("auto", "numpy"):
        with config_context(backend=backend):
            layer = Conv2D(5, 3, stride=2, padding=1)
            layer.build(x.shape[1:], np.random.default_rng(0))
            out = layer.forward(x, training=True)
            assert (last_pass() == "onednn") == (backend == "auto")
            d = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
            dx = layer.backward(d, need_input_grad=not first)
        assert (dx is None) == first
        grads[backend] = (out, dx, layer.grads["W"], layer.grads["b"])
    for a, b in zip(grads["auto"], grads["numpy"]):
        if a is not None:
            close(a, b)


def test_primitives_are_made_for_the_thread_count_they_run_with():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((4, 12, 12, 6)).astype(np.float32)
    Wt = rng.standard_normal((3, 3, 6, 7)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, 7)).astype(np.float32)
    hp = {"stride": 1, "pad": 1}
    Z, cache = conv_forward(A, Wt, b, hp)
    before = get_num_threads()
    try:
        for n in (1, 2):
            set_num_threads(n)
            Z_dn, got = dnn_conv(A, Wt, b, hp, Z)
            close(Z_dn, Z)
            for g, w in zip(got, conv_backward(Z, cache)):
                close(g, w)
    finally:
        set_num_threads(before)
    made = [key[-1] for key in primitives.cached_keys() if key[:2] == ("conv", A.shape)]
    assert sorted(made) == [1, 2]


def test_a_backward_pass_onednn_refuses_runs_on_numpy_and_is_not_tried_again(monkeypatch):
    tries = []

    def refuse(self):
        tries.append(1)
        raise dn.DnnlError("oneDNN: convolution backward weights failed (unimplemented)")

    monkeypatch.setattr(onednn_conv.ConvPrimitives, "backward_weights", refuse)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 9, 9, 8)).astype(np.float32)
    layer = Conv2D(5, 3, padding=1)
    layer.build(x.shape[1:], np.random.default_rng(0))
    for _ in range(3):  # three training steps
        out = layer.forward(x, training=True)
        assert last_pass() == "onednn"  # the forward pass stays on oneDNN
        d = rng.standard_normal(out.shape).astype(np.float32)
        dx = layer.backward(d)
        assert last_pass().startswith("numpy: oneDNN refused it: ")
        want = conv_backward(d, (x, layer.params["W"], layer.params["b"], layer.hparameters))
        for g, w in zip((dx, layer.grads["W"], layer.grads["b"]), want):
            close(g, w)
    assert len(tries) == 1


def test_an_error_while_running_is_remembered_and_numpy_runs(monkeypatch):
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    Wt = rng.standard_normal((3, 3, 4, 4)).astype(np.float32)
    b = np.zeros((1, 1, 1, 4), np.float32)
    calls = []

    def failing(self, prim, args, threads):
        calls.append(1)
        raise dn.DnnlError("oneDNN: execute failed (runtime error)")

    monkeypatch.setattr(dn.Api, "execute", failing)
    for _ in range(2):
        assert _ran_on(A, Wt, b, {"stride": 1, "pad": 1}) == (
            "numpy: oneDNN refused it: oneDNN: execute failed (runtime error)")
    assert len(calls) == 1


def test_onednn_statuses_become_errors():
    dn.check(0, "anything")
    with pytest.raises(MemoryError, match="oneDNN: execute: out of memory"):
        dn.check(1, "execute")
    with pytest.raises(dn.DnnlError, match=r"reorder failed \(unimplemented\)"):
        dn.check(3, "reorder")
    with pytest.raises(dn.DnnlError, match=r"status 42"):
        dn.check(42, "stream")
