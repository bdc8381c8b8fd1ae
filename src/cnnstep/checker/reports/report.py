"""Turn the checker's results into a readable table or one JSON object."""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from cnnstep.checker.i18n import N_, ngettext
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import FUNCTIONS

_WIDTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# The status words as a learner reads them (JSON and CSV keep the English words).
STATUS_WORDS = {"pass": N_("pass"), "fail": N_("fail"), "error": N_("error"),
                "timeout": N_("timeout"), "missing": N_("missing"),
                "unreadable": N_("unreadable")}


def status_text(status: str) -> str:
    """A status word in the current language."""
    return _(STATUS_WORDS[status]) if status in STATUS_WORDS else status


def to_json(outcome) -> dict:
    """``{"file", "functions": {NAME: {...}}, "passed", "total", "warnings", ...}``.

    Every function entry has ``status``, ``case``, ``expected``, ``got``, ``hint`` (``None``
    where they do not apply) and ``message``; more keys when they say something (``diff``,
    ``error``, ``note``, ``defined_as``, ``helper``, ``cases_passed``/``cases_total``).
    """
    functions = {}
    checked = getattr(outcome, "functions", FUNCTIONS)
    for name in checked:
        result = dict(outcome.results.get(name, {"status": "error",
                                                 "message": _("not checked")}))
        entry = {key: result.pop(key, None)
                 for key in ("status", "case", "expected", "got", "hint", "message", "note")}
        entry.update(result)
        functions[name] = entry
    passed = sum(1 for entry in functions.values() if entry["status"] == "pass")
    return {
        "file": outcome.path,
        "functions": functions,
        "passed": passed,
        "total": len(checked),
        "warnings": list(outcome.warnings),
        "skipped_statements": outcome.skipped_statements,
        "isolation": getattr(outcome, "isolation", "process"),
    }


def _describe(summary: dict | None) -> str:
    if not summary:
        return "-"
    # Every key is read with a default: a summary says what it can of any value.
    kind = str(summary.get("type", "?"))
    shape = summary.get("shape")
    if kind == "ndarray" and isinstance(shape, list):
        text = _("array of shape {shape}, {dtype}").format(shape=tuple(shape),
                                                           dtype=summary.get("dtype", "?"))
        if "values" in summary and len(shape) <= 2:
            text += f": {summary['values']}"
        return text
    if kind == "exception":
        return _("an exception ({type})").format(type=summary.get("exception", "?"))
    if "value" in summary:
        return f"{summary['value']!r} ({kind})"
    length = summary.get("length")
    if kind in ("tuple", "list") and isinstance(length, int):
        return ngettext("a {type} of {n} item", "a {type} of {n} items",
                        length).format(type=kind, n=length)
    return "None" if kind == "None" else _("a {type}").format(type=kind)


def _short(result: dict) -> str:
    status = result["status"]
    if status == "pass":
        text = ""
        if result.get("defined_as"):
            text = _("(as {name})").format(name=result["defined_as"])
        if result.get("note"):
            text = (text + " " if text else "") + _("note below")
        return text
    if status == "error" and "error" in result:
        err = result["error"]
        if err.get("where"):
            return _("{type} at {where}").format(type=err["type"], where=err["where"])
        return err["type"]
    if status == "fail" and result.get("case"):
        return _("wrong on: {case}").format(case=result["case"]["label"])
    return result.get("message", "")


def _block(label: str, text: str) -> list[str]:
    indent = " " * 12
    lines = []
    for i, para in enumerate(text.split("\n")):
        wrapped = textwrap.wrap(para, _WIDTH - len(indent)) or [""]
        for j, piece in enumerate(wrapped):
            prefix = f"  {_(label):<9} " if i == 0 and j == 0 else indent
            lines.append(prefix + piece)
    return lines


def format_table(outcome) -> str:
    """One line per function, then the details of each that did not pass."""
    data = to_json(outcome)
    lines = [f"cnnstep check: {_CONTROL.sub('?', str(data['file']))}"]
    for warning in data["warnings"]:
        lines += textwrap.wrap(_("warning: {text}").format(text=warning), _WIDTH,
                               subsequent_indent="  ")
    lines.append("")
    function, result_word = _("function"), _("result")
    lines.append(f"  {function:<25} {result_word}")
    # As wide as the longest status word in this language, and a space ("incorrecta").
    width = max(len(status_text(s)) for s in STATUS_WORDS) + 1
    for name, result in data["functions"].items():
        lines.append(f"  {name:<25} {status_text(result['status']):<{width}} "
                     f"{_short(result)}".rstrip())
    lines.append("")
    lines.append(summary_text(data["passed"], data["total"]) + ".")
    for name, result in data["functions"].items():
        details = function_details(name, result)
        if details:
            lines += [""] + details
    return "\n".join(lines)


