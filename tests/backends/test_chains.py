"""Chains of layers for inference (cnnstep.backends.inference): oneDNN's chain gives NumPy's
results up to float32 rounding, over strides, paddings, poolings and a last Dense; NaN, infinities
and values that could overflow run on NumPy; a refusal is remembered; weights changed between
calls are read afresh; the input's values are checked exactly where a quick bound fails."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onednn_helpers import needs_onednn, onednn_on
from rounding import assert_equal_up_to_rounding

from cnnstep.backends import record, status
from cnnstep.backends.inference import Chain, Conv, Dense, Pool
from cnnstep.backends.onednn import api as dn
from cnnstep.backends.onednn import chain as onednn_chain
from cnnstep.backends.onednn import primitives
from cnnstep.config import config_context

pytestmark = [needs_onednn, pytest.mark.usefixtures(onednn_on.__name__)]


@st.composite
def chains(draw):
    """A chain of 1-3 convolutions (ReLU or not, dilated or not), each maybe followed by a
    pooling (padded or not), maybe ending in a Dense; its input; the largest number of terms of
    any sum."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    m = draw(st.integers(1, 4))
    H, W, C = draw(st.integers(4, 12)), draw(st.integers(4, 12)), draw(st.integers(1, 5))
    shape = (H, W, C)
    steps, terms = [], 0
    for _ in range(draw(st.integers(1, 3))):
        f = draw(st.integers(1, min(3, *shape[:2])))
        d = draw(st.integers(1, 2)) if (f - 1) * 2 + 1 <= min(shape[:2]) else 1
        s = draw(st.integers(1, 2))
        pad = draw(st.sampled_from([0, 1, "same", ((0, 1), (1, 0))]))
        if pad == "same":
            s = 1
        F = draw(st.integers(1, 9))
        Wt = rng.standard_normal((f, f, shape[2], F)).astype(np.float32)
        b = rng.standard_normal((1, 1, 1, F)).astype(np.float32)
        steps.append(Conv(Wt, b, {"stride": s, "pad": pad, "dilation": d},
                          draw(st.booleans())))
        terms += f * f * shape[2] + 1
        shape = Chain(steps, (H, W, C), np.float32).out_shape
        if min(shape[:2]) >= 2 and draw(st.booleans()):
            mode = draw(st.sampled_from(["max", "average"]))
            pf = draw(st.integers(2, min(3, *shape[:2])))
            # max pooling never picks a padded cell, average pooling leaves them out: as oneDNN
            steps.append(Pool({"f": pf, "stride": draw(st.integers(1, 2)),
                               "pad": draw(st.integers(0, pf - 1))}, mode))
            shape = Chain(steps, (H, W, C), np.float32).out_shape
        if min(shape[:2]) < 2:
            break
    if draw(st.booleans()):
        units = draw(st.integers(1, 7))
        n_in = math.prod(shape)
        steps.append(Dense(rng.standard_normal((n_in, units)).astype(np.float32),
                           rng.standard_normal(units).astype(np.float32)))
        terms += n_in + 1
    x = rng.standard_normal((m, H, W, C)).astype(np.float32)
    return steps, x, terms


def run(chain: Chain, x: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), *chain.out_shape), dtype=chain.dtype)
    chain.run(x, out)
    return out


def abs_chain(steps, x):
    """The same steps on absolute values in float64, without ReLU: for every output, a bound
    on the sum of the absolute terms that went into it (ReLU, maximum and mean never grow
    them), hence on its rounding errors."""
    absolute = []
    for s in steps:
        if isinstance(s, Conv):
            absolute.append(Conv(np.abs(s.W).astype(np.float64), np.abs(s.b).astype(np.float64),
                                 s.hparameters, False))
        elif isinstance(s, Dense):
            absolute.append(Dense(np.abs(s.W).astype(np.float64), np.abs(s.b).astype(np.float64)))
        else:
            absolute.append(s)
    return run(Chain(absolute, x.shape[1:], np.float64), np.abs(x).astype(np.float64))


@settings(max_examples=60, deadline=None)
@given(chains())
def test_onednn_chain_gives_numpy_results_up_to_rounding(problem):
    steps, x, terms = problem
    got = run(Chain(steps, x.shape[1:], np.float32), x)
    where = list(record.passes().values())[-1]
    # oneDNN offers only its slow reference implementation for some odd geometries (a 1x1
    # convolution of one channel with padding): NumPy runs those, and says so
    assert where == "onednn" or "reference implementation" in where, where
    with config_context(backend="numpy"):
        want = run(Chain(steps, x.shape[1:], np.float32), x)
    assert got.dtype == want.dtype == np.float32
    # each step's sums in another order; every error carried on through sums of at most
    # `terms` terms altogether (ReLU, maximum and mean add none)
    assert_equal_up_to_rounding(got, want, abs_chain(steps, x), terms)


