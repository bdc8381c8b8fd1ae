"""Hints from how the returned values differ from the expected ones: a registry of small functions
per checked function, tried in order until one recognises the slip.

Each hint takes the failing :class:`~cnnstep.checker.judging.hints.Run` (its inputs ``values``,
the ``expected`` result, what the learner returned as ``got``, and the comparison's ``problem``)
and returns a sentence or None. ``got`` can be anything the child could send back (a number, an
array, a tuple of the wrong length, a string, a dict, an object of the learner's class): every
hint reads it through :func:`as_array` and :func:`part`, which say None for what they cannot
read, so that no ``except`` is needed around a hint and a bug in one surfaces in the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.compare import ATOL, RTOL
from cnnstep.ops import reference

Hint = Callable[[Any], "str | None"]
HINTS: dict[str, list[Hint]] = {}


def hint(*functions: str) -> Callable[[Hint], Hint]:
    """Register a value hint for ``functions`` (tried in the order they are registered)."""

    def register(fn: Hint) -> Hint:
        for function in functions:
            HINTS.setdefault(function, []).append(fn)
        return fn

    return register


def as_array(value: Any) -> np.ndarray | None:
    """``value`` as a float array, or None when it is not one (ragged, text, an object...)."""
    if value is None or isinstance(value, str | dict):
        return None
    try:
        with np.errstate(all="ignore"):
            array = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return None
    return array


def part(value: Any, index: int) -> Any:
    """Item ``index`` of a returned tuple or list, or None."""
    return value[index] if isinstance(value, tuple | list) and len(value) > index else None


def close(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are arrays of one shape with the checker's tolerance."""
    x, y = as_array(a), as_array(b)
    if x is None or y is None or x.shape != y.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(x, y, rtol=RTOL, atol=ATOL))


def value_hint(function: str, run: Any) -> str | None:
    """The first registered hint for ``function`` that recognises the slip in ``run``."""
    kind = (run.problem or {}).get("kind")
    if run.got is None or kind == "none":
        return None  # the placeholder hint says it
    for fn in HINTS.get(function, []):
        text = fn(run)
        if text:
            return text
    return None


def _kind(run: Any) -> str | None:
    return (run.problem or {}).get("kind")


_RETURNS = {"conv_forward": "return Z, cache", "pool_forward": "return A, cache",
            "conv_backward": "return dA_prev, dW, db"}


@hint("conv_forward", "pool_forward", "conv_backward")
def _returns_all(run: Any) -> str | None:
    if _kind(run) == "type":
        return _("it must return all of its results, in this order: `{names}`").format(
            names=_RETURNS[run.case.function])
    return None


_CACHES = {"conv_forward": "cache = (A_prev, W, b, hparameters)",
           "pool_forward": "cache = (A_prev, hparameters)"}


@hint("conv_forward", "pool_forward")
def _cache(run: Any) -> str | None:
    if _kind(run) == "cache":
        return _("the cache is what the backward pass unpacks: `{cache}`, the inputs "
                 "themselves, in this order").format(cache=_CACHES[run.case.function])
    return None


# --- zero_pad ----------------------------------------------------------------------------------


def _padded_shape(run: Any) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    got = as_array(run.got)
    if got is None:
        return None
    return got.shape, run.values["X"].shape, int(run.values["pad"])


@hint("zero_pad")
def _pads_every_axis(run: Any) -> str | None:
    found = _padded_shape(run)
    if found and found[2] and found[0] == tuple(d + 2 * found[2] for d in found[1]):
        return _("it pads every axis, including the examples and channels: pad only height and "
                 "width, `((0, 0), (pad, pad), (pad, pad), (0, 0))`")
    return None


@hint("zero_pad")
def _not_padded(run: Any) -> str | None:
    found = _padded_shape(run)
    if found and found[2] and found[0] == found[1]:
        return _("nothing is padded: it returns X's shape; pad height and width with zeros, "
                 "`np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=\"constant\")`")
    return None


@hint("zero_pad")
def _pads_one_side(run: Any) -> str | None:
    found = _padded_shape(run)
    if found:
        shape, (m, h, w, c), p = found
        if shape == (m, h + p, w + p, c):
            return _("it pads only one side: `pad` zeros go on both sides of each axis")
    return None


