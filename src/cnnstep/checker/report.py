"""Turn the checker's results into a readable table or one JSON object."""

from __future__ import annotations

import textwrap

from cnnstep.checker.cases import FUNCTIONS
from cnnstep.checker.i18n import N_, ngettext
from cnnstep.checker.i18n import gettext as _

_WIDTH = 100

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
    for name in FUNCTIONS:
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
        "total": len(FUNCTIONS),
        "warnings": list(outcome.warnings),
        "skipped_statements": outcome.skipped_statements,
        "isolation": getattr(outcome, "isolation", "process"),
    }


def _describe(summary: dict | None) -> str:
    if not summary:
        return "-"
    kind = summary.get("type")
    if kind == "ndarray":
        text = _("array of shape {shape}, {dtype}").format(shape=tuple(summary["shape"]),
                                                           dtype=summary["dtype"])
        if "values" in summary and len(summary["shape"]) <= 2:
            text += f": {summary['values']}"
        return text
    if kind == "exception":
        return _("an exception ({type})").format(type=summary["exception"])
    if "value" in summary:
        return f"{summary['value']!r} ({kind})"
    if kind in ("tuple", "list"):
        return ngettext("a {type} of {n} item", "a {type} of {n} items",
                        summary["length"]).format(type=kind, n=summary["length"])
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
    lines = [f"cnnstep check: {data['file']}"]
    for warning in data["warnings"]:
        lines += textwrap.wrap(_("warning: {text}").format(text=warning), _WIDTH,
                               subsequent_indent="  ")
    lines.append("")
    function, result_word = _("function"), _("result")
    lines.append(f"  {function:<25} {result_word}")
    for name, result in data["functions"].items():
        lines.append(f"  {name:<25} {status_text(result['status']):<10} "
                     f"{_short(result)}".rstrip())
    lines.append("")
    lines.append(ngettext("{passed} of {total} function passes.",
                          "{passed} of {total} functions pass.", data["total"]).format(
        passed=data["passed"], total=data["total"]))
    for name, result in data["functions"].items():
        if result["status"] == "pass":
            if result.get("note"):
                lines.append("")
                lines.append(_("{name}: pass, with a note").format(name=name))
                lines += _block(N_("note"), result["note"])
            continue
        lines.append("")
        lines.append(f"{name}: {status_text(result['status'])}")
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
    return "\n".join(lines)


def _strip_label(message: str, case: dict | None) -> str:
    if case:
        material = _(" (from the material)")
        for prefix in (f"{case['label']}{material}: ", f"{case['label']}: "):
            if message.startswith(prefix):
                return message[len(prefix):]
    return message
