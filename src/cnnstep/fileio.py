"""Files: writing them so that nothing a user made is lost (atomic replacement), and opening
what a user names for reading only when it is a regular file (a FIFO or a device would block or
never end). Any room may import this module.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from cnnstep.errors import DataError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then move it into place.

    Readers never see a half-written file, and an interrupted write leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file follows the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to an uncompressed ``.npz`` at ``path``, atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def _not_regular(path: str | Path, mode: int) -> DataError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return DataError(f"{path}: not a regular file ({kind})")


def check_regular(path: str | Path) -> None:
    """DataError unless ``path`` is a regular file (after symlinks); FileNotFoundError passes
    through. It only looks (``stat``): nothing is opened, so a FIFO cannot block it."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)


def open_regular(path: str | Path) -> IO[bytes]:
    """Open ``path`` for reading in binary mode, only if it is a regular file.

    The file is opened without blocking and checked on the open descriptor, so a FIFO, a device
    or a file swapped for one after a check is refused (DataError) instead of hanging.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
