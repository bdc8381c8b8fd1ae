"""``.npz`` archives (``numpy.savez``) with ``x_train``, ``y_train`` and optionally ``x_test``,
``y_test`` and ``class_names``.

The zip is read member by member, only the members needed: each member's uncompressed size and
its ``.npy`` header's declared array size are checked against the memory budget (and against
each other) before anything is allocated or inflated. Nothing is ever unpickled.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.lib.format as npy_format

from cnnstep.budget import check_bytes, check_shape
from cnnstep.data.readers.common import (
    CHUNK_BYTES,
    Part,
    array_loader,
    read_head,
    reason,
    stored_part,
)
from cnnstep.data.readers.registry import Reader, register
from cnnstep.errors import DataError

__all__ = ["ZIP_SIGNATURES", "read_npy_member", "read_npz"]

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# zipfile and zlib for damaged archives (NotImplementedError: unknown compression method,
# RuntimeError: encrypted member), numpy.lib.format (ValueError) for a malformed .npy header.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError)


def read_npz(
    path: Path, *, want_train: bool, want_test: bool
) -> tuple[Part | None, Part | None, list[str]]:
    """The train and test parts of an ``.npz`` data set and its ``class_names``."""
    if not read_head(path, 4).startswith(ZIP_SIGNATURES):
        raise DataError(f"{path}: not an .npz file (not a zip archive as numpy.savez writes)")
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise DataError(f"{path}: truncated or corrupt .npz file ({reason(exc)})") from exc
    with archive:
        members = {
            (i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
            for i in archive.infolist()
        }
        train = _part(archive, members, path, "train") if want_train else None
        test = (
            _part(archive, members, path, "test", required=not want_train) if want_test else None
        )
        names = (
            read_npy_member(archive, members["class_names"], path)
            if "class_names" in members
            else None
        )
    class_names: list[str] = []
    if names is not None:
        if names.dtype.kind not in "USiu" or names.ndim != 1:
            raise DataError(
                f"{path}: class_names must be a 1-D array of strings, got dtype {names.dtype} "
                f"and shape {names.shape}"
            )
        class_names = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in names.tolist()
        ]
    return train, test, class_names


def read_npy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member of ``archive``, its sizes checked before it is allocated or inflated.

    Parameters
    ----------
    archive : zipfile.ZipFile
    info : zipfile.ZipInfo
        The member.
    path : Path
        The archive's path, for messages.

    Returns
    -------
    ndarray of the declared shape and dtype
    """
    where = f"{path}:{info.filename}"
    if not info.filename.endswith(".npy"):
        raise DataError(f"{where}: not an .npy array (numpy.savez stores every array as .npy)")
    check_bytes(info.file_size, f"{where} (uncompressed size in the zip directory)")
    try:
        with archive.open(info) as fp:  # a ZipExtFile: reads stop at file_size
            shape, fortran, dtype = _header(fp, where)
            if dtype.hasobject:
                raise DataError(
                    f"{where}: stored as Python objects and would need pickle to load, which "
                    "cnnstep refuses; save it as a numeric array"
                )
            n_bytes = check_shape(shape, dtype.itemsize, where)
            start = fp.tell()
            if start + n_bytes != info.file_size:
                raise DataError(
                    f"{where}: {'truncated' if start + n_bytes > info.file_size else 'corrupt'} "
                    f"(header declares {n_bytes} bytes of data, the member holds "
                    f"{info.file_size - start})"
                )
            buf = np.empty(n_bytes, dtype=np.uint8)
            view = memoryview(buf)  # type: ignore[arg-type]
            pos = 0
            while pos < n_bytes:
                got = _readinto(fp, view[pos : pos + CHUNK_BYTES])
                if not got:
                    raise DataError(f"{where}: truncated (data ends after {pos} bytes)")
                pos += got
    except DataError:
        raise
    except _ZIP_ERRORS as exc:
        raise DataError(f"{where}: cannot be read, truncated or corrupt ({reason(exc)})") from exc
    flat = buf.view(dtype) if dtype.itemsize else np.empty(0, dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


def _readinto(fp: Any, view: memoryview) -> int:
    return int(fp.readinto(view) or 0)


def _header(fp: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(fp)
    else:
        raise DataError(f"{where}: .npy format version {version} is not supported (1.0 or 2.0)")
    return tuple(int(d) for d in shape), bool(fortran), np.dtype(dtype)


def _part(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    path: Path,
    part: str,
    required: bool = True,
) -> Part | None:
    x_key, y_key = f"x_{part}", f"y_{part}"
    if x_key not in members or y_key not in members:
        if x_key not in members and y_key not in members and not required:
            return None
        missing = " and ".join(k for k in (x_key, y_key) if k not in members)
        found = ", ".join(sorted(members)) or "nothing"
        raise DataError(f"{path}: no {missing} in this .npz (it holds: {found})")
    y = read_npy_member(archive, members[y_key], path)
    x = read_npy_member(archive, members[x_key], path)
    return stored_part(path, x_key, y_key, x, y)


def _sniff(path: Path, head: bytes) -> Path | None:
    return path if not path.is_dir() and path.suffix.lower() == ".npz" else None


register(
    Reader(
        name="npz",
        description="an .npz file",
        sniff=_sniff,
        load=array_loader(read_npz, "class_names"),
        class_key="class_names",
        order=30,
    )
)
