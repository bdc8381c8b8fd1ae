"""Loading a user's data set from a path: IDX folders, course HDF5 files, image folders, .npz.

:func:`load_path` looks at what is at the path and picks the reader:

- a folder holding ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (and optionally the
  ``t10k-…`` pair), plain or ``.gz`` — the MNIST / Fashion-MNIST / KMNIST layout;
- an HDF5 file (``.h5``) in the course layout: ``train_set_x``, ``train_set_y``, ``list_classes``,
  with the test part (``test_set_x``, ``test_set_y``) in the same file or in ``test_path``;
- a folder with one sub-folder per class (``root/<class>/*.png``), optionally split into
  ``root/train/<class>`` and ``root/test/<class>``;
- an ``.npz`` archive with ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test`` and
  ``class_names``.

Every way a file can be broken ends in :class:`~cnnstep.errors.DataError` with a one-line message
naming the file. Problems that do not stop loading (a stray text file in an image folder) are
reported with :func:`warnings.warn` as a :class:`DataWarning`.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnstep.data.dataset import Dataset, stratified_split
from cnnstep.data.images import IMAGE_SUFFIXES, load_image
from cnnstep.errors import DataError, UserError

__all__ = ["DataWarning", "load_path"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_SIGNATURE = b"\x93NUMPY"
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")

# IDX type codes (third byte of the magic number) and the big-endian dtype each one stores.
_IDX_DTYPES = {
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
_TEST_FOLDER_NAMES = ("test", "val", "valid", "validation")
_GRAY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "F")
_LARGE_SIDE = 256  # pixels; above this a CNN in NumPy trains slowly, so say so
_CHUNK_BYTES = 1 << 20  # read and convert in 1 MiB pieces so no second full copy is made


# What parsers of a damaged file raise besides OSError: zipfile, gzip, zlib, h5py and Pillow use
# all of these for bytes that do not make sense, so each becomes a DataError naming the file.
_PARSER_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    RuntimeError,  # includes NotImplementedError (zipfile: unknown compression method)
    OverflowError,
    MemoryError,
    SyntaxError,  # Pillow, for some malformed headers
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
)


class DataWarning(UserWarning):
    """Something in a data set was skipped or guessed; loading went on."""


@dataclass
class _Part:
    """Pixels and labels as stored in a file, before scaling and splitting."""

    x: np.ndarray  # (m, n_H, n_W) or (m, n_H, n_W, n_C), any numeric dtype
    y: np.ndarray  # (m,) int64
    source: str  # where the pixels came from, for messages
    label_source: str  # where the labels came from


def load_path(
    path: str | os.PathLike,
    *,
    test_path: str | os.PathLike | None = None,
    image_size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load the data set at ``path``, detecting its format from what is there.

    Parameters
    ----------
    path : str or PathLike
        An IDX folder (MNIST layout), a course-style HDF5 file, a folder of class sub-folders of
        images, or an ``.npz`` archive; a path to one IDX file means its folder.
    test_path : str or PathLike, optional
        A separate test set in the same format as ``path``: an HDF5 file with ``test_set_x`` /
        ``test_set_y``, an IDX folder with the ``t10k-…`` files, an image folder, or an ``.npz``
        with ``x_test`` / ``y_test``. It replaces any test part inside ``path``.
    image_size : (n_H, n_W), optional
        Size every image of an image folder is resized to; the most common size when omitted.
        Array formats (IDX, HDF5, npz) are not resized and must already have this size.
    test_fraction : float
        Fraction of each class held out for testing when the data has no test part, in (0, 1).
    seed : int
        Seed of that stratified split.

    Returns
    -------
    Dataset
        ``x_train`` of shape (m_train, n_H, n_W, n_C) and ``x_test`` of shape
        (m_test, n_H, n_W, n_C), float32 in [0, 1] (grayscale has n_C = 1); int64 labels;
        ``class_names`` from the file or folder names when it has them.

    Raises
    ------
    DataError
        The path is missing, empty, truncated, corrupt, inconsistent or of no known format; the
        one-line message names the file and what is wrong.
    """
    path = Path(path).expanduser()
    test = Path(test_path).expanduser() if test_path is not None else None
    if image_size is not None:
        image_size = _check_image_size(image_size)
    try:
        fraction_ok = 0.0 < float(test_fraction) < 1.0 and not isinstance(test_fraction, bool)
    except (TypeError, ValueError):
        fraction_ok = False
    if not fraction_ok:
        raise DataError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")

    kind, path = _detect(path)
    if test is not None:
        test_kind, test = _detect(test)
        if test_kind != kind:
            raise DataError(
                f"{test}: the test set is {_KIND_NAMES[test_kind]} but {path} is "
                f"{_KIND_NAMES[kind]}; give both in the same format"
            )
    if kind == "images":
        return _load_image_folder(path, test, image_size, test_fraction, seed)

    reader = _READERS[kind]
    train, own_test, class_names = reader(path, want_train=True, want_test=test is None)
    if test is not None:
        _, own_test, test_class_names = reader(test, want_train=False, want_test=True)
        class_names = class_names or test_class_names
    divisor = _check_pixels(train.x, train.source)
    test_divisor = _check_pixels(own_test.x, own_test.source) if own_test is not None else 1.0
    if own_test is not None and own_test.x.shape[1:] != train.x.shape[1:]:
        raise DataError(
            f"{own_test.source}: test images have shape {own_test.x.shape[1:]} but training "
            f"images in {train.source} have shape {train.x.shape[1:]}"
        )
    if image_size is not None and tuple(train.x.shape[1:3]) != image_size:
        raise DataError(
            f"{train.source}: images are {train.x.shape[1]}x{train.x.shape[2]}, not the requested "
            f"{image_size[0]}x{image_size[1]}; only image folders are resized"
        )
    n_classes = len(class_names) if class_names else None
    for part in (train, own_test):
        if part is not None:
            _check_labels(part.y, part.label_source, n_classes, _CLASS_KEYS[kind])

    if own_test is not None:
        x_train = _to_float_images(train.x, divisor)
        x_test = _to_float_images(own_test.x, test_divisor)
        y_train, y_test = train.y, own_test.y
    else:
        train_idx, test_idx = _split(train.y, train.source, test_fraction, seed)
        x_train = _to_float_images(train.x, divisor, train_idx)
        x_test = _to_float_images(train.x, divisor, test_idx)
        y_train, y_test = train.y[train_idx], train.y[test_idx]
    return Dataset(x_train, y_train, x_test, y_test, list(class_names or []), name=str(path))


