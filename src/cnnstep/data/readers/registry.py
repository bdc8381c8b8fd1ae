"""The registry of data readers: each format module registers one :class:`Reader` saying its
name, how it recognises a path (``sniff``), where class names live in it and how to load it.

Reader modules are found by name: every public module of this package is imported the first
time the registry is asked, so adding a format is one new module (plus its test).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnstep.data.dataset import Dataset
from cnnstep.data.readers.common import LoadOptions, read_head
from cnnstep.errors import DataError

__all__ = ["Reader", "detect", "readers", "register"]

_NOT_READERS = {"common", "registry"}


@dataclass(frozen=True)
class Reader:
    """One data format.

    Attributes
    ----------
    name : str
        Short name (``"idx"``, ``"hdf5"``, ``"npz"``, ``"images"``).
    description : str
        What it is, for messages: ``"an HDF5 file"``.
    sniff : callable
        ``sniff(path, head) -> Path | None``: the path this reader reads when it recognises
        ``path`` (a folder for an IDX file), else None. ``head`` is the first 8 bytes of a
        file (``b""`` for a folder).
    load : callable
        ``load(path, test_path, options) -> Dataset``; every failure a DataError.
    class_key : str
        Where the file keeps class names (``"list_classes"``), ``""`` when it has none.
    order : int
        Readers are asked in increasing order; the first that recognises a path wins.
    listed : bool
        Whether the "unknown data format" message names it as a format cnnstep reads.
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], Path | None]
    load: Callable[[Path, Path | None, LoadOptions], Dataset]
    class_key: str = ""
    order: int = 50
    listed: bool = True


_READERS: dict[str, Reader] = {}
_discovered = False


def register(reader: Reader) -> Reader:
    """Add ``reader`` to the registry (a second reader of the same name is a bug)."""
    if reader.name in _READERS and _READERS[reader.name] != reader:
        raise ValueError(f"a data reader named {reader.name!r} is already registered")
    _READERS[reader.name] = reader
    return reader


def readers() -> list[Reader]:
    """Every registered reader, in the order they are asked."""
    global _discovered
    if not _discovered:
        package = importlib.import_module("cnnstep.data.readers")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name not in _NOT_READERS:
                importlib.import_module(f"cnnstep.data.readers.{info.name}")
        _discovered = True
    return sorted(_READERS.values(), key=lambda r: (r.order, r.name))


def detect(path: Path) -> tuple[Reader, Path]:
    """The reader of the data at ``path`` and the path it reads; DataError naming the path."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    head = b"" if path.is_dir() else read_head(path, 8)
    for reader in readers():
        found = reader.sniff(path, head)
        if found is not None:
            return reader, found
    known = ", ".join(r.description for r in readers() if r.listed)
    raise DataError(f"{path}: unknown data format; expected {known}")
