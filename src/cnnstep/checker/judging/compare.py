"""Compare what a learner's function returned with what the reference returns.

Everything returned here is plain JSON-able data (the parent process never unpickles anything
that learner code produced).
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import OUTPUT_NAMES
from cnnstep.checker.sandbox.protocol import LearnerObject

# float64 throughout; loose enough for a different summation order, or float32 arithmetic
# inside a learner's function.
RTOL = 1e-5
ATOL = 1e-6

_SMALL = 16  # arrays up to this many values are shown in full


def _plain(x: float) -> float | str:
    x = float(x)
    return x if np.isfinite(x) else str(x)


def summarize(value) -> dict:
    """A JSON-able description of any value: type, shape, and the values when small."""
    if value is None:
        return {"type": "None"}
    if isinstance(value, LearnerObject):  # an object of the learner's (an object array...)
        return {"type": f"{type(value).__name__} object"}
    if isinstance(value, np.ndarray):
        out: dict = {"type": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
        if value.size <= _SMALL and value.dtype.kind in "biuf":
            out["values"] = np.round(value.astype(float), 8).tolist() if value.dtype.kind != "b" \
                else value.tolist()
        return out
    if isinstance(value, bool | np.bool_):
        return {"type": "bool", "value": bool(value)}
    if isinstance(value, numbers.Real | np.floating | np.integer):
        return {"type": type(value).__name__, "value": _plain(float(value))}
    if isinstance(value, tuple | list):
        return {"type": type(value).__name__, "length": len(value),
                "items": [summarize(v) for v in list(value)[:4]]}
    return {"type": type(value).__name__}


def _fmt_index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def compare_array(name: str, got, expected: np.ndarray) -> dict | None:
    """None when ``got`` matches ``expected``; otherwise what is wrong, as a dict with
    ``message`` and, for wrong values, ``diff`` (max_abs, first_index, expected/got there)."""
    if got is None:
        return {"message": _("{name} is None").format(name=name), "kind": "none"}
    if isinstance(got, tuple | list) and not isinstance(expected, tuple | list):
        return {"message": _("{name} is a {type} of length {length}, expected an array of "
                             "shape {shape}").format(name=name, type=type(got).__name__,
                                                     length=len(got), shape=expected.shape),
                "kind": "type"}
    try:
        array = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return {"message": _("{name} is a {type}, expected an array").format(
            name=name, type=type(got).__name__), "kind": "type"}
    if array.shape != expected.shape:
        return {"message": _("{name} has shape {got}, expected {expected}").format(
                    name=name, got=array.shape, expected=expected.shape),
                "kind": "shape", "part": name, "got_shape": list(array.shape),
                "expected_shape": list(expected.shape)}
    close = np.isclose(array, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    if close.all():
        return None
    first = tuple(int(i) for i in np.argwhere(~close)[0])
    with np.errstate(invalid="ignore"):
        delta = np.abs(array - expected)
    max_abs = float(np.nanmax(delta)) if np.isfinite(delta).any() else float("inf")
    if not np.isfinite(array).all():
        max_abs = float("inf")
    e, g = expected[first], array[first]
    where = f"{name}{_fmt_index(first)}" if first else name
    return {
        "message": _("{name} has wrong values: max abs difference {max_abs}; first at {where}: "
                     "expected {expected}, got {got} ({wrong} of {total} values differ)").format(
            name=name, max_abs=f"{max_abs:.4g}", where=where, expected=f"{e:.8g}",
            got=f"{g:.8g}", wrong=int((~close).sum()), total=close.size),
        "kind": "values",
        "part": name,
        "diff": {"part": name, "max_abs": _plain(max_abs), "first_index": list(first),
                 "expected_value": _plain(e), "got_value": _plain(g),
                 "n_wrong": int((~close).sum()), "n_total": int(close.size)},
    }


def _expect_tuple(got, names: tuple[str, ...]) -> dict | None:
    what = "(" + ", ".join(names) + ")"
    if got is None:
        return {"message": _("returned None, expected {what}").format(what=what), "kind": "none"}
    if not isinstance(got, tuple | list):
        return {"message": _("returned a {type}, expected the tuple {what}").format(
            type=type(got).__name__, what=what), "kind": "type"}
    if len(got) != len(names):
        return {"message": _("returned {got} values, expected {expected}: {what}").format(
            got=len(got), expected=len(names), what=what), "kind": "type"}
    return None


def _cache_problem(cache, values: dict, function: str) -> dict | None:
    if function == "conv_forward":
        names: tuple[str, ...] = ("A_prev", "W", "b", "hparameters")
    else:
        names = ("A_prev", "hparameters")
    what = "(" + ", ".join(names) + ")"
    if not isinstance(cache, tuple | list) or len(cache) != len(names):
        return {"message": _("cache should be {what}; got {type}").format(
            what=what, type=summarize(cache)["type"]), "kind": "cache"}
    for name, item in zip(names, cache, strict=True):
        want = values[name]
        ok = (item == want) if isinstance(want, dict) else (
            isinstance(item, np.ndarray) and item.shape == want.shape and np.allclose(item, want))
        if not ok:
            return {"message": _("cache should be {what}, but its {name} is not the {name} "
                                 "passed in").format(what=what, name=name), "kind": "cache"}
    return None


def all_maxima_pool_backward(dA, A_prev, hparameters) -> np.ndarray:
    """Max-pool backward where tied maxima all receive the gradient (``x == max(x)`` masks):
    the material's own code, which is accepted on ties."""
    f, stride = hparameters["f"], hparameters["stride"]
    dA_prev = np.zeros(A_prev.shape)
    m, n_h, n_w, n_c = dA.shape
    for i in range(m):
        for h in range(n_h):
            for w in range(n_w):
                for c in range(n_c):
                    rows = slice(h * stride, h * stride + f)
                    cols = slice(w * stride, w * stride + f)
                    window = A_prev[i, rows, cols, c]
                    dA_prev[i, rows, cols, c] += (window == window.max()) * dA[i, h, w, c]
    return dA_prev