# ---------------------------------------------------------------------------------------------
# Detection


_CLASS_KEYS = {"idx": "", "hdf5": "list_classes", "npz": "class_names"}
_KIND_NAMES = {
    "idx": "an IDX folder",
    "hdf5": "an HDF5 file",
    "images": "an image folder",
    "npz": "an .npz file",
}


def _detect(path: Path) -> tuple[str, Path]:
    """``(kind, path)`` of the data at ``path``; an IDX file stands for its folder."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return ("idx" if _idx_files(path) else "images"), path
    if _IDX_NAME.match(path.name):
        return "idx", path.parent
    head = _read_head(path, 8)
    suffix = path.suffix.lower()
    if head.startswith(_HDF5_SIGNATURE) or suffix in HDF5_SUFFIXES:
        return "hdf5", path
    if suffix == ".npz":
        return "npz", path
    if head.startswith(_ZIP_SIGNATURES) or suffix in _ARCHIVE_SUFFIXES:
        raise DataError(
            f"{path}: an archive, not a data set; unpack it and point to the folder inside"
        )
    if head.startswith(_NPY_SIGNATURE):
        raise DataError(
            f"{path}: a single .npy array; save x_train, y_train (and x_test, y_test) together "
            "with numpy.savez into an .npz file"
        )
    raise DataError(
        f"{path}: unknown data format; expected an IDX folder (MNIST layout), an HDF5 file (.h5), "
        "a folder with one sub-folder of images per class, or an .npz file"
    )


def _read_head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    """An exception's message on one line (libraries' messages may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_image_size(image_size) -> tuple[int, int]:
    try:
        n_H, n_W = (int(v) for v in image_size)
        ok = n_H == tuple(image_size)[0] and n_W == tuple(image_size)[1] and n_H > 0 and n_W > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(f"image_size must be two positive integers (n_H, n_W), got {image_size!r}")
    return n_H, n_W


