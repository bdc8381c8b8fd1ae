"""Grade a whole class: every submission through the same sandbox as ``cnnstep check``.

:func:`grade` finds the submissions, checks each one (in parallel, each in its own sandboxed
child), scores it with the points per function, and writes the gradebook (CSV and JSON), one
Markdown feedback file per submission and, for Gradescope, ``results.json``. A submission whose
content and settings were already graded into the same folder is not run again. A submission that
cannot be read is a row with status ``unreadable`` and the reason; it never ends the run.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import importlib
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cnnstep.checker.i18n import check_language, current_language, language
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.checker.reports.report import (
    format_table,
    points_score,
    points_table,
    status_text,
    summary_text,
    to_json,
)
from cnnstep.errors import UserError
from cnnstep.fileio import atomic_write

SUFFIXES = (".py", ".ipynb")
#: Version of the graded records; a change makes earlier gradebooks be graded again.
RECORD_VERSION = 1


def find_submissions(paths: Sequence[str]) -> list[Path]:
    """The ``.py`` and ``.ipynb`` files named by ``paths``: files, folders (searched
    recursively) and glob patterns, each file once, in a stable order."""
    found: list[Path] = []
    for spec in paths:
        matches = [Path(m) for m in sorted(glob.glob(spec, recursive=True))] \
            if glob.has_magic(spec) else [Path(spec)]
        if not matches:
            raise UserError(f"{spec}: no file matches")
        for path in matches:
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES
                                and p.is_file() and ".ipynb_checkpoints" not in p.parts)
            elif path.exists() or path.is_symlink():
                found.append(path)
            else:
                raise UserError(f"{spec}: no such file or folder")
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(str(path.resolve()) if path.exists() else str(path), path)
    return list(unique.values())


def load_points(path: str | Path | None) -> dict[str, float]:
    """Points per function from a JSON or TOML file (function name -> points); 1 each without
    a file. Unknown names, negative or non-numeric points are a :class:`UserError`."""
    if path is None:
        return points_table(None)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--points {path}: cannot be read ({exc})") from None
    try:
        if path.suffix.lower() == ".toml":
            try:  # the standard library's TOML reader, Python 3.11 and newer
                tomllib: Any = importlib.import_module("tomllib")
            except ImportError:
                raise UserError(f"--points {path}: TOML needs Python 3.11 or newer; "
                                "write the points as JSON") from None
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--points {path}: not valid {path.suffix.lstrip('.') or 'JSON'} "
                        f"({exc})") from None
    try:
        return points_table(data)
    except ValueError as exc:
        raise UserError(f"--points {path}: {exc}") from None


def submission_name(path: Path, taken: set[str]) -> str:
    """A file-name-safe, unique name for a submission (its path, separators as ``__``)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(path.parts[-3:])).strip("._") or "file"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def _digest(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read(64 << 20)).hexdigest()
    except OSError:
        return None


def grade_one(path: Path, settings: dict, points: dict[str, float],
              check: Callable[..., Any]) -> dict:
    """Check one submission and score it; returns its gradebook record."""
    record: dict[str, Any] = {"submission": str(path), "sha256": _digest(path),
                              "settings": settings, "max_score": sum(points.values())}
    with language(settings.get("lang")):
        try:
            outcome = check(path, timeout=settings["timeout"], isolation=settings["isolation"])
        except UserError as exc:  # unreadable, unparsable, not a regular file, ...
            record.update(status="unreadable", reason=str(exc), score=0.0, functions={},
                          report=_("{path}: cannot be graded: {why}").format(path=path, why=exc))
            return record
        data = to_json(outcome)
        record.update(data)
        record["status"] = "graded"
        record["score"] = points_score(_statuses(data["functions"]), points)
        record["report"] = format_table(outcome)
    return record


