"""The reference loops' step hook: called once per step in loop order with the step's value,
changing nothing; explain's traces are recorded through it (one loop source)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from cnnstep import explain
from cnnstep.ops import reference


def _calls():
    seen = []
    return seen, lambda i, h, w, c, value: seen.append((i, h, w, c, float(value)))


def _loop_order(shape):
    return [tuple(int(v) for v in idx) for idx in np.ndindex(*shape)]


def test_forward_hooks_see_every_output_cell_in_loop_order():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 5, 4, 3))
    W = rng.standard_normal((2, 3, 3, 2))
    b = rng.standard_normal((1, 1, 1, 2))
    hp = {"stride": (2, 1), "pad": ((1, 0), (0, 2)), "dilation": (1, 2)}
    seen, hook = _calls()
    Z, cache = reference.conv_forward(A, W, b, hp, on_step=hook)
    Z_plain, _ = reference.conv_forward(A, W, b, hp)
    assert np.array_equal(Z, Z_plain)
    assert [s[:4] for s in seen] == _loop_order(Z.shape)
    assert [s[4] for s in seen] == [float(v) for v in Z.reshape(-1)]
    for mode in ("max", "average"):
        seen, hook = _calls()
        out, _ = reference.pool_forward(A, {"f": 2, "stride": 1, "pad": 1}, mode, on_step=hook)
        assert [s[:4] for s in seen] == _loop_order(out.shape)
        assert [s[4] for s in seen] == [float(v) for v in out.reshape(-1)]


def test_backward_hooks_see_each_routed_gradient_and_zero_pad_each_input_cell():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((2, 4, 4, 2))
    W = rng.standard_normal((3, 3, 2, 3))
    b = np.zeros((1, 1, 1, 3))
    Z, cache = reference.conv_forward(A, W, b, {"stride": 1, "pad": 1})
    dZ = rng.standard_normal(Z.shape)
    seen, hook = _calls()
    got = reference.conv_backward(dZ, cache, on_step=hook)
    for a, w in zip(got, reference.conv_backward(dZ, cache)):
        assert np.array_equal(a, w)
    assert seen == [(*idx, float(dZ[idx])) for idx in _loop_order(dZ.shape)]
    out, pcache = reference.pool_forward(A, {"f": 2, "stride": 2}, "max")
    dA = rng.standard_normal(out.shape)
    seen, hook = _calls()
    reference.pool_backward(dA, pcache, "max", on_step=hook)
    assert seen == [(*idx, float(dA[idx])) for idx in _loop_order(dA.shape)]
    seen, hook = _calls()
    X_pad = reference.zero_pad(A, ((1, 0), (2, 1)), on_step=hook)
    assert X_pad.shape == (2, 5, 7, 2)
    assert seen == [(*idx, float(A[idx])) for idx in _loop_order(A.shape)]


@pytest.mark.parametrize("name", ["zero_pad", "conv_forward", "conv_backward", "pool_forward",
                                  "pool_backward"])
def test_the_hook_is_keyword_only_and_off_by_default(name):
    param = inspect.signature(getattr(reference, name)).parameters["on_step"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is None


def test_explain_runs_the_reference_loops(monkeypatch):
    calls = []
    real = reference.conv_single_step

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(reference, "conv_single_step", counting)
    trace = explain.conv_forward(np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 2)),
                                 np.zeros((1, 1, 1, 2)), {"stride": 1, "pad": 0})
    assert len(calls) == len(trace.steps) == 8
    # ties in max pooling: the trace routes the gradient as the reference's mask does (first max)
    A = np.ones((1, 2, 2, 1))
    _, cache = reference.pool_forward(A, {"f": 2, "stride": 2}, "max")
    trace = explain.pool_backward(np.ones((1, 1, 1, 1)), cache, mode="max")
    np.testing.assert_array_equal(trace.output[0, :, :, 0], [[1, 0], [0, 0]])
