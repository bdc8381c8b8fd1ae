"""``.npz`` archives (``numpy.savez``) with ``x_train``, ``y_train`` and optionally ``x_test``,
``y_test`` and ``class_names``.

Only the members needed are read, each through :mod:`cnnstep.npzfile`: its uncompressed size and
its ``.npy`` header's declared array size are checked against the memory budget (and against
each other) before anything is allocated or inflated. Nothing is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

from cnnstep.data.readers.common import Part, array_loader, stored_part
from cnnstep.data.readers.registry import Reader, register
from cnnstep.errors import DataError
from cnnstep.npzfile import ZIP_SIGNATURES, NpzArchive

__all__ = ["ZIP_SIGNATURES", "read_npz"]


def read_npz(
    path: Path, *, want_train: bool | None, want_test: bool
) -> tuple[Part | None, Part | None, list[str]]:
    """The train and test parts of an ``.npz`` data set and its ``class_names``."""
    with NpzArchive(path) as archive:
        train = (_part(archive, path, "train", required=want_train is True)
                 if want_train is not False else None)
        test = _part(archive, path, "test", required=want_train is False) if want_test else None
        names = archive.read("class_names") if "class_names" in archive.members else None
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


def _part(archive: NpzArchive, path: Path, part: str, required: bool = True) -> Part | None:
    members = archive.members
    x_key, y_key = f"x_{part}", f"y_{part}"
    if x_key not in members or y_key not in members:
        if x_key not in members and y_key not in members and not required:
            return None
        missing = " and ".join(k for k in (x_key, y_key) if k not in members)
        found = ", ".join(sorted(members)) or "nothing"
        raise DataError(f"{path}: no {missing} in this .npz (it holds: {found})")
    y = archive.read(y_key)
    x = archive.read(x_key)
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