def compare(function: str, got, expected, values: dict, tags: frozenset) -> dict:
    """Judge one output. Returns ``{"ok": bool, "message": ..., "kind": ..., "note": ...}``."""
    names = OUTPUT_NAMES[function]
    problem: dict | None = None
    note = None
    if function in ("conv_forward", "pool_forward"):
        problem = _expect_tuple(got, names) or compare_array(names[0], got[0], expected[0])
        if problem is None:
            problem = _cache_problem(got[1], values, function)
    elif function == "conv_backward":
        problem = _expect_tuple(got, names)
        if problem is None:
            wrong = [(n, p) for n, g, e in zip(names, got, expected, strict=True)
                     if (p := compare_array(n, g, e)) is not None]
            if wrong:
                problem = dict(wrong[0][1])
                problem["wrong_parts"] = [n for n, _p in wrong]
                if len(wrong) > 1:
                    problem["message"] += _("; also wrong: {names}").format(
                        names=", ".join(n for n, _p in wrong[1:]))
    elif function == "conv_single_step":
        if isinstance(got, np.ndarray) and got.ndim > 0:
            problem = {"message": _("Z is an array of shape {shape}, expected a scalar "
                                    "(a float)").format(shape=got.shape), "kind": "shape",
                       "got_shape": list(got.shape), "expected_shape": []}
        elif got is not None and not isinstance(got, numbers.Real | np.ndarray | np.generic):
            problem = {"message": _("Z is a {type}, expected a float").format(
                type=type(got).__name__), "kind": "type"}
        else:
            problem = compare_array("Z", got, np.asarray(expected, dtype=float))
    elif function == "create_mask_from_window":
        problem = compare_array("mask", got, np.asarray(expected, dtype=float))
        if problem is not None and problem["kind"] == "values":
            mask = np.asarray(got, dtype=float) != 0
            x = values["x"]
            if np.array_equal(mask, x == x.max()):
                problem = None
                note = _("on ties your mask marks every maximum ({cells} cells of x = {x}): "
                         "pool_backward then hands the full gradient to each of them, so the "
                         "gradients no longer sum to dA. Accepted, as in the original material; "
                         "cnnstep (like the major frameworks) marks only the first maximum."
                         ).format(cells=int(mask.sum()), x=values["x"].tolist())
            elif mask.sum() == 1 and x[mask][0] == x.max():
                problem = None  # another of the tied maxima: also one cell, also fine
    elif function == "pool_backward":
        problem = compare_array("dA_prev", got, expected)
        if problem is not None and "ties" in tags and values["mode"] == "max":
            alternative = all_maxima_pool_backward(values["dA"], values["A_prev"],
                                                   values["hparameters"])
            if compare_array("dA_prev", got, alternative) is None:
                problem = None
                note = _("with tied maxima your pool_backward gives the gradient to every tied "
                         "cell (an `x == max(x)` mask), so it is counted more than once. "
                         "Accepted, as in the original material; cnnstep routes it to the first "
                         "maximum only.")
    else:
        problem = compare_array(names[0], got, np.asarray(expected))
    if problem is None:
        return {"ok": True, "note": note}
    return {"ok": False, **problem}
