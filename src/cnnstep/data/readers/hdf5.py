"""Course-style HDF5 files: ``train_set_x``, ``train_set_y``, ``list_classes``, with the test
part (``test_set_x``, ``test_set_y``) in the same file or a separate one. Needs h5py.

Only data stored inside the file is read: external storage, external links and virtual data
sets (which make h5py read other files) are refused, and every data set's declared shape is
checked against the memory budget before it is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.budget import check_shape
from cnnstep.data.readers.common import Part, array_loader, reason, stored_part
from cnnstep.data.readers.registry import Reader, register
from cnnstep.errors import DataError, UserError

__all__ = ["HDF5_SIGNATURE", "HDF5_SUFFIXES", "read_hdf5"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# What h5py raises for a damaged file or a data set it cannot convert (TypeError: a stored type
# with no NumPy equivalent). Only library calls are wrapped, so a bug here is not hidden.
_H5_ERRORS = (OSError, ValueError, RuntimeError, TypeError, KeyError)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError("reading HDF5 files needs h5py: pip install 'cnnstep[hdf5]'") from exc
    return h5py


def read_hdf5(
    path: Path, *, want_train: bool | None, want_test: bool
) -> tuple[Part | None, Part | None, list[str]]:
    """The train and test parts of a course-style HDF5 file and its ``list_classes``."""
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except _H5_ERRORS as exc:
        text = reason(exc)
        what = "truncated HDF5 file" if "truncated" in text else "not a readable HDF5 file"
        raise DataError(f"{path}: {what} ({text})") from exc
    with f:
        train = (_part(f, path, "train", required=want_train is True)
                 if want_train is not False else None)
        test = _part(f, path, "test", required=want_train is False) if want_test else None
        names = _classes(f, path)
    return train, test, names


def _keys(f: Any, path: Path) -> list[str]:
    try:
        return sorted(f.keys())
    except _H5_ERRORS as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({reason(exc)})") from exc


def _dataset(f: Any, path: Path, key: str) -> Any:
    """The data set ``key``, refusing links to other files, groups and non-local storage."""
    h5py = _h5py()
    try:
        link = f.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise DataError(
                f"{path}: {key} is a link to another file ({link.filename}); cnnstep reads only "
                "data stored inside the file"
            )
        obj = f[key]
        if obj.file.filename != f.filename:  # reached through a chain of links
            raise DataError(
                f"{path}: {key} leads to another file ({obj.file.filename}); cnnstep reads only "
                "data stored inside the file"
            )
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{path}: {key} is an HDF5 group, expected a data set (an array)")
        if obj.is_virtual or obj.id.get_create_plist().get_external_count() > 0:
            raise DataError(
                f"{path}: {key} keeps its data in other files (external or virtual storage); "
                "cnnstep reads only data stored inside the file"
            )
        shape, itemsize = obj.shape, obj.dtype.itemsize
    except DataError:
        raise
    except _H5_ERRORS as exc:
        raise DataError(f"{path}: {key} cannot be read ({reason(exc)})") from exc
    if shape is None:
        raise DataError(f"{path}: {key} is an empty HDF5 data set (no shape)")
    check_shape(shape, itemsize, f"{path}:{key}")
    return obj


def _array(f: Any, path: Path, key: str) -> np.ndarray:
    obj = _dataset(f, path, key)
    try:
        return np.asarray(obj[()])
    except _H5_ERRORS as exc:
        raise DataError(
            f"{path}: {key} cannot be read, the file is truncated or corrupt ({reason(exc)})"
        ) from exc


def _part(f: Any, path: Path, part: str, required: bool = True) -> Part | None:
    x_key, y_key = f"{part}_set_x", f"{part}_set_y"
    keys = _keys(f, path)
    present = [k for k in (x_key, y_key) if k in keys]
    if len(present) < 2:
        if not present and not required:
            return None
        found = ", ".join(keys) or "nothing"
        missing = " and ".join(k for k in (x_key, y_key) if k not in keys)
        raise DataError(f"{path}: no {missing} in this HDF5 file (it holds: {found})")
    y = _array(f, path, y_key)
    return stored_part(path, x_key, y_key, _array(f, path, x_key), y)


def _classes(f: Any, path: Path) -> list[str]:
    if "list_classes" not in _keys(f, path):
        return []
    raw = _array(f, path, "list_classes")
    if raw.ndim > 2 or raw.dtype.kind not in "OSUiu":
        raise DataError(
            f"{path}: list_classes must be a 1-D array of strings, got dtype {raw.dtype} and "
            f"shape {raw.shape}"
        )
    names = []
    for v in raw.reshape(-1).tolist():
        if isinstance(v, bytes):
            names.append(v.decode("utf-8", "replace"))
        elif isinstance(v, (str, int)):
            names.append(str(v))
        else:
            raise DataError(f"{path}: list_classes holds {type(v).__name__}, expected strings")
    return names


def _sniff(path: Path, head: bytes) -> Path | None:
    if path.is_dir():
        return None
    if head.startswith(HDF5_SIGNATURE) or path.suffix.lower() in HDF5_SUFFIXES:
        return path
    return None


register(
    Reader(
        name="hdf5",
        description="an HDF5 file",
        sniff=_sniff,
        load=array_loader(read_hdf5, "list_classes"),
        class_key="list_classes",
        order=20,
    )
)
