"""Read a learner's file safely: a regular file under a size cap (never a FIFO, a device or a
directory), and a notebook's list of cells from its JSON (nothing in it is run)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cnnstep.checker.i18n import gettext as _
from cnnstep.errors import UserError


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (never a FIFO or a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UserError(_("cannot read {path}: {why}").format(path=repr(str(path)),
                                                             why=exc.strerror or exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(_("FILE {path} is a directory; expected a .py file or a "
                              "notebook").format(path=repr(str(path))))
        if not stat.S_ISREG(info.st_mode):
            raise UserError(_("FILE {path} is not a regular file").format(path=repr(str(path))))
        if info.st_size > limit:
            raise UserError(_("FILE {path} is {size} bytes; at most {limit} are read").format(
                path=repr(str(path)), size=info.st_size, limit=limit))
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UserError(_("FILE {path} is over {limit} bytes").format(path=repr(str(path)),
                                                                         limit=limit))
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(_("cannot read {path}: {why}").format(path=repr(str(path)),
                                                             why=exc.strerror or exc)) from None
    finally:
        os.close(fd)


def notebook_cells(path: Path, data: bytes) -> list:
    bad = _("{path} is not a readable Jupyter notebook").format(path=repr(str(path)))
    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UserError(f"{bad}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(notebook, dict):
        raise UserError(bad + _(": not a JSON object"))
    if "worksheets" in notebook and "cells" not in notebook:  # nbformat 3
        try:
            import nbformat

            notebook = nbformat.reads(data.decode("utf-8-sig"), as_version=4)
        except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds
            raise UserError(f"{bad}: {str(exc)[:200]}") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise UserError(bad + _(": no list of cells"))
    return cells
