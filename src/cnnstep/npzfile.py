"""Reading ``.npz`` archives member by member, never past what they declare, never unpickling.

``numpy.load`` inflates a member in full before anyone can look at its size, and lists members
that are not ``.npy`` arrays as if they were. Here each member's uncompressed size (from the zip
directory) and its ``.npy`` header's array size are checked against the memory budget
(:mod:`cnnstep.budget`) and against each other before a byte is inflated; a member that is not
an ``.npy`` array or holds Python objects is refused. Used by the data reader for ``.npz`` data
sets and by model files and checkpoints.

Top-level module: importable from every folder.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.lib.format as npy_format

from cnnstep.budget import check_bytes, check_shape
from cnnstep.errors import DataError
from cnnstep.fileio import open_regular

__all__ = ["ZIP_SIGNATURES", "NpzArchive", "read_npy_member"]

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_CHUNK = 1 << 20
# zipfile and zlib for damaged archives (NotImplementedError: unknown compression method,
# RuntimeError: encrypted member), numpy.lib.format (ValueError) for a malformed .npy header.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class NpzArchive:
    """An open ``.npz`` file; ``members`` maps array names (without ``.npy``) to zip entries.

    Use as a context manager; :meth:`read` reads one member with every size checked.

    Parameters
    ----------
    path : str or Path
    kind : str
        What the file should be, for messages (``".npz file"``, ``"cnnstep model file"``).
    """

    def __init__(self, path: str | Path, kind: str = ".npz file") -> None:
        self.path = Path(path)
        try:
            with open_regular(self.path) as f:  # a FIFO or device is refused, never waited on
                head = f.read(4)
        except OSError as exc:
            raise DataError(f"{self.path}: cannot be read ({_reason(exc)})") from exc
        if not head.startswith(ZIP_SIGNATURES):
            article = "an" if kind[0] in ".aeiou" else "a"
            raise DataError(
                f"{self.path}: not {article} {kind} (not an .npz: not a zip archive as "
                "numpy.savez writes)"
            )
        try:
            self.zip = zipfile.ZipFile(self.path)
        except ZIP_ERRORS as exc:
            raise DataError(f"{self.path}: truncated or corrupt {kind} ({_reason(exc)})") from exc
        self.members = {
            (i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
            for i in self.zip.infolist()
        }

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def read(self, name: str) -> np.ndarray:
        """The array stored under ``name`` (KeyError-free: DataError when absent)."""
        if name not in self.members:
            raise DataError(f"{self.path}: no {name} in this file")
        return read_npy_member(self.zip, self.members[name], self.path)


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
                got = _readinto(fp, view[pos : pos + _CHUNK])
                if not got:
                    raise DataError(f"{where}: truncated (data ends after {pos} bytes)")
                pos += got
    except DataError:
        raise
    except ZIP_ERRORS as exc:
        raise DataError(f"{where}: cannot be read, truncated or corrupt ({_reason(exc)})") from exc
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