def summary_text(passed: int, total: int) -> str:
    """"7 of 8 functions pass", in the current language."""
    return ngettext("{passed} of {total} functions passes", "{passed} of {total} functions pass",
                    passed).format(passed=passed, total=total)


def function_details(name: str, result: dict) -> list[str]:
    """The lines about one function: its case, problem, hint and the code to try (nothing for
    a plain pass)."""
    if result["status"] == "pass":
        if not result.get("note"):
            return []
        return [_("{name}: pass, with a note").format(name=name),
                *_block(N_("note"), result["note"])]
    lines = [f"{name}: {status_text(result['status'])}"]
    case = result.get("case")
    if case:
        lines += _block(N_("case"), f"{case['label']}: {case['inputs']}")
    lines += _block(N_("problem"), _strip_label(result.get("message", ""), case))
    if result["status"] == "fail":
        lines += _block(N_("expected"), _describe(result.get("expected")))
        lines += _block(N_("got"), _describe(result.get("got")))
    if result.get("error", {}).get("line"):
        lines += _block(N_("line"), f"{result['error']['where']}: {result['error']['line']}")
    if result.get("hint"):
        lines += _block(N_("hint"), result["hint"])
    if result.get("note"):
        lines += _block(N_("note"), result["note"])
    if case:
        lines += _block(N_("try it"), case["code"])
    return lines


def to_html(outcome) -> str:
    """The report as one HTML table (for a notebook); everything from the learner's file is
    escaped."""
    data = to_json(outcome)
    rows = []
    for name, result in data["functions"].items():
        status = result["status"]
        color = "#1a7f37" if status == "pass" else "#b42318"
        detail = "" if status == "pass" else _strip_label(result.get("message") or "",
                                                           result.get("case"))
        if result.get("case") and status != "pass":
            detail = f"{result['case']['label']}: {detail}"
        extra = "".join(
            f"<br><b>{html.escape(_(label))}</b>: {html.escape(str(result[key]))}"
            for key, label in (("hint", N_("hint")), ("note", N_("note"))) if result.get(key))
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td>"
                    f"<td style=\"color:{color}\"><b>{html.escape(status_text(status))}</b></td>"
                    f"<td style=\"text-align:left\">{html.escape(detail)}{extra}</td></tr>")
    warnings = "".join(f"<p>{html.escape(_('warning: {text}').format(text=w))}</p>"
                       for w in data["warnings"])
    summary = summary_text(data["passed"], data["total"]) + "."
    return (f"<div class=\"cnnstep-check\">{warnings}<table><thead><tr>"
            f"<th>{html.escape(_('function'))}</th><th>{html.escape(_('result'))}</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>{html.escape(summary)}</p></div>")


def points_table(points: Mapping[str, Any] | None,
                 functions: tuple[str, ...] = FUNCTIONS) -> dict[str, float]:
    """Points per function: 1 each, then what ``points`` says. ValueError for a name that is
    not one of ``functions`` or points that are not a number >= 0."""
    table = {name: 1.0 for name in functions}
    if points is None:
        return table
    if not isinstance(points, Mapping):
        raise ValueError(f"expected a table of function name -> points, got "
                         f"{type(points).__name__}")
    for name, value in points.items():
        if name not in table:
            raise ValueError(f"{name!r} is not one of the checked functions "
                             f"({', '.join(functions)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or value < 0:
            raise ValueError(f"points for {name} must be a number >= 0, got {value!r}")
        table[name] = float(value)
    return table


def points_score(statuses: Mapping[str, str], points: Mapping[str, float]) -> float:
    """The points of the functions that pass."""
    return float(sum(points[name] for name, status in statuses.items()
                     if status == "pass" and name in points))


def _strip_label(message: str, case: dict | None) -> str:
    if case:
        material = _(" (from the material)")
        for prefix in (f"{case['label']}{material}: ", f"{case['label']}: "):
            if message.startswith(prefix):
                return message[len(prefix):]
    return message
