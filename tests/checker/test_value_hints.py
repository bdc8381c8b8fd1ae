"""The value hints: one registry entry per slip, and none raises whatever a learner returns (no
``except`` hides a bug in a hint)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from cnnstep.checker.judging.cases import FUNCTIONS, arguments, cases_for
from cnnstep.checker.judging.hints import Run
from cnnstep.checker.judging.value_hints import HINTS, value_hint
from cnnstep.checker.sandbox.protocol import LearnerObject
from cnnstep.ops import reference

ODD = [3.0, -1, True, "text", {"Z": 1}, [], [1, [2, 3]], (np.zeros(2),), (None, None),
       np.zeros((0,)), np.full((2, 3), np.nan), np.array(np.inf), LearnerObject(),
       (np.zeros((1, 2, 2, 1)), "cache", 7), [np.zeros(3), np.zeros(4)]]
KINDS = [None, "values", "shape", "type", "cache", "none"]


@functools.cache
def runs(function: str) -> list:
    found = []
    for case in cases_for(function):
        values = case.values(reference)
        found.append((case, values, getattr(reference, function)(*arguments(function, values))))
    return found


def test_every_function_has_value_hints():
    assert set(HINTS) == set(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_value_hint_raises_on_odd_returns(function):
    for case, values, expected in runs(function):
        for got in ODD:
            for kind in KINDS:
                problem = {"kind": kind, "wrong_parts": ["dW"]} if kind else None
                run = Run(case, "fail", values, expected, got, problem)
                text = value_hint(function, run)
                assert text is None or isinstance(text, str)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_value_hint_raises_on_any_array(data):
    function = data.draw(st.sampled_from(FUNCTIONS))
    case, values, expected = data.draw(st.sampled_from(runs(function)))
    got = data.draw(arrays(np.float64, array_shapes(min_dims=0, max_dims=5, max_side=4)))
    wrapped = data.draw(st.sampled_from([got, (got,), (got, got), (got, got, got)]))
    run = Run(case, "fail", values, expected, wrapped, {"kind": "values"})
    assert value_hint(function, run) is None or isinstance(value_hint(function, run), str)


def test_the_registry_recognises_a_slip_per_function():
    case, values, expected = runs("distribute_value")[0]
    n_h, n_w = values["shape"]
    run = Run(case, "fail", values, expected, np.full((n_h, n_w), values["dz"] / (n_h + n_w)),
              {"kind": "values"})
    hint = value_hint("distribute_value", run)
    assert hint is not None and "n_H + n_W" in hint


def _run(function: str, got, kind: str = "values", pick=lambda values: True):
    case, values, expected = next(r for r in runs(function) if pick(r[1]))
    return value_hint(function, Run(case, "fail", values, expected, got(values), {"kind": kind}))


def test_the_single_steps_slips():
    def window(v):
        return v["a_slice_prev"] * v["W"]

    assert "`np.mean`" in _run("conv_single_step",
                               lambda v: np.mean(window(v)) + v["b"].item())
    for got in (lambda v: np.sum(v["a_slice_prev"]) + v["b"].item(),
                lambda v: np.sum(v["W"]) + v["b"].item()):
        assert "not multiplied by the weights" in _run("conv_single_step", got)


def test_the_pooling_slips():
    hint = _run("pool_forward", lambda v: (reference.pool_forward(
        v["A_prev"], v["hparameters"], "average")[0] * v["hparameters"]["f"] ** 2, None),
        pick=lambda v: v["mode"] == "average")
    assert "adds the window up" in hint
    assert "`cache = (A_prev, hparameters)`" in _run(
        "pool_forward", lambda v: (None, (v["A_prev"],)), kind="cache")
    assert "`cache = (A_prev, W, b, hparameters)`" in _run(
        "conv_forward", lambda v: (None, ()), kind="cache")


@pytest.mark.parametrize("formula, words", [
    (lambda dz, h, w: dz / h * w, "divides by n_H, then multiplies by n_W"),
    (lambda dz, h, w: h * w / dz, "the wrong way round"),
    (lambda dz, h, w: dz, "dz is not divided"),
])
def test_distribute_values_slips_where_one_formula_alone_gives_it(formula, words):
    def got(v):
        return np.full(v["shape"], formula(v["dz"], *v["shape"]))

    # A shape and a dz that tell the formulas apart, and one that does not (2x2, dz = 2).
    assert words in _run("distribute_value", got,
                         pick=lambda v: v["shape"][0] != v["shape"][1] and v["dz"] not in (0, 2))
    case, values, expected = runs("distribute_value")[0]
    values = dict(values, shape=(2, 2), dz=2.0)
    run = Run(case, "fail", values, np.full((2, 2), 0.5), np.full((2, 2), 2.0), {"kind": "values"})
    assert value_hint("distribute_value", run) is None


def test_a_mask_that_is_not_x_equals_its_maximum():
    for got in (lambda v: v["x"] > np.max(v["x"]), lambda v: np.ones_like(v["x"])):
        assert "`mask = x == np.max(x)`" in _run("create_mask_from_window", got)


def test_zero_pad_that_pads_nothing():
    assert "nothing is padded" in _run("zero_pad", lambda v: v["X"], pick=lambda v: v["pad"] > 0)