def test_a_chain_like_the_default_models_runs_on_onednn():
    rng = np.random.default_rng(7)
    steps = [Conv(rng.standard_normal((3, 3, 1, 16)).astype(np.float32),
                  np.zeros((1, 1, 1, 16), np.float32), {"stride": 1, "pad": "same"}, True),
             Pool({"f": 2, "stride": 2}, "max"),
             Conv(rng.standard_normal((3, 3, 16, 32)).astype(np.float32),
                  np.zeros((1, 1, 1, 32), np.float32), {"stride": 1, "pad": "same"}, True),
             Pool({"f": 2, "stride": 2}, "max"),
             Dense(rng.standard_normal((7 * 7 * 32, 10)).astype(np.float32),
                   np.zeros(10, np.float32))]
    x = rng.random((8, 28, 28, 1), dtype=np.float32)
    got = run(Chain(steps, (28, 28, 1), np.float32), x)
    assert list(record.passes().values())[-1] == "onednn"
    with config_context(backend="numpy"):
        want = run(Chain(steps, (28, 28, 1), np.float32), x)
    assert_equal_up_to_rounding(got, want, abs_chain(steps, x), 9 + 1 + 144 + 1 + 1568 + 1)


def small_chain(rng, relu=True):
    steps = [Conv(rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
                  rng.standard_normal((1, 1, 1, 4)).astype(np.float32), {"stride": 1,
                                                                          "pad": "same"}, relu),
             Pool({"f": 2, "stride": 2}, "max"),
             Dense(rng.standard_normal((3 * 3 * 4, 5)).astype(np.float32),
                   rng.standard_normal(5).astype(np.float32))]
    return steps


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_input_runs_on_numpy_and_gives_its_nan_and_infinities(bad):
    rng = np.random.default_rng(0)
    steps = small_chain(rng)
    x = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
    x[1, 2, 3, 0] = bad
    with np.errstate(invalid="ignore"):  # inf - inf in the products, as in the layers
        got = run(Chain(steps, (6, 6, 2), np.float32), x)
        assert "a NaN or an infinity in the input" in list(record.passes().values())[-1]
        with config_context(backend="numpy"):
            want = run(Chain(steps, (6, 6, 2), np.float32), x)
    np.testing.assert_array_equal(got, want)  # the same code ran: bit for bit
    assert np.isfinite(got[[0, 2]]).all() and not np.isfinite(got[1]).all()


def test_values_that_could_overflow_run_on_numpy():
    rng = np.random.default_rng(1)
    steps = small_chain(rng)
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32) * np.float32(1e36)
    run(Chain(steps, (6, 6, 2), np.float32), x)
    assert "could overflow float32" in list(record.passes().values())[-1]
    steps[0].W[0, 0, 0, 0] = np.inf
    chain = Chain(steps, (6, 6, 2), np.float32)
    assert chain.why == "weights that are not finite"


def test_the_values_check_is_exact_where_its_quick_bound_fails():
    steps = small_chain(np.random.default_rng(8))
    chain = Chain(steps, (6, 6, 2), np.float32)
    x = np.full((2, 6, 6, 2), 1e20, np.float32)  # squares overflow float32, the values do not
    assert chain.unsafe_values(x) is None
    x[1, 0, 0, 0] = -3e38
    assert "could overflow float32" in chain.unsafe_values(x)
    x[0, 5, 5, 1] = np.nan
    assert "a NaN or an infinity" in chain.unsafe_values(x)
    assert chain.unsafe_values(np.zeros((0, 6, 6, 2), np.float32)) is None


def test_weights_changed_between_calls_are_read_again():
    rng = np.random.default_rng(2)
    steps = small_chain(rng)
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    first = run(Chain(steps, (6, 6, 2), np.float32), x)
    steps[0].W[...] *= 2  # in place, as an optimizer step does
    steps[2].b[...] += 1
    again = run(Chain(steps, (6, 6, 2), np.float32), x)
    with config_context(backend="numpy"):
        want = run(Chain(steps, (6, 6, 2), np.float32), x)
    assert not np.allclose(first, again)
    np.testing.assert_allclose(again, want, rtol=1e-4, atol=1e-4)


def test_a_chain_without_dense_writes_nhwc():
    rng = np.random.default_rng(3)
    steps = small_chain(rng)[:2]
    x = rng.standard_normal((5, 6, 6, 2)).astype(np.float32)
    got = run(Chain(steps, (6, 6, 2), np.float32), x)
    assert got.shape == (5, 3, 3, 4)
    with config_context(backend="numpy"):
        np.testing.assert_allclose(got, run(Chain(steps, (6, 6, 2), np.float32), x),
                                   rtol=1e-5, atol=1e-5)


