"""Grade a whole class: every submission through the same sandbox as ``cnnstep check``.

:func:`grade` finds the submissions (:mod:`~cnnstep.grading.submissions`), checks each one (in
parallel, each in its own sandboxed child, or on a Dask cluster), scores it with the points per
function, appends its record to ``DIR/gradebook.jsonl`` as soon as it is graded
(:mod:`~cnnstep.grading.record`), and writes the gradebook files from the records
(:mod:`~cnnstep.grading.gradebook`). A submission already graded with the same content, key and
signature is not run again. One submission never ends the run: whatever goes wrong on its row is
that row's ``unreadable`` or ``error``, with the reason. Ctrl-C (or SIGTERM, as the CLI sets it)
stops every check within a fraction of a second, kills every child, writes the gradebook of what
is done and raises KeyboardInterrupt: the next run grades only the rest.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from cnnstep.checker import STOP
from cnnstep.checker.i18n import check_language, current_language, language
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.reports.report import points_score, points_table
from cnnstep.errors import UserError
from cnnstep.grading import gradescope as gs
from cnnstep.grading.classreport import write_class_report
from cnnstep.grading.gradebook import remove_stale_temporaries, write_gradebook
from cnnstep.grading.record import Journal, grading_key
from cnnstep.grading.single import digest, grade_one, statuses
from cnnstep.grading.submissions import Submission, find_submissions, submission_name


def load_points(path: str | Path | None) -> dict[str, float]:
    """Points per function from a JSON or TOML file (function name -> points); 1 each without
    a file. Unknown names, negative or non-numeric points are a :class:`UserError`."""
    if path is None:
        return points_table(None)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(_("--points {path}: cannot be read ({why})").format(
            path=path, why=exc)) from None
    try:
        data: Any = importlib.import_module("tomllib").loads(text) \
            if path.suffix.lower() == ".toml" else json.loads(text)
    except ValueError as exc:
        raise UserError(_("--points {path}: not valid {kind} ({why})").format(
            path=path, kind=path.suffix.lstrip(".").upper() or "JSON", why=exc)) from None
    try:
        return points_table(data)
    except ValueError as exc:
        raise UserError(f"--points {path}: {exc}") from None


def _unreadable(sub: Submission, points: dict[str, float]) -> dict:
    reason = sub.problem or ""
    return {"submission": sub.label, "status": "unreadable", "reason": reason, "functions": {},
            "score": 0.0, "max_score": sum(points.values()), "seconds": 0.0,
            "report": _("{path}: cannot be graded: {why}").format(path=sub.label, why=reason)}


class _Run:
    """One grading run's state: the records so far, in the submissions' order."""

    def __init__(self, subs: list[Submission], journal: Journal, points: dict[str, float]):
        self.subs = subs
        self.journal = journal
        self.points = points
        self.records: list[dict | None] = [None] * len(subs)
        self.shas: list[str | None] = [None] * len(subs)
        self.reused = 0

    def plan(self, force: bool) -> list[int]:
        """Fill in what needs no check; the indices left to grade."""
        previous = {} if force else self.journal.load()
        todo = []
        for i, sub in enumerate(self.subs):
            if sub.problem is not None:
                self.records[i] = _unreadable(sub, self.points)
                continue
            self.shas[i] = digest(sub.path)
            old = previous.get((sub.label, self.shas[i] or ""))
            if old is not None:
                self.records[i] = dict(old, reused=True)
                self.reused += 1
            else:
                todo.append(i)
        return todo

    def done(self, i: int, record: dict) -> None:
        self.records[i] = record
        self.journal.append(record, self.shas[i])

    def finished(self) -> list[dict]:
        """The records graded (or reused) so far, named and scored with today's points."""
        taken: set[str] = set()
        out = []
        for sub, record in zip(self.subs, self.records):
            name = submission_name(sub.label, taken)
            if record is None:
                continue
            record = dict(record, name=name, max_score=sum(self.points.values()))
            if record["status"] == "graded":
                record["score"] = points_score(statuses(record["functions"]), self.points)
            out.append(record)
        return out


