"""The class report: ``DIR/report.html`` (one self-contained page: no script, no network) and
``DIR/report.md``, built from the gradebook alone, in the teacher's language.

It shows the scores' histogram, for each function the share of submissions that pass, fail,
raise an error, run out of time, lack it or could not be read, the most common slips (the
checker's hints, with the line numbers taken out) with how many made them and who, and the
slowest submissions (from ``timings.json``, when there).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.checker.reports.report import status_text
from cnnstep.errors import UserError
from cnnstep.fileio import atomic_write
from cnnstep.grading.gradebook import markdown_text
from cnnstep.grading.record import valid_record

COLUMNS = ("pass", "fail", "error", "timeout", "missing", "unreadable")
TOP_SLIPS = 12
SHOWN_NAMES = 8


def slip_text(hint: str) -> str:
    """A hint without what differs between learners (line and cell numbers), so that the same
    slip made by two learners counts once."""
    text = re.sub(r"\s*\((?:cell \d+, )?line \d+\)", "", hint)
    text = re.sub(r"\b(?:celda|cell) \d+", "cell N", text)
    return re.sub(r"\b(?:línea|line) \d+", "line N", text)[:400]


def summarize(records: list[dict], timings: dict[str, float]) -> dict:
    """What the report shows, as data."""
    rates: dict[str, Counter] = {f: Counter() for f in FUNCTIONS}
    slips: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in records:
        for f in FUNCTIONS:
            result = r["functions"].get(f, {}) if r["status"] == "graded" else {}
            status = result.get("status", "unreadable")
            rates[f][status] += 1
            if status != "pass" and result.get("hint"):
                slips[(f, slip_text(result["hint"]))].append(r["name"])
    common = sorted(slips.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP_SLIPS]
    slowest = sorted(((t, n) for n, t in timings.items()
                      if isinstance(t, int | float) and t > 0), reverse=True)[:5]
    return {"count": len(records), "scores": [r["score"] for r in records],
            "max_score": max((r["max_score"] for r in records), default=0.0),
            "rates": rates, "slips": common, "slowest": slowest}


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}%" if total else "-"


def _histogram(scores: list[float], top: float) -> list[tuple[str, int]]:
    bins = max(1, min(10, int(top) or 1))
    edges = [top * k / bins for k in range(bins + 1)]
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(bins * s / top)) if top else 0] += 1
    return [(f"{edges[k]:g}-{edges[k + 1]:g}", counts[k]) for k in range(bins)]


def _titles() -> dict[str, str]:
    return {"title": _("Class report"), "scores": _("Scores"), "functions": _("Functions"),
            "slips": _("Most common slips"), "slowest": _("Slowest submissions"),
            "score": _("score"), "submissions": _("submissions"), "function": _("function")}


def to_markdown(data: dict) -> str:
    t = _titles()
    lines = [f"# {t['title']}", "",
             _("{n} submissions; mean score {mean} of {top}").format(
                 n=data["count"], top=f"{data['max_score']:g}",
                 mean=f"{sum(data['scores']) / max(1, data['count']):.2f}"), "",
             f"## {t['scores']}", "", f"| {t['score']} | {t['submissions']} |", "|---|---|"]
    lines += [f"| {label} | {n} |" for label, n in _histogram(data["scores"],
                                                              data["max_score"])]
    lines += ["", f"## {t['functions']}", "",
              "| " + " | ".join([t["function"]] + [status_text(c) for c in COLUMNS]) + " |",
              "|" + "---|" * (len(COLUMNS) + 1)]
    for f, counts in data["rates"].items():
        lines.append("| " + " | ".join([f] + [_share(counts[c], data["count"])
                                              for c in COLUMNS]) + " |")
    lines += ["", f"## {t['slips']}", ""]
    for (f, text), names in data["slips"]:
        shown = ", ".join(markdown_text(n) for n in names[:SHOWN_NAMES])
        more = _(" and {n} more").format(n=len(names) - SHOWN_NAMES) \
            if len(names) > SHOWN_NAMES else ""
        lines.append(f"- **{f}** ({len(names)}): {markdown_text(text)} ({shown}{more})")
    if data["slowest"]:
        lines += ["", f"## {t['slowest']}", ""]
        lines += [f"- {markdown_text(n)}: {t:.1f} s" for t, n in data["slowest"]]
    return "\n".join(lines) + "\n"


_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
          "text-align:right}th:first-child,td:first-child{text-align:left}"
          ".bar{fill:#4a7ab5}")


def _svg(histogram: list[tuple[str, int]]) -> str:
    top = max((n for _l, n in histogram), default=0) or 1
    width = 40
    parts = [f'<svg role="img" width="{width * len(histogram) + 10}" height="150" '
             'xmlns="http://www.w3.org/2000/svg">']
    for k, (label, n) in enumerate(histogram):
        h = 110 * n / top
        parts.append(f'<rect class="bar" x="{k * width + 5}" y="{120 - h:.1f}" '
                     f'width="{width - 6}" height="{h:.1f}"><title>{html.escape(label)}: {n}'
                     f'</title></rect><text x="{k * width + 8}" y="140" font-size="9">'
                     f'{html.escape(label)}</text>')
    return "".join(parts) + "</svg>"


def to_html(data: dict, lang: str) -> str:
    e = html.escape
    t = {k: e(v) for k, v in _titles().items()}
    rows = "".join("<tr><td>" + e(f) + "</td>" + "".join(
        f"<td>{_share(counts[c], data['count'])}</td>" for c in COLUMNS) + "</tr>"
        for f, counts in data["rates"].items())
    head = "".join(f"<th>{e(status_text(c))}</th>" for c in COLUMNS)
    slips = "".join(
        f"<li><b>{e(f)}</b> ({len(names)}): {e(text)} <small>("
        + e(", ".join(names[:SHOWN_NAMES])) + (e(_(" and {n} more").format(
            n=len(names) - SHOWN_NAMES)) if len(names) > SHOWN_NAMES else "") + ")</small></li>"
        for (f, text), names in data["slips"])
    slow = "".join(f"<li>{e(n)}: {t:.1f} s</li>" for t, n in data["slowest"])
    mean = f"{sum(data['scores']) / max(1, data['count']):.2f}"
    return (f'<!DOCTYPE html><html lang="{e(lang)}"><head><meta charset="utf-8">'
            f"<title>{t['title']}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{t['title']}</h1><p>"
            + e(_("{n} submissions; mean score {mean} of {top}").format(
                n=data["count"], mean=mean, top=f"{data['max_score']:g}"))
            + f"</p><h2>{t['scores']}</h2>{_svg(_histogram(data['scores'], data['max_score']))}"
            f"<h2>{t['functions']}</h2><table id=\"functions\"><tr><th>{t['function']}"
            f"</th>{head}</tr>{rows}</table><h2>{t['slips']}</h2>"
            f'<ul id="slips">{slips}</ul>'
            + (f"<h2>{t['slowest']}</h2><ul id=\"slowest\">{slow}</ul>"
               if slow else "") + "</body></html>\n")


def read_gradebook(out: Path) -> tuple[list[dict], dict[str, float]]:
    """The valid records of ``DIR/gradebook.json`` and ``DIR/timings.json``'s seconds."""
    try:
        book: Any = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(_("{path}: no readable gradebook ({why})").format(
            path=out / "gradebook.json", why=exc)) from None
    records = book.get("submissions") if isinstance(book, dict) else None
    if not isinstance(records, list):
        raise UserError(_("{path}: not a cnnstep gradebook").format(path=out / "gradebook.json"))
    kept = [r for r in records if valid_record(r) and isinstance(r.get("name"), str)
            and isinstance(r.get("score"), int | float)
            and isinstance(r.get("max_score"), int | float)]
    try:
        timings = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        timings = {}
    return kept, timings if isinstance(timings, dict) else {}


def write_class_report(out: Path, lang: str) -> tuple[Path, Path]:
    """``DIR/report.html`` and ``DIR/report.md`` from the gradebook in ``DIR``."""
    records, timings = read_gradebook(out)
    data = summarize(records, timings)
    page, text = to_html(data, lang), to_markdown(data)
    atomic_write(out / "report.html", lambda f: f.write(page.encode("utf-8")))
    atomic_write(out / "report.md", lambda f: f.write(text.encode("utf-8")))
    return out / "report.html", out / "report.md"
