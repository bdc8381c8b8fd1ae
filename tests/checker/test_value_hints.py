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
