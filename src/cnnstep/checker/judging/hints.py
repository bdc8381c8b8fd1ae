"""Guess the slip behind a failure, from the exception, the wrong values, or the pattern of which
cases fail (see the tags in :mod:`cnnstep.checker.judging.cases`).

Hints are phrased as likely causes, not verdicts: the verdict is the comparison itself.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import ALIASES, FUNCTIONS, TAG_WORDS, Case
from cnnstep.checker.judging.slips import float_size_hint, removed_numpy_hint, source_hint
from cnnstep.checker.judging.value_hints import value_hint


@dataclass
class Run:
    """One case run on a learner's function (kept in the child process only)."""

    case: Case
    status: str  # "pass", "fail", "error"
    values: dict = field(default_factory=dict)
    expected: object = None
    got: object = None
    problem: dict | None = None
    error: BaseException | None = None
    note: str | None = None


def none_placeholders(fn_node: ast.AST | None) -> list[tuple[int, str]]:
    """``(line, text)`` of every ``name = None`` inside a function: the template's blanks."""
    if fn_node is None:
        return []
    found = []
    for node in ast.walk(fn_node):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and node.value.value is None):
            found.append((node.lineno, ast.unparse(node)))
    return found


def _placeholder_hint(fn_node, where) -> str:
    lines = none_placeholders(fn_node)
    text = _("a value is still None: the template's `None` placeholders were not all filled in")
    if lines:
        shown = "; ".join(f"{where(n)}: `{t}`" for n, t in lines[:3])
        text += f" ({shown})"
    return text


def did_you_mean(name: str, defined) -> str | None:
    """The learner's function whose name is closest to ``name`` (``zeros_pad`` for
    ``zero_pad``), if one is close enough to be a typo."""
    known = set(FUNCTIONS) | {a for v in ALIASES.values() for a in v}
    candidates = [d for d in defined if d not in known]
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return found[0] if found else None


def _missing_name(exc: BaseException) -> str:
    return getattr(exc, "name", None) or (re.findall(r"'(\w+)'", str(exc)) or [""])[0]


def unknown_name_hint(exc: BaseException) -> str:
    """The last resort for a NameError: a notebook global or a typo."""
    return _("it uses `{name}`, which is not defined: a global variable from your notebook used "
             "instead of the function's parameter, or a typo?").format(name=_missing_name(exc))


def exception_hint(function: str, exc: BaseException, run: Run, context: dict) -> str | None:
    """A hint from what the function raised."""
    message = str(exc)
    if isinstance(exc, NameError):
        name = _missing_name(exc)
        all_names = set(FUNCTIONS) | {a for v in ALIASES.values() for a in v}
        if name in all_names:
            guess = did_you_mean(name, context.get("defined", ()))
            if guess:
                return _("it calls `{name}`, which your file does not define (it defines "
                         "`{guess}`: a typo?)").format(name=name, guess=guess)
            return _("it calls `{name}`, which your file does not define (or whose definition "
                     "failed: see the warnings)").format(name=name)
        if name in ("np", "numpy"):
            return _("`np` is not defined: the file needs `import numpy as np` at top level (or "
                     "that import failed: see the warnings)")
        skipped = context.get("skipped_names", {})
        if name in skipped:
            return _("it uses `{name}`, a global variable that only top-level code sets "
                     "({where}), which the checker does not run: use the function's own "
                     "parameter (or compute it inside the function) instead").format(
                name=name, where=skipped[name])
        return None
    if isinstance(exc, AttributeError):
        removed = removed_numpy_hint(message)
        if removed:
            return removed
        if "NoneType" in message:
            return _placeholder_hint(context.get("fn_node"), context["where"])
    if isinstance(exc, TypeError):
        if "'float' object cannot be interpreted as an integer" in message or \
                "slice indices must be integers" in message:
            return float_size_hint(context.get("fn_node"), context["where"])
        if re.search(r"only (0-dimensional|length-1|size-1) arrays can be converted", message):
            return _("`float(...)` (or `int(...)`) of an array with dimensions, such as the "
                     "bias `b` of shape (1, 1, 1), is an error in current NumPy (deprecated "
                     "since 1.25): use `b.item()` or `float(np.squeeze(b))`")
        if "NoneType" in message or "None" in message.split(":")[-1]:
            return _placeholder_hint(context.get("fn_node"), context["where"])
    if isinstance(exc, KeyError) and exc.args and exc.args[0] in ("pad", "stride", "f"):
        return _("hparameters[{key}] is not there: the checker passes the material's keys "
                 "only, {{'stride', 'pad'}} for convolution and {{'f', 'stride'}} for pooling"
                 ).format(key=repr(exc.args[0]))
    if isinstance(exc, ValueError):
        if "could not broadcast" in message and "(0," in message and "pad0" in run.case.tags:
            return _tag_hint(function, "pad0")
        if "setting an array element with a sequence" in message and function == "conv_forward":
            return _("a value written into one cell of Z is an array, not a number: "
                     "conv_single_step must return a scalar (for example with `.item()`)")
    if isinstance(exc, MemoryError):
        return _("it ran out of memory (the checker limits each run): are the loops far too "
                 "large?")
    if isinstance(exc, RecursionError):
        return _("endless recursion: does the function call itself?")
    return None