def write_gradebook(out: Path, records: list[dict], points: dict[str, float]) -> None:
    """``gradebook.csv``, ``gradebook.json`` and ``feedback/<name>.md``, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["submission", "score", "max_score", *FUNCTIONS])
    for r in records:
        statuses = [r.get("functions", {}).get(f, {}).get("status", r["status"])
                    if r["status"] == "graded" else "unreadable" for f in FUNCTIONS]
        writer.writerow([r["name"], f"{r['score']:g}", f"{r['max_score']:g}", *statuses])
    atomic_write(out / "gradebook.csv", lambda f: f.write(buf.getvalue().encode("utf-8")))
    book = {"version": RECORD_VERSION, "points": points, "submissions": records}
    atomic_write(out / "gradebook.json",
                 lambda f: f.write(json.dumps(book, indent=2).encode("utf-8")))
    for r in records:
        score = _("Score: {score} / {max_score}").format(score=f"{r['score']:g}",
                                                         max_score=f"{r['max_score']:g}")
        text = f"# {r['submission']}\n\n{score}\n\n```\n{r['report']}\n```\n"
        _write_text(out / "feedback" / f"{r['name']}.md", text)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def gradescope_results(record: dict, points: dict[str, float]) -> dict:
    """One submission's record in the Gradescope autograder's ``results.json`` form."""
    tests = []
    for name in FUNCTIONS:
        result = record.get("functions", {}).get(name, {})
        status = result.get("status", "unreadable")
        lines = [f"{name}: {status_text(status)}"]
        case = result.get("case")
        if isinstance(case, dict):
            lines.append(_("case: {case}").format(case=f"{case.get('label')}: "
                                                       f"{case.get('inputs')}"))
        for key, label in (("message", _("problem: {text}")), ("hint", _("hint: {text}")),
                           ("note", _("note: {text}"))):
            if result.get(key):
                lines.append(label.format(text=result[key]))
        if record["status"] != "graded":
            lines.append(str(record.get("reason", "")))
        passed = status == "pass"
        tests.append({"name": name, "score": points[name] if passed else 0.0,
                      "max_score": points[name], "status": "passed" if passed else "failed",
                      "output": "\n".join(lines), "visibility": "visible"})
    return {"score": record["score"], "tests": tests,
            "output": "cnnstep check: " + summary_text(record.get("passed", 0), len(FUNCTIONS))}


def grade(paths: Sequence[str], out: str | Path, *, points: dict[str, float] | None = None,
          timeout: float = 10.0, isolation: str = "auto", jobs: int = 1, force: bool = False,
          gradescope: bool = False, progress: bool = False,
          check: Callable[..., Any] | None = None, scheduler: str | None = None,
          lang: str | None = None) -> list[dict]:
    """Grade every submission in ``paths`` into the folder ``out``; returns the records.

    Parameters
    ----------
    paths : sequence of str
        Files, folders (searched recursively for .py and .ipynb) or glob patterns.
    out : str or Path
        Where the gradebook, the feedback files and ``results.json`` go.
    points : dict, optional
        Points per function (see :func:`load_points`); 1 each by default.
    timeout, isolation
        As for :func:`cnnstep.checker.check_file`.
    jobs : int
        Submissions checked at once (each in its own sandboxed child process).
    force : bool
        Grade again submissions already graded with the same content and settings.
    gradescope : bool
        Also write ``results.json`` (Gradescope grades one submission per run).
    progress : bool
        A progress bar (tqdm) on stderr.
    check : callable, optional
        The checker (default :func:`cnnstep.checker.check_file`).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``): one task per submission,
        each checked on a worker in the same sandbox. The workers need cnnstep installed and
        read the submissions from the same paths (a shared file system).
    lang : {"en", "es"} or None
        The language of the feedback, the reports and the messages in the gradebook (None:
        from the locale). Keys and status words stay English.
    """
    if check is None:
        from cnnstep.checker import check_file

        check = check_file
    checker: Callable[..., Any] = check
    points = points or load_points(None)
    submissions = find_submissions(paths)
    if not submissions:
        raise UserError(f"no .py or .ipynb submission found in {', '.join(paths)}")
    if gradescope and len(submissions) != 1:
        raise UserError(f"--format gradescope grades one submission per run, got "
                        f"{len(submissions)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    lang = check_language(lang) if lang is not None else current_language()
    settings = {"timeout": timeout, "isolation": isolation, "version": RECORD_VERSION,
                "lang": lang}
    records = _reused(submissions, _previous(out, force), settings, points)
    todo = [i for i, r in enumerate(records) if r is None]
    _grade_todo(records, todo, submissions, settings, points, checker, jobs, progress, scheduler)
    taken: set[str] = set()
    names = [submission_name(p, taken) for p in submissions]
    final = []
    for name, maybe in zip(names, records):
        assert maybe is not None
        record = maybe
        record["name"] = name
        if record["status"] == "graded":  # points may have changed since it was graded
            record["score"] = points_score(_statuses(record["functions"]), points)
        final.append(record)
    with language(lang):
        write_gradebook(out, final, points)
    if gradescope:
        with language(lang):
            data = gradescope_results(final[0], points)
        atomic_write(out / "results.json",
                     lambda f: f.write(json.dumps(data, indent=2).encode("utf-8")))
    return final


def _reused(submissions: list[Path], previous: dict[str, dict], settings: dict,
            points: dict[str, float]) -> list[dict | None]:
    """The earlier record of each submission graded with the same content and settings."""
    records: list[dict | None] = []
    for path in submissions:
        old = previous.get(str(path))
        reusable = old is not None and old.get("settings") == settings \
            and old.get("sha256") == _digest(path) and old.get("sha256") is not None
        records.append(dict(old, max_score=sum(points.values())) if reusable and old else None)
    return records


def _grade_todo(records: list[dict | None], todo: list[int], submissions: list[Path],
                settings: dict, points: dict[str, float], checker: Callable[..., Any],
                jobs: int, progress: bool, scheduler: str | None) -> None:
    if scheduler is not None:
        for i, done in zip(todo, _on_dask(scheduler, [submissions[i] for i in todo],
                                          settings, points, checker)):
            records[i] = done
        return
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {i: pool.submit(grade_one, submissions[i], settings, points, checker)
                   for i in todo}
        for i, future in _progress(futures.items(), len(todo), progress):
            records[i] = future.result()


def _on_dask(address: str, paths: list[Path], settings: dict, points: dict[str, float],
             check: Callable[..., Any]) -> list[dict]:
    """:func:`grade_one` for each path as one task on the Dask cluster at ``address``."""
    try:
        from distributed import Client
    except ImportError:
        raise UserError("--scheduler needs Dask: pip install 'cnnstep[dask]'") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise UserError(f"--scheduler {address}: cannot connect ({exc})") from None
    try:
        futures = client.map(grade_one, [p.resolve() for p in paths], settings=settings,
                             points=points, check=check, pure=False)
        records = client.gather(futures)
    finally:
        client.close()
    for path, record in zip(paths, records):
        record["submission"] = str(path)  # as given here, not as resolved for the workers
    return list(records)


def _statuses(functions: dict[str, dict]) -> dict[str, str]:
    return {name: str(result.get("status")) for name, result in functions.items()}


def _previous(out: Path, force: bool) -> dict[str, dict]:
    """Records of an earlier run into ``out`` by submission path (none with ``force``)."""
    book = out / "gradebook.json"
    if force or not book.is_file():
        return {}
    try:
        data = json.loads(book.read_text(encoding="utf-8"))
        return {r["submission"]: r for r in data["submissions"]
                if isinstance(r, dict) and "submission" in r}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # an unreadable gradebook is rebuilt, not trusted


def _progress(items: Iterable[Any], total: int, show: bool) -> Iterable[Any]:
    if not show:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, unit="submission", disable=None, leave=False)