@hint("zero_pad")
def _pads_channels_first(run: Any) -> str | None:
    found = _padded_shape(run)
    if found:
        shape, (m, h, w, c), p = found
        if p and shape == (m, h, w + 2 * p, c + 2 * p):
            return _("it pads the last two axes, as for channels-first (m, n_C, n_H, n_W) "
                     "arrays; the material's X is channels-last (m, n_H, n_W, n_C): "
                     "`((0, 0), (pad, pad), (pad, pad), (0, 0))`")
    return None


@hint("zero_pad")
def _wrong_border(run: Any) -> str | None:
    if _kind(run) == "values":
        return _("the border is not all zeros, or the input is not copied to the middle")
    return None


# --- conv_single_step --------------------------------------------------------------------------


@hint("conv_single_step")
def _returns_an_array(run: Any) -> str | None:
    if _kind(run) == "shape":
        return _("it returns an array; return a plain number: `Z = np.sum(s) + b.item()` (or "
                 "`float(np.squeeze(...))`)")
    return None


def _window_sum(run: Any) -> tuple[float, float, int]:
    v = run.values
    return (float(np.sum(v["a_slice_prev"] * v["W"])), float(v["b"].item()),
            int(np.size(v["a_slice_prev"])))


@hint("conv_single_step")
def _bias_missing_or_subtracted(run: Any) -> str | None:
    s, b, _n = _window_sum(run)
    if close(run.got, s):
        return _("the bias b is not added")
    if close(run.got, s - b):
        return _("the bias b is subtracted instead of added")
    return None


@hint("conv_single_step")
def _not_a_weighted_sum(run: Any) -> str | None:
    v = run.values
    s, b, n = _window_sum(run)
    if close(run.got, s / n + b):
        return _("it averages the products (`np.mean`); the convolution adds them up: "
                 "`np.sum(a_slice_prev * W)`")
    if close(run.got, float(np.sum(v["a_slice_prev"])) + b) or \
            close(run.got, float(np.sum(v["W"])) + b):
        return _("the window is not multiplied by the weights element by element: "
                 "`np.sum(np.multiply(a_slice_prev, W))`")
    return None


@hint("conv_single_step")
def _bias_on_every_element(run: Any) -> str | None:
    s, b, n = _window_sum(run)
    if close(run.got, s + b * n):
        return _("b is added to every element of the window before the sum, so it counts "
                 "f*f*n_C_prev times (the 2017 version of the material did this): add it once, "
                 "after the sum: `Z = np.sum(a_slice_prev * W) + b.item()`")
    return None


# --- conv_forward and pool_forward -------------------------------------------------------------


@hint("conv_forward")
def _activation_inside(run: Any) -> str | None:
    z, z_exp = part(run.got, 0), run.expected[0]
    with np.errstate(all="ignore"):
        activations = {"ReLU": np.maximum(z_exp, 0), "sigmoid": 1 / (1 + np.exp(-z_exp)),
                       "tanh": np.tanh(z_exp)}
    for name, out in activations.items():
        if close(z, out):
            return _("the output has a {name} applied: conv_forward must return the "
                     "pre-activation Z (no activation inside; it is a separate layer)").format(
                name=name)
    if close(z, z_exp - run.values["b"]):
        return _("the bias b is not added to each output channel")
    return None


@hint("conv_forward", "pool_forward")
def _corners_ignore_the_stride(run: Any) -> str | None:
    v = run.values
    hp = dict(v["hparameters"])
    z = as_array(part(run.got, 0))
    if hp["stride"] == 1 or _kind(run) != "values" or z is None or z.ndim != 4:
        return None
    hp1 = dict(hp, stride=1)
    if run.case.function == "conv_forward":
        dense = reference.conv_forward(v["A_prev"], v["W"], v["b"], hp1)[0]
    else:
        dense = reference.pool_forward(v["A_prev"], hp1, v["mode"])[0]
    if close(z, dense[:, :z.shape[1], :z.shape[2]]):
        return _("the window corners do not move by the stride: use `vert_start = h * stride` "
                 "and `horiz_start = w * stride`")
    return None