def test_a_refused_chain_runs_on_numpy_and_is_remembered(monkeypatch):
    made = []

    def refuse(self, *args, **kwargs):
        made.append(1)
        raise dn.DnnlError("oneDNN: convolution forward failed (unimplemented)")

    monkeypatch.setattr(onednn_chain.ChainPrimitives, "__init__", refuse)
    rng = np.random.default_rng(4)
    steps = small_chain(rng)
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    got = run(Chain(steps, (6, 6, 2), np.float32), x)
    again = run(Chain(steps, (6, 6, 2), np.float32), x)
    assert len(made) == 1  # not tried again
    np.testing.assert_array_equal(got, again)
    where = list(record.passes().values())[-1]
    assert where.startswith("numpy: oneDNN refused it")
    assert any(k.startswith("chain") for k in status()["refused"])


def test_a_refusal_on_a_later_chunk_runs_it_on_numpy_and_is_remembered(monkeypatch):
    steps = small_chain(np.random.default_rng(9))
    x = np.random.default_rng(9).standard_normal((4, 6, 6, 2)).astype(np.float32)
    chain = Chain(steps, (6, 6, 2), np.float32)
    first = run(chain, x)  # the chain keeps these primitives for the next chunk of 4

    def fail(self, *args):
        raise dn.DnnlError("oneDNN: execute failed (runtime error)")

    monkeypatch.setattr(onednn_chain.ChainPrimitives, "run", fail)
    again = run(chain, x)
    assert list(record.passes().values())[-1].startswith("numpy: oneDNN refused it")
    assert any(k.startswith("chain") for k in status()["refused"])
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-5)
    assert chain.unsafe_values(x) is None and run(chain, x).shape == first.shape


def test_a_chain_does_not_keep_its_thread_s_primitives_alive(monkeypatch):
    made = []
    make = onednn_chain.ChainPrimitives.__init__

    def spy(self, *args, **kwargs):
        made.append(weakref.ref(self))
        make(self, *args, **kwargs)

    monkeypatch.setattr(onednn_chain.ChainPrimitives, "__init__", spy)
    steps = small_chain(np.random.default_rng(10))
    x = np.random.default_rng(10).standard_normal((4, 6, 6, 2)).astype(np.float32)
    chain = Chain(steps, (6, 6, 2), np.float32)
    first = run(chain, x)
    assert len(made) == 1 and made[0]() is not None
    primitives.forget()  # this thread's cache let go: they go now, not with the chain
    assert made[0]() is None
    np.testing.assert_array_equal(run(chain, x), first)  # made again for the next chunk
    assert len(made) == 2


def test_float64_and_the_numpy_setting_run_on_numpy():
    rng = np.random.default_rng(5)
    steps = small_chain(rng)
    assert Chain(steps, (6, 6, 2), np.float64).why == "oneDNN runs float32 only"
    with config_context(backend="numpy"):
        assert "backend setting is 'numpy'" in Chain(steps, (6, 6, 2), np.float32).why
    assert Chain(steps, (6, 6, 2), np.float32).why is None


def test_primitives_are_made_once_per_chunk_size_and_kept():
    rng = np.random.default_rng(6)
    steps = small_chain(rng)
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    for _ in range(3):
        chain = Chain(steps, (6, 6, 2), np.float32)
        run(chain, x)
        run(chain, x[:3])
    keys = [k for k in primitives.cached_keys() if k[0].startswith("chain")]
    assert sorted(k[1][0] for k in keys) == [3, 4]  # one set per batch size, made once


def made_impls(monkeypatch, steps, x):
    """The convolutions' implementations of the chain's primitives made for ``x``."""
    made = []
    init = onednn_chain.ChainPrimitives.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(onednn_chain.ChainPrimitives, "__init__", keep)
    primitives.forget()
    got = run(Chain(steps, x.shape[1:], np.float32), x)
    assert list(record.passes().values())[-1] == "onednn" and len(made) == 1
    return made[0].impls, got


def test_a_preferred_convolution_kernel_runs_where_offered_else_the_first_choice(monkeypatch):
    rng = np.random.default_rng(8)
    steps = [Conv(rng.standard_normal((3, 3, 16, 32)).astype(np.float32),
                  rng.standard_normal((1, 1, 1, 32)).astype(np.float32),
                  {"stride": 1, "pad": "same"}, True)]
    x = rng.standard_normal((16, 14, 14, 16)).astype(np.float32)
    monkeypatch.setattr(onednn_chain, "PREFERRED", {})
    (first,), want = made_impls(monkeypatch, steps, x)
    monkeypatch.setattr(onednn_chain, "PREFERRED", {first: "no such kernel"})
    assert made_impls(monkeypatch, steps, x)[0] == [first]
    if first == "brgconv:avx2":  # a CPU with AVX2, not AVX-512: the direct kernel instead
        monkeypatch.setattr(onednn_chain, "PREFERRED", {first: "jit:avx2"})
        impls, got = made_impls(monkeypatch, steps, x)
        assert impls == ["jit:avx2"]
        abs_sums = abs_chain(steps, x)
        assert_equal_up_to_rounding(got, want, abs_sums, 3 * 3 * 16 + 1)