_TAG_ORDER = ("pad0", "remainder", "stride", "avg3", "overlap", "ties", "nonsquare", "batch1",
              "channel1", "average", "max")


def _tag_hint(function: str, tag: str) -> str:
    lead = _("fails only when {when}: ").format(when=_(TAG_WORDS[tag]))
    backward = function in ("conv_backward", "pool_backward")
    if tag == "pad0":
        if function == "conv_backward":
            return lead + _("un-padding with `[pad:-pad]` gives an empty slice when pad = 0; "
                            "slice `[pad:pad + n_H_prev, pad:pad + n_W_prev, :]` instead")
        if function == "zero_pad":
            return lead + _("with pad 0 the input must come back unchanged")
        return lead + _("a slice like `[pad:-pad]` is empty when pad = 0")
    if tag == "stride":
        return lead + _("the window corners must move by the stride (`vert_start = h * "
                        "stride`, `horiz_start = w * stride`), and the output size divides by it")
    if tag == "remainder":
        text = lead + _("the output size is (n_H_prev - f + 2*pad) // stride + 1, rounded down")
        if backward:
            text += _(", and input rows or columns that no window covers get zero gradient")
        return text
    if tag == "overlap":
        if backward:
            return lead + _("where windows overlap each window's gradient must be added: use "
                            "`+=`, not `=`, when writing into dA_prev")
        return lead + _("windows must be read from the input as it is, not from a changed copy")
    if tag == "avg3":
        return lead + _("divide by the number of cells, n_H * n_W (9 for 3x3), not n_H + n_W "
                        "(6): the two agree for 2x2 windows, which is why the published case "
                        "passes")
    if tag == "nonsquare":
        return lead + _("height and width are mixed up somewhere (n_H vs n_W, shape[1] vs "
                        "shape[2], vert vs horiz)")
    if tag in ("batch1", "channel1"):
        if tag == "batch1":
            return lead + _("something drops or mis-indexes the example axis (`np.squeeze`?)")
        return lead + _("something drops or mis-indexes the channel axis (`np.squeeze`?)")
    if tag == "ties":
        return lead + _("check how the mask treats several equal maxima in one window")
    return lead + _("check the code for mode {mode}").format(mode=repr(tag))


def tag_hint(function: str, runs: list[Run]) -> str | None:
    """The slip suggested by which cases fail: a tag every failing case has, whose own simplest
    case fails, while some case passes."""
    failing = [r for r in runs if r.status != "pass"]
    if not failing or len(failing) == len(runs):
        return None
    for tag in _TAG_ORDER:
        if not all(tag in r.case.tags for r in failing):
            continue
        own = [r for r in runs if tag in r.case.tags and not r.case.published]
        if not own:
            continue
        fewest = min(len(r.case.tags) for r in own)
        if any(r.status != "pass" for r in own if len(r.case.tags) == fewest):
            return _tag_hint(function, tag)
    return None


def passes_only_hint(function: str, runs: list[Run]) -> str | None:
    """The slip suggested by which cases *pass*: a tag that every passing case has and no
    failing case has (e.g. only the single-channel case passes)."""
    passing = [r for r in runs if r.status == "pass"]
    failing = [r for r in runs if r.status != "pass"]
    if not passing or not failing:
        return None
    for tag in ("channel1", "batch1", "pad0"):
        if all(tag in r.case.tags for r in passing) and not any(
                tag in r.case.tags for r in failing):
            lead = _("it passes only when {when}: ").format(when=_(TAG_WORDS[tag]))
            if tag == "channel1" and function == "conv_backward":
                return lead + _("every output channel adds to the same window of dA_prev, so "
                                "use `+=`, not `=`, and index W, dW and db by the channel c")
            if tag == "channel1":
                return lead + _("check the loop over channels and the indexing by c")
            if tag == "batch1":
                return lead + _("check the loop over examples and the indexing by i (does one "
                                "example overwrite another?)")
            return lead + _("check how pad is used")
    return None


def hint_for(function: str, runs: list[Run], reported: Run, context: dict) -> str | None:
    """The best hint for a function whose smallest failing case is ``reported``.

    The order goes from the most to the least certain: what the exception says, a `None`
    returned, a slip seen in the source, the wrong values, then the pattern of failing cases.
    """
    hint = None
    if reported.error is not None:
        hint = exception_hint(function, reported.error, reported, context)
    elif reported.got is None or (reported.problem or {}).get("kind") == "none":
        hint = _("it returns None: the template's `None` placeholders are still there, or the "
                 "`return` line is missing")
        lines = none_placeholders(context.get("fn_node"))
        if lines:
            hint += " (" + "; ".join(f"{context['where'](n)}: `{t}`" for n, t in lines[:3]) + ")"
    if hint is None:
        hint = source_hint(function, context.get("fn_node"), context["where"])
    if hint is None and reported.error is None:
        hint = value_hint(function, reported)
    if hint is None and isinstance(reported.error, NameError):
        hint = unknown_name_hint(reported.error)
    if hint is None:
        hint = tag_hint(function, runs) or passes_only_hint(function, runs)
    if hint is None and reported.error is None:
        # Try the other failing cases: a mutant may show on a bigger one.
        for run in runs:
            if run.status == "fail" and run is not reported:
                hint = value_hint(function, run)
                if hint:
                    break
    return hint
