"""IDX folders (the MNIST / Fashion-MNIST / KMNIST layout): ``train-images-idx3-ubyte`` and
``train-labels-idx1-ubyte``, optionally the ``t10k-…`` pair, plain or ``.gz``.

Declared dimensions are multiplied as Python ints (no int64 overflow) and checked against the
memory budget before anything is allocated; a ``.gz`` is never inflated beyond what its header
declares.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.budget import check_shape
from cnnstep.data.readers.common import (
    CHUNK_BYTES,
    Part,
    array_loader,
    check_counts,
    labels_from,
    reason,
)
from cnnstep.data.readers.registry import Reader, register
from cnnstep.errors import DataError

__all__ = ["idx_files", "read_idx", "read_idx_folder"]

# IDX type codes (third byte of the magic number) and the big-endian dtype each one stores.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# train-images-idx3-ubyte, t10k-labels.idx1-ubyte.gz, emnist-letters-train-images-idx3-ubyte, ...
_IDX_NAME = re.compile(
    r"^(?P<prefix>.*?)(?P<part>train|t10k|test)[-.](?P<kind>images|labels)"
    r"[-.]idx\d[-.]ubyte(?P<gz>\.gz)?$",
    re.IGNORECASE,
)
# What gzip and the file system raise for bytes that are not a gzip stream or a cut-off one.
_READ_ERRORS = (OSError, EOFError, zlib.error)


def idx_files(folder: Path) -> dict[str, dict[tuple[str, str], Path]]:
    """IDX files in ``folder`` grouped by name prefix, keyed by (part, kind) with part in
    {"train", "test"} and kind in {"images", "labels"}; plain files win over ``.gz``."""
    groups: dict[str, dict[tuple[str, str], Path]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({reason(exc)})") from exc
    for entry in entries:
        match = _IDX_NAME.match(entry.name)
        if not match or not entry.is_file():
            continue
        part = "train" if match["part"].lower() == "train" else "test"
        key = (part, match["kind"].lower())
        group = groups.setdefault(match["prefix"], {})
        if key not in group or group[key].suffix.lower() == ".gz":
            group[key] = entry
    return groups


def read_idx_folder(
    folder: Path, *, want_train: bool | None, want_test: bool
) -> tuple[Part | None, Part | None, list[str]]:
    """The train and test parts of an IDX folder (None where not wanted; ``want_train`` None:
    if present); no class names."""
    groups = idx_files(folder)
    if not groups:
        raise DataError(f"{folder}: no IDX files (like t10k-images-idx3-ubyte) in this folder")
    if len(groups) > 1:
        names = ", ".join(repr(p or "(none)") for p in sorted(groups))
        raise DataError(
            f"{folder}: IDX files of several data sets (name prefixes {names}); "
            "keep one data set per folder"
        )
    files = next(iter(groups.values()))
    parts: dict[str, Part | None] = {"train": None, "test": None}
    for part, stem, wanted in (("train", "train", want_train), ("test", "t10k", want_test)):
        images, labels = files.get((part, "images")), files.get((part, "labels"))
        if images is None and labels is None:
            if wanted and (part == "train" or want_train is False):
                raise DataError(
                    f"{folder}: no {stem}-images-idx3-ubyte / {stem}-labels-idx1-ubyte files"
                )
            continue
        if images is None or labels is None:
            missing = f"{stem}-{'images-idx3' if images is None else 'labels-idx1'}-ubyte[.gz]"
            present = images if images is not None else labels
            assert present is not None
            raise DataError(f"{folder}: found {present.name} but not {missing}")
        if wanted is False:
            continue
        y = labels_from(read_idx(labels), str(labels), "labels")
        x = read_idx(images)
        if x.shape[0] != y.shape[0]:
            raise DataError(
                f"{images}: {x.shape[0]} images but {labels.name} has {y.shape[0]} labels"
            )
        check_counts(x, y, str(images))
        parts[part] = Part(x, y, str(images), str(labels))
    return parts["train"], parts["test"], []


def read_idx(path: Path) -> np.ndarray:
    """The array in one IDX file (plain or gzip), read straight into its final buffer.

    Parameters
    ----------
    path : Path
        An IDX file; ``.gz`` is decompressed on the fly, never past the declared size.

    Returns
    -------
    ndarray of the shape and dtype the header declares
    """
    gz = path.suffix.lower() == ".gz"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            dtype, dims = _read_header(f, path)
            shown = "x".join(map(str, dims))
            n_bytes = check_shape(dims, dtype.itemsize, f"{path}: IDX header ({shown})")
            if not gz:
                on_disk = os.fstat(f.fileno()).st_size - 4 - 4 * len(dims)
                if on_disk != n_bytes:
                    raise DataError(
                        f"{path}: {'truncated' if on_disk < n_bytes else 'corrupt'} IDX file "
                        f"(header says {shown} values = {n_bytes} bytes, file holds {on_disk})"
                    )
            buf = np.empty(n_bytes, dtype=np.uint8)
            got = _read_into(f, buf)
            if got < n_bytes:
                raise DataError(
                    f"{path}: truncated IDX file (header says {shown} values = {n_bytes} bytes, "
                    f"file holds {got})"
                )
            if f.read(1):
                raise DataError(
                    f"{path}: corrupt IDX file (data goes on past the size in its header)"
                )
    except _READ_ERRORS as exc:
        what = "gzip file" if gz else "file"
        raise DataError(f"{path}: truncated or corrupt {what} ({reason(exc)})") from exc
    return buf.view(dtype).reshape(dims)


def _read_header(f: Any, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    head = _read_exact(f, 4)
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, no header)")
    if head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES or head[3] == 0:
        raise DataError(
            f"{path}: not an IDX file (magic number 0x{head.hex()} is not "
            "0x0000TTNN with a known type TT and NN dimensions)"
        )
    ndim = head[3]
    raw_dims = _read_exact(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX file (header cut short)")
    dims = tuple(int.from_bytes(raw_dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype: np.dtype = _IDX_DTYPES[head[2]]
    return dtype, dims


def _read_exact(f: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        more = f.read(n - len(out))
        if not more:
            break
        out += more
    return out


def _read_into(f: Any, buf: np.ndarray) -> int:
    view = memoryview(buf)  # type: ignore[arg-type]
    pos = 0
    while pos < buf.size:
        n = f.readinto(view[pos : pos + CHUNK_BYTES])
        if not n:
            break
        pos += n
    return pos


def _sniff(path: Path, head: bytes) -> Path | None:
    if path.is_dir():
        return path if idx_files(path) else None
    return path.parent if _IDX_NAME.match(path.name) else None


register(
    Reader(
        name="idx",
        description="an IDX folder (MNIST layout)",
        sniff=_sniff,
        load=array_loader(read_idx_folder, ""),
        class_key="",
        order=10,
    )
)
