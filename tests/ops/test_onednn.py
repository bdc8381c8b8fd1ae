"""oneDNN's kernels (the onednn extra) against the NumPy ops: the same convolution and gradients
up to float32 rounding, over strides, paddings and dilations; NumPy wherever they do not apply."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onednn_helpers import needs_onednn, onednn_on

from cnnstep import Conv2D
from cnnstep.ops import conv_backward, conv_forward, dnnl_api, onednn

pytestmark = pytest.mark.usefixtures(onednn_on.__name__)


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
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@needs_onednn
@settings(max_examples=60, deadline=None)
@given(conv_problems(), st.booleans())
def test_onednn_gives_the_numpy_convolution_and_gradients(problem, need_dA):
    A, Wt, b, hp, rng = problem
    Z, cache = conv_forward(A, Wt, b, hp)
    Z_dn = onednn.conv_forward_dnnl(A, Wt, b, hp)
    assert Z_dn is not None and Z_dn.dtype == np.float32 and Z_dn.shape == Z.shape
    close(Z_dn, Z)
    dZ = rng.standard_normal(Z.shape).astype(np.float32)
    got = onednn.conv_grads_dnnl(dZ, cache, need_dA)
    assert got is not None
    want = conv_backward(dZ, cache)
    assert (got[0] is None) == (not need_dA)
    for g, w in zip(got, want):
        if g is not None:
            assert g.dtype == np.float32 and g.shape == w.shape
            close(g, w)


@needs_onednn
def test_numpy_where_onednn_does_not_apply(monkeypatch):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 6, 6, 3))
    Wt, b = rng.standard_normal((3, 3, 3, 4)), np.zeros((1, 1, 1, 4))
    hp = {"stride": 1, "pad": 1}
    assert onednn.conv_forward_dnnl(A, Wt, b, hp) is None  # float64: the NumPy ops
    Z, cache = conv_forward(A, Wt, b, hp)
    assert onednn.conv_grads_dnnl(Z, cache) is None
    A32, W32, b32 = (a.astype(np.float32) for a in (A, Wt, b))
    onednn.set_enabled(False)
    assert onednn.conv_forward_dnnl(A32, W32, b32, hp) is None
    assert onednn.status().startswith("off")
    onednn.set_enabled(True)
    assert onednn.status() == "on"
    assert onednn.conv_forward_dnnl(A32, W32, b32, hp) is not None
    assert onednn.conv_forward_dnnl(A32[:0], W32, b32, hp) is None  # an empty batch: NumPy's
    monkeypatch.setattr(onednn, "MIN_WORK", 10**9)  # too little work: NumPy's
    assert onednn.conv_forward_dnnl(A32, W32, b32, hp) is None
    monkeypatch.setattr(onednn, "MIN_WORK", 0)
    with pytest.raises(TypeError, match="flag: expected True or False"):
        onednn.set_enabled("no")  # type: ignore[arg-type]
    # rows and columns a stride leaves unread get a zero gradient
    A7 = rng.standard_normal((1, 7, 7, 2)).astype(np.float32)
    W7 = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    Z7, cache7 = conv_forward(A7, W7, np.zeros((1, 1, 1, 2), np.float32), {"stride": 3, "pad": 0})
    got = onednn.conv_grads_dnnl(Z7, cache7)
    assert got is not None and got[0] is not None
    close(got[0], conv_backward(Z7, cache7)[0])
    assert not got[0][:, [1, 2, 4, 5]].any()


@needs_onednn
def test_a_geometry_with_only_the_reference_kernel_runs_on_numpy(monkeypatch):
    api = dnnl_api.api()
    assert api is not None
    monkeypatch.setattr(type(api), "impl", lambda self, pd: "ref:any")
    monkeypatch.setattr(onednn, "_local", threading.local())  # no primitives made before
    rng = np.random.default_rng(4)
    A = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    Wt = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    assert onednn.conv_forward_dnnl(A, Wt, np.zeros((1, 1, 1, 4), np.float32),
                                    {"stride": 1, "pad": 1}) is None


@pytest.mark.parametrize("found", ["nothing", "a broken file"])
def test_a_missing_library_says_why_and_leaves_numpy(found, monkeypatch, tmp_path):
    broken = tmp_path / "libdnnl.so.3"
    broken.write_bytes(b"not a shared library")  # as when libgomp.so.1 is missing: OSError
    monkeypatch.setattr(dnnl_api, "_candidates", lambda: [] if found == "nothing" else [broken])
    dnnl_api.library.cache_clear()
    dnnl_api.api.cache_clear()
    try:
        assert not onednn.available() and not onednn.enabled()
        why = "pip install" if found == "nothing" else "could not be loaded: "
        assert why in onednn.status()
        A = np.ones((1, 5, 5, 2), np.float32)
        assert onednn.conv_forward_dnnl(A, np.ones((3, 3, 2, 2), np.float32),
                                        np.zeros((1, 1, 1, 2), np.float32),
                                        {"stride": 1, "pad": 1}) is None
    finally:
        monkeypatch.undo()
        dnnl_api.library.cache_clear()
        dnnl_api.api.cache_clear()


@needs_onednn
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
                close(onednn.conv_forward_dnnl(inputs[i], Wt, b, hp), want[i][0])
                got = onednn.conv_grads_dnnl(want[i][0], want[i][1])
                close(got[1], conv_backward(want[i][0], want[i][1])[1])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@needs_onednn
@pytest.mark.parametrize("first", [False, True])
def test_the_layer_uses_it_and_its_gradients_match_numpy(first):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 9, 9, 8)).astype(np.float32)
    grads = {}
    for flag in (True, False):
        onednn.set_enabled(flag)
        layer = Conv2D(5, 3, stride=2, padding=1)
        layer.build(x.shape[1:], np.random.default_rng(0))
        out = layer.forward(x, training=True)
        d = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
        dx = layer.backward(d, need_input_grad=not first)
        assert (dx is None) == first
        grads[flag] = (out, dx, layer.grads["W"], layer.grads["b"])
    for a, b in zip(grads[True], grads[False]):
        if a is not None:
            close(a, b)


@needs_onednn
def test_primitives_are_made_for_the_thread_count_they_run_with():
    from cnnstep.ops import get_num_threads, set_num_threads

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
            close(onednn.conv_forward_dnnl(A, Wt, b, hp), Z)
            got = onednn.conv_grads_dnnl(Z, cache)
            for g, w in zip(got, conv_backward(Z, cache)):
                close(g, w)
    finally:
        set_num_threads(before)
    made = [key[-1] for key in onednn._local.cache if key[1] == A.shape]
    assert sorted(made) == [1, 2]


@needs_onednn
def test_a_backward_pass_oneDNN_refuses_runs_on_numpy(monkeypatch):
    def refuse(self):
        raise dnnl_api.DnnlError("oneDNN: convolution backward weights failed (unimplemented)")

    monkeypatch.setattr(onednn.ConvPrimitives, "backward_weights", refuse)
    monkeypatch.setattr(onednn, "_local", threading.local())
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 9, 9, 8)).astype(np.float32)
    layer = Conv2D(5, 3, padding=1)
    layer.build(x.shape[1:], np.random.default_rng(0))
    out = layer.forward(x, training=True)  # oneDNN's forward
    d = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(d)  # NumPy's backward
    want = conv_backward(d, (x, layer.params["W"], layer.params["b"], layer.hparameters))
    for g, w in zip((dx, layer.grads["W"], layer.grads["b"]), want):
        close(g, w)


def test_oneDNN_statuses_become_errors():
    dnnl_api.check(0, "anything")
    with pytest.raises(MemoryError, match="oneDNN: execute: out of memory"):
        dnnl_api.check(1, "execute")
    with pytest.raises(dnnl_api.DnnlError, match=r"reorder failed \(unimplemented\)"):
        dnnl_api.check(3, "reorder")
    with pytest.raises(dnnl_api.DnnlError, match=r"status 42"):
        dnnl_api.check(42, "stream")
