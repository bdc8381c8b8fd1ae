"""Gradescope: a submission folder as Gradescope gives it, its ``results.json``, and the
``autograder.zip`` (``setup.sh`` and ``run_autograder``) that Gradescope runs.

Gradescope's autograder runs ``run_autograder`` in ``/autograder`` with the learner's files in
``/autograder/submission`` and reads ``/autograder/results/results.json`` (``score``, ``output``
and one entry per test, here per function, with ``score``, ``max_score``, ``status``, ``name``,
``output`` and ``visibility``). A results.json is always written: when the folder holds no file
that defines the functions, or several, it gives 0 with a message that says why.
"""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from pathlib import Path

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.checker.judging.judge import all_names
from cnnstep.checker.reports.report import status_text, summary_text
from cnnstep.checker.source.files import read_regular_file
from cnnstep.checker.source.loader import MAX_NOTEBOOK_BYTES
from cnnstep.errors import UserError
from cnnstep.fileio import atomic_write
from cnnstep.grading.submissions import Submission, defines_functions

_NAMES = set(all_names())


def pick_submission(found: list[Submission]) -> tuple[Submission | None, str]:
    """The one file that defines the functions, or None and why not (none, or several)."""
    candidates = []
    for sub in found:
        if sub.problem is not None:
            continue
        try:
            data = read_regular_file(sub.path, MAX_NOTEBOOK_BYTES)
        except UserError:
            continue
        if defines_functions(data, sub.path.suffix == ".ipynb", _NAMES):
            candidates.append(sub)
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, _("no .py or .ipynb file in the submission defines the functions "
                       "(zero_pad, ..., pool_backward); submit the notebook or the .py file "
                       "in which you wrote them")
    names = ", ".join(c.label for c in candidates)
    return None, _("several files in the submission define the functions ({names}): submit "
                   "only the one to grade").format(names=names)


def results(record: dict, points: dict[str, float]) -> dict:
    """One submission's record in the form of Gradescope's ``results.json``."""
    tests = []
    for name in FUNCTIONS:
        result = record.get("functions", {}).get(name, {})
        status = result.get("status", record["status"])
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
    output = "cnnstep check: " + summary_text(record.get("passed", 0), len(FUNCTIONS))
    if record["status"] != "graded":
        output += "\n" + str(record.get("reason", ""))
    return {"score": record["score"], "output": output, "tests": tests}


def write_results(out: Path, data: dict) -> None:
    atomic_write(out / "results.json",
                 lambda f: f.write(json.dumps(data, indent=2).encode("utf-8")))


def refused(reason: str, points: dict[str, float]) -> dict:
    """A results.json that gives 0, saying why nothing was graded."""
    record = {"status": "unreadable", "reason": reason, "score": 0.0, "functions": {}}
    return results(record, points)


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv bubblewrap
python3 -m venv /opt/cnnstep
/opt/cnnstep/bin/pip install --upgrade pip
/opt/cnnstep/bin/pip install {install}
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each submission, in /autograder.
mkdir -p /autograder/results
/opt/cnnstep/bin/cnnstep grade --format gradescope /autograder/submission \\
    --out /autograder/results {options} || true
if [ ! -s /autograder/results/results.json ]; then
  echo '{{"score": 0, "output": "{failed}"}}' > /autograder/results/results.json
fi
"""


def autograder_zip(path: Path, points: dict[str, float], timeout: float, lang: str,
                   wheel: Path | None = None) -> list[str]:
    """Write Gradescope's ``autograder.zip``: ``setup.sh``, ``run_autograder``, the points and,
    when given, the cnnstep wheel to install; returns the names in it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pinned = f"cnnstep=={version('cnnstep')}"
    except PackageNotFoundError:
        pinned = "cnnstep"
    install = f"/autograder/source/{wheel.name}" if wheel else pinned
    options = (f"--points /autograder/source/points.json --timeout {timeout:g} "
               f"--lang {shlex.quote(lang)}")
    failed = _("the autograder could not run cnnstep; ask your teacher").replace('"', "'")
    files = {"setup.sh": SETUP_SH.format(install=shlex.quote(install)),
             "run_autograder": RUN_AUTOGRADER.format(options=options, failed=failed),
             "points.json": json.dumps(points, indent=2) + "\n"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16  # executable scripts
            archive.writestr(info, text)
        if wheel is not None:
            archive.write(wheel, wheel.name)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return list(files) + ([wheel.name] if wheel else [])
