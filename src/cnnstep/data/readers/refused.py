"""Files that look like data but are not a data set cnnstep reads: archives and single ``.npy``
arrays. Sniffing one raises a DataError that says what to do instead."""

from __future__ import annotations

from pathlib import Path

from cnnstep.data.readers.npz import ZIP_SIGNATURES
from cnnstep.data.readers.registry import Reader, register
from cnnstep.errors import DataError

_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
_NPY_SIGNATURE = b"\x93NUMPY"


def _sniff(path: Path, head: bytes) -> Path | None:
    if path.is_dir():
        return None
    if head.startswith(ZIP_SIGNATURES) or path.suffix.lower() in _ARCHIVE_SUFFIXES:
        raise DataError(
            f"{path}: an archive, not a data set; unpack it and point to the folder inside"
        )
    if head.startswith(_NPY_SIGNATURE):
        raise DataError(
            f"{path}: a single .npy array; save x_train, y_train (and x_test, y_test) together "
            "with numpy.savez into an .npz file"
        )
    return None


def _load(path: Path, test_path: Path | None, options: object) -> None:  # pragma: no cover
    raise DataError(f"{path}: not a data set")  # _sniff raises first; never reached


register(
    Reader(
        name="refused",
        description="(archives and single .npy files are refused)",
        sniff=_sniff,
        load=_load,  # type: ignore[arg-type]
        order=90,
        listed=False,
    )
)
