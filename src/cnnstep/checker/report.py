"""Turn the checker's results into a readable table or one JSON object."""

from __future__ import annotations

import textwrap

from cnnstep.checker.cases import FUNCTIONS

_WIDTH = 100


def to_json(outcome) -> dict:
    """``{"file", "functions": {NAME: {...}}, "passed", "total", "warnings", ...}``.

    Every function entry has ``status``, ``case``, ``expected``, ``got``, ``hint`` (``None``
    where they do not apply) and ``message``; more keys when they say something (``diff``,
    ``error``, ``note``, ``defined_as``, ``helper``, ``cases_passed``/``cases_total``).
    """
    functions = {}
    for name in FUNCTIONS:
        result = dict(outcome.results.get(name, {"status": "error",
                                                 "message": "not checked"}))
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
        text = f"array of shape {tuple(summary['shape'])}, {summary['dtype']}"
        if "values" in summary and len(summary["shape"]) <= 2:
            text += f": {summary['values']}"
        return text
    if kind == "exception":
        return f"an exception ({summary['exception']})"
    if "value" in summary:
        return f"{summary['value']!r} ({kind})"
    if kind in ("tuple", "list"):
        return f"a {kind} of {summary['length']} items"
    return "None" if kind == "None" else f"a {kind}"


def _short(result: dict) -> str:
    status = result["status"]
    if status == "pass":
        text = ""
        if result.get("defined_as"):
            text = f"(as {result['defined_as']})"
        if result.get("note"):
            text = (text + " " if text else "") + "note below"
        return text
    if status == "error" and "error" in result:
        err = result["error"]
        where = f" at {err['where']}" if err.get("where") else ""
        return f"{err['type']}{where}"
    if status == "fail" and result.get("case"):
        return f"wrong on: {result['case']['label']}"
    return result.get("message", "")


def _block(label: str, text: str) -> list[str]:
    indent = " " * 12
    lines = []
    for i, para in enumerate(text.split("\n")):
        wrapped = textwrap.wrap(para, _WIDTH - len(indent)) or [""]
        for j, piece in enumerate(wrapped):
            prefix = f"  {label:<9} " if i == 0 and j == 0 else indent
            lines.append(prefix + piece)
    return lines


def format_table(outcome) -> str:
    """One line per function, then the details of each that did not pass."""
    data = to_json(outcome)
    lines = [f"cnnstep check: {data['file']}"]
    for warning in data["warnings"]:
        lines += textwrap.wrap(f"warning: {warning}", _WIDTH, subsequent_indent="  ")
    lines.append("")
    lines.append(f"  {'function':<25} result")
    for name, result in data["functions"].items():
        lines.append(f"  {name:<25} {result['status']:<8} {_short(result)}".rstrip())
    lines.append("")
    lines.append(f"{data['passed']} of {data['total']} functions pass.")
    for name, result in data["functions"].items():
        if result["status"] == "pass":
            if result.get("note"):
                lines.append("")
                lines.append(f"{name}: pass, with a note")
                lines += _block("note", result["note"])
            continue
        lines.append("")
        lines.append(f"{name}: {result['status']}")
        case = result.get("case")
        if case:
            lines += _block("case", f"{case['label']}: {case['inputs']}")
        lines += _block("problem", _strip_label(result.get("message", ""), case))
        if result["status"] == "fail":
            lines += _block("expected", _describe(result.get("expected")))
            lines += _block("got", _describe(result.get("got")))
        if result.get("error", {}).get("line"):
            lines += _block("line", f"{result['error']['where']}: {result['error']['line']}")
        if result.get("hint"):
            lines += _block("hint", result["hint"])
        if result.get("note"):
            lines += _block("note", result["note"])
        if case:
            lines += _block("try it", case["code"])
    return "\n".join(lines)


def _strip_label(message: str, case: dict | None) -> str:
    if case:
        for prefix in (f"{case['label']} (from the material): ", f"{case['label']}: "):
            if message.startswith(prefix):
                return message[len(prefix):]
    return message