def _mode_words(mode: str) -> str:
    return _("the average") if mode == "average" else _("the maximum")


def _other_mode(run: Any, computed: Any) -> str | None:
    mode = run.values["mode"]
    other = "average" if mode == "max" else "max"
    if close(part(run.got, 0) if run.case.function == "pool_forward" else run.got, computed(other)):
        return _("mode {mode} computes {other} instead: check the `if mode == ...` "
                 "branches").format(mode=repr(mode), other=_mode_words(other))
    return None


@hint("pool_forward")
def _pool_forward_modes_swapped(run: Any) -> str | None:
    if _kind(run) == "cache":
        return None
    v = run.values
    return _other_mode(run, lambda other: reference.pool_forward(v["A_prev"], v["hparameters"],
                                                                 other)[0])


@hint("pool_forward")
def _average_is_a_sum(run: Any) -> str | None:
    v = run.values
    if v["mode"] != "average" or _kind(run) == "cache":
        return None
    f = v["hparameters"]["f"]
    mean = run.expected[0]  # the reference's average pooling of these values
    if close(part(run.got, 0), mean * f * f):
        return _("mode 'average' adds the window up: take its mean, `np.mean(a_prev_slice)`")
    return None


# --- the pooling helpers -----------------------------------------------------------------------


@hint("distribute_value")
def _distribute(run: Any) -> str | None:
    n_h, n_w = run.values["shape"]
    dz = run.values["dz"]
    # Each formula a learner writes instead; a hint only when one alone gives what came back
    # (on a 2x2 shape with dz = 2, dz and 4 / dz agree).
    found = [text for value, text in (
        (dz / (n_h + n_w), _("it divides by n_H + n_W; divide by the number of cells, n_H * n_W "
                             "(the two agree only for a 2x2 shape, which is the published "
                             "case)")),
        (dz, _("dz is not divided: each cell gets dz / (n_H * n_W)")),
        (dz / n_h * n_w, _("`dz / n_H * n_W` divides by n_H, then multiplies by n_W: write "
                           "`dz / (n_H * n_W)`")),
        ((n_h * n_w) / dz if dz else np.inf,
         _("it divides the wrong way round: each cell gets dz / (n_H * n_W)")))
        if close(run.got, np.full((n_h, n_w), value))]
    if len(found) == 1:
        return found[0]
    if found:
        return None
    got = as_array(run.got)
    if got is not None and got.ndim == 0:
        return _("it returns a number; return an array of the given shape filled with the "
                 "average: `np.ones(shape) * dz / (n_H * n_W)`")
    return None


@hint("create_mask_from_window")
def _mask(run: Any) -> str | None:
    x = run.values["x"]
    got = as_array(run.got)
    if got is None or got.shape != x.shape:
        return _("return a boolean mask shaped like x (`x == np.max(x)`), not an index or a "
                 "number")
    if close(got, (x == x.min()).astype(float)):
        return _("the mask marks the minimum, not the maximum")
    if not close(got, (x == x.max()).astype(float)):
        return _("the mask must be True exactly where x equals its maximum, and False "
                 "elsewhere: `mask = x == np.max(x)`")
    return None


# --- the backward passes -----------------------------------------------------------------------


@hint("pool_backward")
def _pool_backward_modes_swapped(run: Any) -> str | None:
    v = run.values
    return _other_mode(run, lambda other: reference.pool_backward(
        v["dA"], (v["A_prev"], v["hparameters"]), other))


@hint("conv_backward")
def _conv_backward_parts(run: Any) -> str | None:
    wrong = (run.problem or {}).get("wrong_parts", [])
    if wrong == ["db"]:
        return _("only db is wrong: for every window, `db[:, :, :, c] += dZ[i, h, w, c]`")
    if "dW" in wrong and "dA_prev" not in wrong:
        return _("dW must add up the contributions of every window of every example: "
                 "`dW[:, :, :, c] += a_slice * dZ[i, h, w, c]`, with `a_slice` taken from the "
                 "padded input")
    return None
