"""One submission: check it, score it, and describe what happened as a gradebook record."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnstep.checker import Cancelled
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.i18n import language
from cnnstep.checker.reports.report import format_table, points_score, to_json
from cnnstep.errors import DataError, UserError
from cnnstep.fileio import open_regular

_MAX_DIGEST = 64 << 20


def digest(path: Path) -> str | None:
    """The SHA-256 of a regular file (never opening a FIFO or a device), or None."""
    try:
        with open_regular(path) as f:
            return hashlib.sha256(f.read(_MAX_DIGEST)).hexdigest()
    except (OSError, DataError):
        return None


def grade_one(path: Path, label: str, settings: dict, points: dict[str, float],
              check: Callable[..., Any]) -> dict:
    """Check one submission and score it; returns its record. Never raises for the
    submission's sake: a failure on this row is the row's ``error``."""
    record: dict[str, Any] = {"submission": label, "functions": {}, "score": 0.0,
                              "max_score": sum(points.values())}
    start = time.monotonic()
    with language(settings.get("lang")):
        try:
            outcome = check(path, timeout=settings["timeout"], isolation=settings["isolation"])
            outcome.path = label  # as given, wherever it was read
            record.update(to_json(outcome), status="graded", submission=label)
            record["score"] = points_score(statuses(record["functions"]), points)
            record["report"] = format_table(outcome)
        except UserError as exc:  # unreadable, unparsable, not a regular file, ...
            reason = str(exc)
            record.update(status="unreadable", reason=reason, functions={},
                          report=_("{path}: cannot be graded: {why}").format(path=label,
                                                                            why=reason))
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - one row's failure never ends the run
            reason = _("the checker failed on this submission ({why})").format(
                why=f"{type(exc).__name__}: {exc}"[:300])
            record.update(status="error", reason=reason, functions={},
                          report=f"{label}: {reason}")
    record.pop("file", None)
    record["seconds"] = round(time.monotonic() - start, 3)
    return record


def statuses(functions: dict[str, dict]) -> dict[str, str]:
    return {name: str(result.get("status")) for name, result in functions.items()}


