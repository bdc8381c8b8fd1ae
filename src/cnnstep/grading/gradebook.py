"""The gradebook files, built from the records: ``gradebook.csv``, ``gradebook.json``,
``feedback/<name>.md`` and ``timings.json``, each written atomically.

``gradebook.json`` holds only what a run decides (verdicts, messages, scores), so that two runs
over the same files write the same bytes; how long each took goes to ``timings.json``. Names
are escaped wherever they are written: CSV cells that a spreadsheet would read as a formula
are quoted, Markdown headings and code fences cannot be broken out of.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.fileio import atomic_write
from cnnstep.grading.record import RECORD_VERSION

_VOLATILE = ("seconds", "reused")


def csv_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it, never as a formula (OWASP's rule: a cell starting
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading quote)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def markdown_text(text: str) -> str:
    """``text`` safe inside Markdown: every character that Markdown or HTML could read as
    markup is escaped, and it stays on one line."""
    text = " ".join(text.split())
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>&~])", r"\\\1", text)


def fence(text: str) -> str:
    """A code block around ``text`` whose fence is longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _statuses(record: dict) -> list[str]:
    if record["status"] != "graded":
        return [record["status"]] * len(FUNCTIONS)
    return [record["functions"][f]["status"] for f in FUNCTIONS]


def write_csv(out: Path, records: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["submission", "score", "max_score", *FUNCTIONS, "reason"])
    for r in records:
        writer.writerow([csv_cell(r["name"]), f"{r['score']:g}", f"{r['max_score']:g}",
                         *_statuses(r), csv_cell(" ".join(str(r.get("reason", "")).split()))])
    atomic_write(out / "gradebook.csv", lambda f: f.write(buf.getvalue().encode("utf-8")))


def write_feedback(out: Path, record: dict) -> None:
    score = _("Score: {score} / {max_score}").format(score=f"{record['score']:g}",
                                                     max_score=f"{record['max_score']:g}")
    text = f"# {markdown_text(record['submission'])}\n\n{score}\n\n{fence(record['report'])}\n"
    atomic_write(out / "feedback" / f"{record['name']}.md",
                 lambda f: f.write(text.encode("utf-8")))


def write_gradebook(out: Path, records: list[dict], points: dict[str, float]) -> None:
    """Every gradebook file for ``records`` (in their order)."""
    write_csv(out, records)
    kept = [{k: v for k, v in r.items() if k not in _VOLATILE} for r in records]
    book = {"version": RECORD_VERSION, "points": points, "submissions": kept}
    atomic_write(out / "gradebook.json",
                 lambda f: f.write(json.dumps(book, indent=2, sort_keys=True).encode("utf-8")))
    timings = {r["name"]: r.get("seconds", 0.0) for r in records}
    atomic_write(out / "timings.json",
                 lambda f: f.write(json.dumps(timings, indent=2).encode("utf-8")))
    for r in records:
        write_feedback(out, r)


def remove_stale_temporaries(out: Path) -> list[str]:
    """Delete what an atomic write killed half-way left behind (``.NAME.XXXX.tmp``) in the
    gradebook's folders; returns their names."""
    removed = []
    for folder in (out, out / "feedback"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if re.fullmatch(r"\..+\.[A-Za-z0-9_]+\.tmp", path.name) and path.is_file() \
                    and not path.is_symlink():
                path.unlink()
                removed.append(path.name)
    return removed
