"""Finding a class's submissions safely, and naming them.

Only regular files are graded. In a folder, a symbolic link is followed only when its target is
a regular file inside the folder that is not itself a submission (a link to another learner's
file, or to a file outside the class folder, is a row that says why, never read); a FIFO, a
device or a socket is never opened. Every name shown is made from the path as given, with what
cannot be printed replaced, and every file name written is sanitised, unique and short.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cnnstep.checker.i18n import gettext as _
from cnnstep.errors import UserError

SUFFIXES = (".py", ".ipynb")
MAX_NAME = 80  # characters in a feedback file's name, before ".md"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass
class Submission:
    """One file to grade: ``path`` to read it by, ``label`` to show it by (printable text),
    and ``problem``: why it is not read at all (None when it is)."""

    path: Path
    label: str
    problem: str | None = None


def printable(text: str) -> str:
    """``text`` with bytes that were not UTF-8 and control characters (terminal escapes,
    bidirectional overrides) replaced by ``?``."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL.sub("?", text).replace("\ufffd", "?")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return _("a FIFO")
    if stat.S_ISSOCK(mode):
        return _("a socket")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return _("a device")
    return _("not a regular file")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(folder: Path) -> list[Path]:
    """The files with a submission's suffix under ``folder``, never following a linked
    folder (no loops), checkpoints left out, sorted."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
        found += [Path(top) / f for f in files if f.endswith(SUFFIXES)]
    return sorted(found)


def _problem(path: Path, root: str | None, regular: set[str]) -> str | None:
    """Why ``path`` must not be read (``root``: the class folder it was found in)."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return _("cannot be read: {why}").format(why=exc.strerror or exc)
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(path)
        if root is not None and not _inside(target, root):
            return _("a symbolic link to a file outside the class folder; not read")
        if target in regular:
            return _("a symbolic link to another submission; not read")
        try:
            info = os.stat(path)
        except OSError as exc:
            return _("a broken symbolic link ({why})").format(why=exc.strerror or exc)
    if not stat.S_ISREG(info.st_mode):
        return _("{kind}, not a regular file; not read").format(kind=_kind(info.st_mode))
    return None


def _matches(spec: str) -> tuple[list[Path], str | None]:
    """The files a path or pattern names, and the folder they must stay inside."""
    if glob.has_magic(spec):
        root = os.path.realpath(spec.split("*")[0].rsplit(os.sep, 1)[0] or ".")
        return [Path(m) for m in sorted(glob.glob(spec, recursive=True))], root
    path = Path(spec)
    if path.is_dir() and not path.is_symlink():
        return _walk(path), os.path.realpath(path)
    if path.exists() or path.is_symlink():
        return [path], None  # a file named on its own: the teacher chose it
    raise UserError(_("{spec}: no such file or folder").format(spec=printable(spec)))


def find_submissions(paths: list[str]) -> list[Submission]:
    """The ``.py`` and ``.ipynb`` files named by ``paths`` (files, folders searched
    recursively, glob patterns), each once, in a stable order; unsafe ones with their
    ``problem``."""
    found: list[tuple[Path, str | None]] = []
    for spec in paths:
        matches, root = _matches(spec)
        if not matches:
            raise UserError(_("{spec}: no file matches").format(spec=printable(spec)))
        found += [(p, root) for p in matches if not (root and p.is_dir())]
    regular = {os.path.realpath(p) for p, _r in found
               if not os.path.islink(p) and os.path.isfile(p)}
    out: dict[str, Submission] = {}
    for path, root in found:
        problem = _problem(path, root, regular)
        key = os.path.realpath(path) if problem is None else str(path)
        out.setdefault(key, Submission(path, printable(str(path)), problem))
    return list(out.values())


def submission_name(label: str, taken: set[str]) -> str:
    """A file-name-safe, unique name of at most :data:`MAX_NAME` characters for a submission
    (its last three path parts, separators as ``__``); a shortened or changed name ends with a
    digest of the label, so that two labels never share a name."""
    parts = Path(label).parts[-3:]
    base = _UNSAFE.sub("_", "__".join(parts)).strip("._") or "file"
    if len(base) > MAX_NAME or base != "__".join(parts):
        digest = hashlib.sha256(label.encode("utf-8", "replace")).hexdigest()[:8]
        base = f"{base[:MAX_NAME - 9].rstrip('._')}-{digest}"
    name, k = base, 2
    while name.lower() in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name.lower())
    return name


def defines_functions(data: bytes, notebook: bool, names: set[str]) -> bool:
    """Whether source (or a notebook's code cells) defines one of ``names`` with ``def``;
    nothing is run (a regular expression on the text, so that a file that does not parse still
    counts as the learner's)."""
    text = data.decode("utf-8", "replace")
    pattern = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(", re.M)
    if notebook:
        text = text.replace("\\n", "\n").replace('\\"', '"')
    return any(name in names for name in pattern.findall(text))
