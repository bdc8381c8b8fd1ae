"""The output folder of a training job: chosen so that no earlier run is overwritten, and held
by one job at a time.

The lock is ``fcntl.flock`` on ``DIR/.cnnstep-train.lock``: the system releases it when the
process ends, however it ends (a killed run leaves the file, never a stuck lock), and the file
is opened close-on-exec, so worker processes do not hold it. A second job for the same folder
is refused, or, when the folder was the default one, takes the next numbered folder. Where
``fcntl`` does not exist (Windows) folders are not locked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

from cnnstep.errors import UserError

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
METRICS = "metrics.json"
LOCK = ".cnnstep-train.lock"


class FolderLock:
    """An exclusive lock on an output folder, released by :meth:`release` or at exit."""

    def __init__(self, folder: Path, handle: IO[bytes] | None) -> None:
        self.folder = folder
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file releases the flock
            self.handle = None


def try_lock(folder: Path) -> FolderLock | None:
    """Lock ``folder`` (created if need be); None if another job holds it.

    Raises
    ------
    UserError
        The folder cannot be created or written.
    """
    prepare(folder)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return FolderLock(folder, None)
    handle = open(folder / LOCK, "ab")  # noqa: SIM115 - held until release()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n".encode())
    handle.flush()
    return FolderLock(folder, handle)


def holds_run(folder: Path) -> str | None:
    """The name of the first run file in ``folder`` (model, checkpoint, metrics), else None."""
    for name in (MODEL, CHECKPOINT, METRICS):
        if (folder / name).exists():
            return name
    return None


def prepare(out: Path) -> None:
    """Create ``out`` and prove it writable before training."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def remove_stale(out: Path) -> None:
    """Remove temporary files of a save that was killed (``.model.npz.*.tmp``); only the
    folder's lock holder may, so never those of a save in progress."""
    for name in (MODEL, CHECKPOINT, METRICS):
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _busy(out: Path) -> UserError:
    return UserError(f"--out {out}: another cnnstep train is writing there now; wait for it "
                     "to end or choose another --out")


def claim_folder(out: str | None, default: Path, *, resume: bool,
                 overwrite: bool) -> FolderLock:
    """The output folder of a job, locked: never one holding an earlier run unless ``resume``
    or ``overwrite``.

    With ``out`` None the folder is ``default``, or ``default-2``, ``default-3``, ... when it
    holds a run or another job has it; with ``resume``, the newest numbered folder that holds a
    checkpoint.

    Raises
    ------
    UserError
        ``out`` holds a run (without ``resume`` or ``overwrite``), another job holds it, or it
        cannot be written.
    """
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; give one")
    if out is not None:
        folder = Path(out)
        found = holds_run(folder) if folder.is_dir() else None
        if found and not (resume or overwrite):
            raise UserError(
                f"--out {folder} already holds a run ({found}); continue it with --resume, "
                "replace it with --overwrite, or choose another --out")
        return _locked(folder)
    taken = [default] + [default.with_name(f"{default.name}-{k}") for k in range(2, 10_000)]
    if resume or overwrite:
        with_ckpt = [p for p in taken[:1000] if (p / CHECKPOINT).is_file()] if resume else []
        return _locked(with_ckpt[-1] if with_ckpt else default)
    for candidate in taken:
        if candidate.is_dir() and holds_run(candidate):
            continue
        lock = try_lock(candidate)
        if lock is not None and not holds_run(candidate):
            return lock
        if lock is not None:  # a job finished there between the two looks
            lock.release()
    raise UserError(f"{default}: 10000 earlier runs; pass --out")  # pragma: no cover


def _locked(folder: Path) -> FolderLock:
    lock = try_lock(folder)
    if lock is None:
        raise _busy(folder)
    return lock