# ---------------------------------------------------------------------------------------------
# Shared checks and conversion


def _labels_from(y: np.ndarray, source: str, name: str) -> np.ndarray:
    """Integer class indices of shape (m,) from the shapes and dtypes people store labels in."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:  # the course keeps labels as (1, m); others as (m, 1)
        y = y.reshape(-1)
    elif y.ndim == 2 and y.size and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        y = y.argmax(axis=1)  # one-hot rows
    if y.ndim != 1:
        raise DataError(
            f"{source}: {name} must be one label per image, shape (m,), got shape {y.shape}"
        )
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        if y.size and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{source}: {name} must be whole numbers, found fractional values")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{source}: {name} must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def _check_labels(y: np.ndarray, source: str, n_classes: int | None, names_key: str) -> None:
    if not y.size:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise DataError(f"{source}: labels must be class indices from 0, found label {low}")
    if n_classes is not None and high >= n_classes:
        raise DataError(
            f"{source}: label {high} is outside the {n_classes} classes in {names_key} "
            f"(labels must lie in 0..{n_classes - 1})"
        )


def _check_counts(x: np.ndarray, y: np.ndarray, source: str) -> None:
    if x.ndim == 0:
        raise DataError(f"{source}: a single number, expected images of shape (m, n_H, n_W)")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{source}: {x.shape[0]} images but {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise DataError(f"{source}: no images")


def _check_pixels(x: np.ndarray, source: str) -> float:
    """Validate stored pixels; returns the divisor that brings them into [0, 1]."""
    if x.ndim not in (3, 4):
        raise DataError(
            f"{source}: images must have shape (m, n_H, n_W) or (m, n_H, n_W, n_C), "
            f"got shape {x.shape}"
        )
    if x.ndim == 4 and x.shape[3] not in (1, 3):
        if x.shape[1] in (1, 3):
            raise DataError(
                f"{source}: images of shape {x.shape} look channels-first; cnnstep wants "
                "(m, n_H, n_W, n_C): transpose them with x.transpose(0, 2, 3, 1)"
            )
        raise DataError(
            f"{source}: images have {x.shape[3]} channels; cnnstep takes grayscale (1) or RGB (3)"
        )
    kind = x.dtype.kind
    if kind == "b" or x.dtype == np.uint8:
        return 1.0 if kind == "b" else 255.0
    if kind not in "iuf":
        raise DataError(f"{source}: pixels must be numbers, got dtype {x.dtype}")
    if not x.size:
        return 1.0
    low, high = x.min(), x.max()
    if kind == "f":
        if not (np.isfinite(low) and np.isfinite(high)):
            raise DataError(f"{source}: pixels include NaN or infinite values")
        if low >= 0.0 and high <= 1.0:
            return 1.0
        raise DataError(
            f"{source}: float pixels must lie in [0, 1], found {low:g} to {high:g}; "
            "store them as uint8 (0-255) or scale them"
        )
    if low < 0 or high > 255:
        raise DataError(f"{source}: integer pixels must lie in 0..255, found {low} to {high}")
    return 255.0


def _to_float_images(x: np.ndarray, divisor: float, idx: np.ndarray | None = None) -> np.ndarray:
    """float32 NHWC pixels ``x / divisor`` of the rows ``idx`` (all rows when None).

    Rows are converted a chunk at a time into the preallocated result, so the only full-size
    arrays alive are the stored pixels and the result.
    """
    rows = np.arange(x.shape[0]) if idx is None else idx
    shape = x.shape[1:] if x.ndim == 4 else (*x.shape[1:], 1)
    out = np.empty((rows.size, *shape), dtype=np.float32)
    per_row = max(1, int(np.prod(shape)) * max(x.dtype.itemsize, 4))
    step = max(1, _CHUNK_BYTES // per_row)
    for start in range(0, rows.size, step):
        sel = rows[start : start + step]
        chunk = x[sel[0] : sel[-1] + 1] if idx is None else x[sel]
        out[start : start + sel.size] = chunk.reshape(sel.size, *shape)
    if divisor != 1.0:
        np.divide(out, np.float32(divisor), out=out)
    return out


def _split(
    y: np.ndarray, source: str, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    if test_idx.size == 0 or train_idx.size == 0:
        raise DataError(
            f"{source}: too few images ({y.size}) to hold out a test part; add images "
            "or give a separate test set (test_path / --test-data)"
        )
    return train_idx, test_idx


# ---------------------------------------------------------------------------------------------
# IDX folders


def _idx_files(folder: Path) -> dict[str, dict[tuple[str, str], Path]]:
    """IDX files in ``folder`` grouped by name prefix, keyed by (part, kind) with part in
    {"train", "test"} and kind in {"images", "labels"}; plain files win over ``.gz``."""
    groups: dict[str, dict[tuple[str, str], Path]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({_reason(exc)})") from exc
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


def _read_idx_folder(
    folder: Path, *, want_train: bool, want_test: bool
) -> tuple[_Part | None, _Part | None, None]:
    groups = _idx_files(folder)
    if not groups:
        raise DataError(f"{folder}: no IDX files (like t10k-images-idx3-ubyte) in this folder")
    if len(groups) > 1:
        names = ", ".join(repr(p or "(none)") for p in sorted(groups))
        raise DataError(
            f"{folder}: IDX files of several data sets (name prefixes {names}); "
            "keep one data set per folder"
        )
    files = next(iter(groups.values()))
    parts: dict[str, _Part | None] = {"train": None, "test": None}
    for part, stem, wanted in (("train", "train", want_train), ("test", "t10k", want_test)):
        images, labels = files.get((part, "images")), files.get((part, "labels"))
        if images is None and labels is None:
            if wanted and (part == "train" or not want_train):
                raise DataError(
                    f"{folder}: no {stem}-images-idx3-ubyte / {stem}-labels-idx1-ubyte files"
                )
            continue
        if images is None or labels is None:
            missing = f"{stem}-{'images-idx3' if images is None else 'labels-idx1'}-ubyte[.gz]"
            present = images or labels
            raise DataError(f"{folder}: found {present.name} but not {missing}")
        if not wanted:
            continue
        x = _read_idx(images)
        y = _labels_from(_read_idx(labels), str(labels), "labels")
        if x.shape[0] != y.shape[0]:
            raise DataError(
                f"{images}: {x.shape[0]} images but {labels.name} has {y.shape[0]} labels"
            )
        _check_counts(x, y, str(images))
        parts[part] = _Part(x, y, str(images), str(labels))
    return parts["train"], parts["test"], None


def _read_idx(path: Path) -> np.ndarray:
    """The array in one IDX file (plain or gzip), read straight into its final buffer."""
    gz = path.suffix.lower() == ".gz"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            head = _read_exact(f, 4)
            if len(head) < 4:
                raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, no header)")
            if head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES or head[3] == 0:
                raise DataError(
                    f"{path}: not an IDX file (magic number 0x{head.hex()} is not "
                    "0x0000TTNN with a known type TT and NN dimensions)"
                )
            dtype, ndim = _IDX_DTYPES[head[2]], head[3]
            raw_dims = _read_exact(f, 4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX file (header cut short)")
            dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
            n_bytes = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            if not gz:
                on_disk = os.fstat(f.fileno()).st_size - 4 - 4 * ndim
                if on_disk != n_bytes:
                    raise DataError(
                        f"{path}: {'truncated' if on_disk < n_bytes else 'corrupt'} IDX file "
                        f"(header says {'x'.join(map(str, dims))} values = {n_bytes} bytes, "
                        f"file holds {on_disk})"
                    )
            try:
                buf = np.empty(n_bytes, dtype=np.uint8)
            except MemoryError as exc:
                raise DataError(
                    f"{path}: corrupt IDX header (dimensions {dims} need {n_bytes} bytes)"
                ) from exc
            got = _read_into(f, buf)
            if got < n_bytes:
                raise DataError(
                    f"{path}: truncated IDX file (header says {'x'.join(map(str, dims))} "
                    f"values = {n_bytes} bytes, file holds {got})"
                )
            if f.read(1):
                raise DataError(
                    f"{path}: corrupt IDX file (data goes on past the size in its header)"
                )
    except DataError:
        raise
    except _PARSER_ERRORS as exc:
        what = "gzip file" if gz else "file"
        raise DataError(f"{path}: truncated or corrupt {what} ({_reason(exc)})") from exc
    return buf.view(dtype).reshape(dims)


def _read_exact(f, n: int) -> bytes:
    out = b""
    while len(out) < n:
        more = f.read(n - len(out))
        if not more:
            break
        out += more
    return out


def _read_into(f, buf: np.ndarray) -> int:
    view = memoryview(buf)
    pos = 0
    while pos < buf.size:
        n = f.readinto(view[pos : pos + _CHUNK_BYTES])
        if not n:
            break
        pos += n
    return pos


# ---------------------------------------------------------------------------------------------
# Course-style HDF5


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError("reading HDF5 files needs h5py: pip install 'cnnstep[hdf5]'") from exc
    return h5py


def _read_hdf5(
    path: Path, *, want_train: bool, want_test: bool
) -> tuple[_Part | None, _Part | None, list[str]]:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            train = _hdf5_part(f, path, "train") if want_train else None
            test = _hdf5_part(f, path, "test", required=not want_train) if want_test else None
            names = _hdf5_classes(f, path)
    except DataError:
        raise
    except _PARSER_ERRORS as exc:
        reason = _reason(exc)
        what = "truncated HDF5 file" if "truncated" in reason else "not a readable HDF5 file"
        raise DataError(f"{path}: {what} ({reason})") from exc
    return train, test, names


def _hdf5_array(f, path: Path, key: str) -> np.ndarray:
    obj = f[key]
    if not hasattr(obj, "dtype"):
        raise DataError(f"{path}: {key} is an HDF5 group, expected a data set (an array)")
    try:
        return obj[()]
    except _PARSER_ERRORS as exc:
        raise DataError(
            f"{path}: {key} cannot be read, the file is truncated or corrupt ({_reason(exc)})"
        ) from exc


def _hdf5_part(f, path: Path, part: str, required: bool = True) -> _Part | None:
    x_key, y_key = f"{part}_set_x", f"{part}_set_y"
    present = [k for k in (x_key, y_key) if k in f]
    if len(present) < 2:
        if not present and not required:
            return None
        found = ", ".join(sorted(f.keys())) or "nothing"
        missing = " and ".join(k for k in (x_key, y_key) if k not in f)
        raise DataError(f"{path}: no {missing} in this HDF5 file (it holds: {found})")
    return _stored_part(path, x_key, y_key, _hdf5_array(f, path, x_key),
                        _hdf5_array(f, path, y_key))


def _hdf5_classes(f, path: Path) -> list[str]:
    if "list_classes" not in f:
        return []
    raw = np.asarray(_hdf5_array(f, path, "list_classes")).reshape(-1)
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in raw.tolist()]


# ---------------------------------------------------------------------------------------------
# .npz


def _read_npz(
    path: Path, *, want_train: bool, want_test: bool
) -> tuple[_Part | None, _Part | None, list[str]]:
    if not _read_head(path, 4).startswith(_ZIP_SIGNATURES):
        raise DataError(f"{path}: not an .npz file (not a zip archive as numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            train = _npz_part(data, keys, path, "train") if want_train else None
            test = (
                _npz_part(data, keys, path, "test", required=not want_train) if want_test else None
            )
            names = _npz_array(data, path, "class_names") if "class_names" in keys else None
    except DataError:
        raise
    except _PARSER_ERRORS as exc:
        raise DataError(f"{path}: truncated or corrupt .npz file ({_reason(exc)})") from exc
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


def _npz_array(data, path: Path, key: str) -> np.ndarray:
    try:
        return data[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DataError(
                f"{path}: {key} is stored as Python objects and would need pickle to load, "
                "which cnnstep refuses; save it as a numeric array"
            ) from exc
        raise DataError(f"{path}: {key} cannot be read ({_reason(exc)})") from exc
    except _PARSER_ERRORS as exc:
        raise DataError(
            f"{path}: {key} cannot be read, the file is truncated or corrupt ({_reason(exc)})"
        ) from exc


def _npz_part(data, keys: set[str], path: Path, part: str, required: bool = True) -> _Part | None:
    x_key, y_key = f"x_{part}", f"y_{part}"
    if x_key not in keys or y_key not in keys:
        if x_key not in keys and y_key not in keys and not required:
            return None
        missing = " and ".join(k for k in (x_key, y_key) if k not in keys)
        found = ", ".join(sorted(keys)) or "nothing"
        raise DataError(f"{path}: no {missing} in this .npz (it holds: {found})")
    return _stored_part(path, x_key, y_key, _npz_array(data, path, x_key),
                        _npz_array(data, path, y_key))


def _stored_part(path: Path, x_key: str, y_key: str, x: np.ndarray, y_raw: np.ndarray) -> _Part:
    """Images and labels stored as two arrays of one file (HDF5 data sets, npz members)."""
    y = _labels_from(y_raw, f"{path}:{y_key}", y_key)
    if x.ndim >= 1 and x.shape[0] != y.shape[0]:
        raise DataError(
            f"{path}: {x.shape[0]} images in {x_key} but {y.shape[0]} labels in {y_key}"
        )
    _check_counts(x, y, f"{path}:{x_key}")
    return _Part(x, y, f"{path}:{x_key}", f"{path}:{y_key}")


_READERS = {"idx": _read_idx_folder, "hdf5": _read_hdf5, "npz": _read_npz}


# ---------------------------------------------------------------------------------------------
# Image folders


def _pil_image():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError("reading images needs Pillow: pip install 'cnnstep[images]'") from exc
    return Image


def _class_sort_key(name: str):
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _visible_subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(
            (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: _class_sort_key(p.name),
        )
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({_reason(exc)})") from exc


def _scan_classes(root: Path, skipped: list[Path]) -> dict[str, list[Path]]:
    """``{class name: image files}`` of ``root/<class>/*``; other files are added to ``skipped``."""
    classes: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir()):
        if entry.is_file() and not entry.name.startswith("."):
            skipped.append(entry)
    for folder in _visible_subfolders(root):
        files = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue  # .DS_Store and friends
            if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
                files.append(entry)
            else:
                skipped.append(entry)
        classes[folder.name] = files
    return classes


def _find_test_folder(root: Path) -> Path | None:
    for name in _TEST_FOLDER_NAMES:
        if (root / name).is_dir():
            return root / name
    return None


def _image_header(path: Path) -> tuple[int, int, bool]:
    """``(height, width, is_colour)`` of an image file, from its header only."""
    Image = _pil_image()
    try:
        with Image.open(path) as img:
            colour = img.mode not in _GRAY_MODES
            if img.mode == "P":  # a palette of only grays is a grayscale image
                palette = np.asarray(img.getpalette() or [], dtype=np.int64)
                triples = palette[: palette.size // 3 * 3].reshape(-1, 3)
                colour = bool(triples.size) and not (triples == triples[:, :1]).all()
            return int(img.height), int(img.width), colour
    except (*_PARSER_ERRORS, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({_reason(exc)})") from exc


def _load_image_folder(
    path: Path,
    test_path: Path | None,
    image_size: tuple[int, int] | None,
    test_fraction: float,
    seed: int,
) -> Dataset:
    skipped: list[Path] = []
    try:
        if not any(path.iterdir()):
            raise DataError(f"{path}: empty folder")
        train_root = path / "train" if (path / "train").is_dir() else path
        own_test = _find_test_folder(path) if train_root != path else None
        train_classes = _scan_classes(train_root, skipped)
        test_root = test_path or own_test
        test_classes = _scan_classes(test_root, skipped) if test_root is not None else {}
    except OSError as exc:
        raise DataError(f"{path}: cannot be listed ({_reason(exc)})") from exc

    if skipped:
        examples = ", ".join(str(p) for p in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(
            f"{path}: skipped {len(skipped)} "
            f"{'entry that is' if len(skipped) == 1 else 'entries that are'} not an image in a "
            "class folder "
            f"({examples}{more})",
            DataWarning,
            stacklevel=3,
        )
    empty = [name for name, files in train_classes.items() if not files]
    if empty and len(empty) < len(train_classes):
        warnings.warn(
            f"{train_root}: class folders without images are left out: {', '.join(empty)}",
            DataWarning,
            stacklevel=3,
        )
    class_names = [name for name, files in train_classes.items() if files]
    if not class_names:
        hint = ""
        if any(_idx_files(sub) for sub in _visible_subfolders(train_root)):
            hint = "; the IDX files are one folder further down, point to that folder"
        raise DataError(
            f"{train_root}: no images found (expected one sub-folder per class holding "
            f"{'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)} files){hint}"
        )
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [name for name, files in test_classes.items() if files and name not in index]
    if unknown:
        raise DataError(
            f"{test_root}: test class {unknown[0]!r} is not one of the training classes "
            f"({', '.join(class_names)})"
        )

    train_files = [(p, index[name]) for name in class_names for p in train_classes[name]]
    test_files = [(p, index[name]) for name, files in test_classes.items() for p in files]
    if test_root is not None and not test_files:
        raise DataError(f"{test_root}: no images in the test folder's class sub-folders")

    headers = [_image_header(p) for p, _ in train_files + test_files]
    chosen = image_size is not None
    if image_size is None:
        counts = Counter((h, w) for h, w, _ in headers)
        image_size = counts.most_common(1)[0][0]
        if len(counts) > 1:
            warnings.warn(
                f"{path}: images come in {len(counts)} sizes; all are resized to the most "
                f"common, {image_size[0]}x{image_size[1]} (choose with image_size / --image-size)",
                DataWarning,
                stacklevel=3,
            )
    n_C = 3 if any(colour for _, _, colour in headers) else 1
    _check_fits_in_memory(path, len(headers), image_size, n_C, chosen)

    if test_files:
        train_sel, test_sel = train_files, test_files
    else:
        y_all = np.array([label for _, label in train_files], dtype=np.int64)
        train_idx, test_idx = _split(y_all, str(train_root), test_fraction, seed)
        train_sel = [train_files[i] for i in train_idx]
        test_sel = [train_files[i] for i in test_idx]
    x_train, y_train = _load_images(train_sel, image_size, n_C)
    x_test, y_test = _load_images(test_sel, image_size, n_C)
    return Dataset(x_train, y_train, x_test, y_test, class_names, name=str(path))


def _available_memory() -> int | None:
    """Bytes of memory free now, where the system says (Linux, macOS); None elsewhere."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - depends on the system
        return None


def _check_fits_in_memory(
    path: Path, m: int, size: tuple[int, int], n_C: int, chosen: bool
) -> None:
    """Refuse before decoding when the images would not fit (e.g. a folder of phone photos)."""
    need = m * size[0] * size[1] * n_C * 4
    free = _available_memory()
    hint = "choose a smaller size with image_size / --image-size, e.g. 64 64"
    if free is not None and need > free // 2:
        raise DataError(
            f"{path}: {m} images of {size[0]}x{size[1]}x{n_C} need {need / 2**30:.1f} GiB as "
            f"float32, more than half the {free / 2**30:.1f} GiB of free memory; {hint}"
        )
    if not chosen and max(size) > _LARGE_SIDE:
        warnings.warn(
            f"{path}: images are {size[0]}x{size[1]}; training at that size is slow, {hint}",
            DataWarning,
            stacklevel=4,
        )


def _load_images(
    files: list[tuple[Path, int]], size: tuple[int, int], n_C: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``files`` into one preallocated (m, n_H, n_W, n_C) float32 array."""
    x = np.empty((len(files), size[0], size[1], n_C), dtype=np.float32)
    y = np.empty(len(files), dtype=np.int64)
    for i, (file, label) in enumerate(files):
        try:
            x[i] = load_image(file, size=size, channels=n_C)
        except DataError:
            raise
        except _PARSER_ERRORS as exc:  # load_image converts the common ones already
            raise DataError(f"{file}: not a readable image ({_reason(exc)})") from exc
        y[i] = label
    return x, y