def _local(run: _Run, todo: list[int], settings: dict, check: Callable[..., Any], jobs: int,
           progress: bool) -> None:
    bar = _progress_bar(len(todo), progress)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures: dict[Future, int] = {}
    try:
        for i in todo:
            sub = run.subs[i]
            futures[pool.submit(grade_one, sub.path, sub.label, settings, run.points,
                                check)] = i
        pending = set(futures)
        while pending:
            # Short waits: the main thread must see Ctrl-C at once.
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                run.done(futures[future], future.result())
                bar.update(1)
    except BaseException:
        STOP.set()  # every running check stops at its next look at its child
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # nothing queued is left to start
        bar.close()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, show: bool) -> Any:
    if not show:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="submission", disable=None, leave=False)


def grade(paths: Sequence[str], out: str | Path, *, points: dict[str, float] | None = None,
          timeout: float = 10.0, isolation: str = "auto", jobs: int = 1, force: bool = False,
          gradescope: bool = False, progress: bool = False,
          check: Callable[..., Any] | None = None, scheduler: str | None = None,
          lang: str | None = None) -> list[dict]:
    """Grade every submission in ``paths`` into the folder ``out``; returns the records.

    Parameters
    ----------
    paths : sequence of str
        Files, folders (searched recursively for .py and .ipynb) or glob patterns. With
        ``gradescope``: one submission folder as Gradescope gives it.
    out : str or Path
        Where the gradebook, the feedback files and ``results.json`` go.
    points : dict, optional
        Points per function (see :func:`load_points`); 1 each by default.
    timeout, isolation
        As for :func:`cnnstep.checker.check_file`.
    jobs : int
        Submissions checked at once (each in its own sandboxed child process).
    force : bool
        Grade again submissions already graded with the same content and key.
    gradescope : bool
        Also write ``results.json``: the file of the folder that defines the functions is
        graded; none or several give 0 with the reason (see :mod:`cnnstep.grading.gradescope`).
    progress : bool
        A progress bar (tqdm) on stderr.
    check : callable, optional
        The checker (default :func:`cnnstep.checker.check_file`).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``): one task per submission,
        each checked on a worker in the same sandbox (see :mod:`cnnstep.grading.cluster`).
    lang : {"en", "es"} or None
        The language of the feedback, the reports and the messages in the gradebook (None:
        from the locale). Keys and status words stay English.

    Returns
    -------
    list of dict
        One record per submission graded or reused, in the submissions' order; ``reused`` is
        True on those taken from an earlier run.
    """
    lang = check_language(lang) if lang is not None else current_language()
    with language(lang):
        return _grade(list(paths), Path(out), points or load_points(None), timeout, isolation,
                      jobs, force, gradescope, progress, check, scheduler, lang)


def _grade(paths: list[str], out: Path, points: dict[str, float], timeout: float,
           isolation: str, jobs: int, force: bool, gradescope: bool, progress: bool,
           check: Callable[..., Any] | None, scheduler: str | None, lang: str) -> list[dict]:
    if check is None:
        from cnnstep.checker import check_file

        check = check_file
    if out.exists() and not out.is_dir():
        raise UserError(_("--out {out}: exists and is not a folder").format(out=out))
    found_none = ""
    try:
        subs = find_submissions(paths)
    except UserError as exc:
        if not gradescope:
            raise
        subs, found_none = [], str(exc)
    if gradescope:
        chosen, why = gs.pick_submission(subs)
        why = why if subs else f"{found_none}: {why}"
        if chosen is None:
            out.mkdir(parents=True, exist_ok=True)
            gs.write_results(out, gs.refused(why, points))
            return []
        subs = [chosen]
    if not subs:
        raise UserError(_("no .py or .ipynb submission found in {paths}").format(
            paths=", ".join(paths)))
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    settings = {"timeout": float(timeout), "isolation": isolation, "lang": lang}
    run = _Run(subs, Journal(out, grading_key(settings, points)), points)
    todo = run.plan(force)
    STOP.clear()
    try:
        if scheduler is not None:
            from cnnstep.grading.cluster import grade_on_dask

            grade_on_dask(scheduler, run, todo, settings, check)
        else:
            _local(run, todo, settings, check, jobs, progress)
    finally:
        records = run.finished()
        write_gradebook(out, records, points)
        write_class_report(out, lang)
        STOP.clear()
    if gradescope:
        gs.write_results(out, gs.results(records[0], points))
    return records
