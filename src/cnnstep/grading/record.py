"""The gradebook's record: ``DIR/gradebook.jsonl``, one line per graded submission, appended as
soon as it is graded (one ``write`` on a file opened for appending, then ``fsync``), so that an
interrupted run keeps every submission it finished and the next run grades only the rest.

A line is reused only when it is valid (:func:`valid_record`: the shape of every field), made
under the same key (:func:`grading_key`: cnnstep's version, a digest of the checker's code and
cases, the points, the language, the limits), for the same content (the file's SHA-256), and
signed by this user (an HMAC with a key kept in the user's cache folder, outside the gradebook):
an edited line, or one written elsewhere, is graded again, never trusted and never an error. A
line cut short by a crash is skipped. The gradebook files are built from this record.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnstep.checker.judging.cases import FUNCTIONS, cases_for

JOURNAL = "gradebook.jsonl"
RECORD_VERSION = 2
STATUSES = {"pass", "fail", "error", "timeout", "missing"}
ROW_STATUSES = {"graded", "unreadable", "error"}
MAX_LINE = 4 * 1024**2


def _checker_digest() -> str:
    """A digest of the checker's code and of every case's inputs: a new hint, case or rule
    grades again."""
    import cnnstep.checker as checker

    digest = hashlib.sha256()
    root = Path(checker.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for name in FUNCTIONS:
        for case in cases_for(name):
            digest.update(f"{name}:{case.title()}:{sorted(case.tags)}".encode())
    return digest.hexdigest()


def grading_key(settings: Mapping[str, Any], points: Mapping[str, float]) -> str:
    """The digest a record is made under: cnnstep's version, the checker, the points and the
    settings (timeout, isolation, language)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("cnnstep")
    except PackageNotFoundError:
        installed = "unknown"
    data = {"cnnstep": installed, "record": RECORD_VERSION, "checker": _checker_digest(),
            "points": dict(sorted(points.items())), "settings": dict(sorted(settings.items()))}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _secret() -> bytes | None:
    """This user's signing key (made once, mode 0600, never seen half-written: it is linked
    into place complete), or None when it cannot be kept."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "cnnstep" / "gradebook.key"
    for _attempt in range(3):
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            if len(data) == 32:
                return data
            path.unlink()  # not a key of ours: records signed with it are graded again
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
            try:
                os.link(tmp, path)  # fails if another process was first: then read theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        except OSError:
            return None
    return None


def _mac(secret: bytes, entry: Mapping[str, Any]) -> str:
    body = json.dumps({k: v for k, v in entry.items() if k != "mac"}, sort_keys=True)
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()


def _strings(value: Any, limit: int = 100_000) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _valid_result(result: Any) -> bool:
    if not isinstance(result, dict) or result.get("status") not in STATUSES:
        return False
    for key in ("message", "hint", "note"):
        if result.get(key) is not None and not _strings(result[key]):
            return False
    return True


def valid_record(record: Any) -> bool:
    """Whether ``record`` has the gradebook record's shape (what every later step reads)."""
    if not isinstance(record, dict) or record.get("status") not in ROW_STATUSES:
        return False
    if not (_strings(record.get("submission"), 4096) and _strings(record.get("report"))):
        return False
    seconds = record.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
            or not math.isfinite(seconds):
        return False
    if record["status"] != "graded":
        return _strings(record.get("reason"), 10_000) and record.get("functions") == {}
    functions = record.get("functions")
    warnings = record.get("warnings", [])
    return isinstance(functions, dict) and set(functions) == set(FUNCTIONS) \
        and all(_valid_result(r) for r in functions.values()) \
        and isinstance(warnings, list) and all(_strings(w, 10_000) for w in warnings)


class Journal:
    """``DIR/gradebook.jsonl``: what was graded, under which key, signed."""

    def __init__(self, out: Path, key: str):
        self.path = out / JOURNAL
        self.key = key
        self.secret = _secret()

    def load(self) -> dict[tuple[str, str], dict]:
        """Valid records made under this key and signed by this user, by (label, SHA-256);
        the last one wins."""
        found: dict[tuple[str, str], dict] = {}
        if self.secret is None or not self.path.is_file() or self.path.is_symlink():
            return found
        with contextlib.suppress(OSError), open(self.path, "rb") as f:
            for raw in f:
                entry = self._entry(raw)
                if entry is not None:
                    found[(entry["record"]["submission"], entry["sha256"])] = entry["record"]
        return found

    def _entry(self, raw: bytes) -> dict | None:
        if len(raw) > MAX_LINE:
            return None
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            return None  # a line cut short by a crash, or not ours
        if not isinstance(entry, dict) or entry.get("key") != self.key or not _strings(
                entry.get("sha256"), 64) or not _strings(entry.get("mac"), 64):
            return None
        assert self.secret is not None
        if not hmac.compare_digest(entry["mac"], _mac(self.secret, entry)):
            return None
        return entry if valid_record(entry.get("record")) else None

    def append(self, record: dict, sha256: str | None) -> None:
        """Add one graded record (not when the file could not be hashed or no key is kept)."""
        if sha256 is None or self.secret is None:
            return
        entry = {"key": self.key, "sha256": sha256, "record": record}
        entry["mac"] = _mac(self.secret, entry)
        line = json.dumps(entry, sort_keys=True).encode() + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                line = b"\n" + line  # after a line a crash cut short
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
