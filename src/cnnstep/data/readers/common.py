"""What every reader shares: the stored part of a data set, label and pixel checks, the
conversion to float32 images, the split, and the loader that array formats (IDX, HDF5, npz)
plug their ``read_parts`` into."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnstep.budget import check_shape
from cnnstep.data.dataset import Dataset, stratified_split
from cnnstep.errors import DataError
from cnnstep.fileio import open_regular

__all__ = [
    "CHUNK_BYTES",
    "DataWarning",
    "LoadOptions",
    "Part",
    "ReadParts",
    "array_loader",
    "check_class_labels",
    "check_counts",
    "check_pixels",
    "labels_from",
    "read_head",
    "reason",
    "split",
    "stored_part",
    "to_float_images",
]

CHUNK_BYTES = 1 << 20  # read and convert in 1 MiB pieces so no second full copy is made


class DataWarning(UserWarning):
    """Something in a data set was skipped or guessed; loading went on."""


@dataclass
class Part:
    """Pixels and labels as stored in a file, before scaling and splitting."""

    x: np.ndarray  # (m, n_H, n_W) or (m, n_H, n_W, n_C), any numeric dtype
    y: np.ndarray  # (m,) int64
    source: str  # where the pixels came from, for messages
    label_source: str  # where the labels came from


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`cnnstep.data.readers.load_path` was asked for, passed to every reader."""

    image_size: tuple[int, int] | None = None
    test_fraction: float = 0.2
    seed: int = 0
    #: a file holding only a test part gives a data set with an empty training part (to score
    #: a model on it) instead of an error
    allow_test_only: bool = False


# read_parts(path, want_train=..., want_test=...) -> (train part, test part, class names);
# want_train None: each part if the file has it
ReadParts = Callable[..., "tuple[Part | None, Part | None, list[str]]"]


def reason(exc: BaseException) -> str:
    """An exception's message on one line (libraries' messages may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def read_head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of ``path`` (fewer for a shorter file); DataError if unreadable."""
    try:
        with open_regular(path) as f:  # a FIFO or device is refused, never waited on
            return f.read(n)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({reason(exc)})") from exc


def labels_from(y: np.ndarray, source: str, name: str) -> np.ndarray:
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
            bad = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise DataError(
                f"{source}: {name} must be whole numbers, found {y[bad]!r} at index {bad}"
            )
        if y.size and np.abs(y).max() >= 2**62:
            raise DataError(f"{source}: {name} holds a label too large to be a class index")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{source}: {name} must be integers, got dtype {y.dtype}")
    elif y.dtype == np.uint64 and y.size and y.max() >= 2**63:
        raise DataError(f"{source}: {name} holds a label too large to be a class index")
    return y.astype(np.int64)


def check_class_labels(
    train: Part, test: Part | None, class_names: list[str], names_key: str
) -> int:
    """The number of classes, checked against the labels; DataError naming label and place.

    With class names the count is their number and every label must lie in 0..K-1. Without,
    labels must be 0..K-1 with every class present in the training labels (so one stray label
    of 200 cannot build a 201-class model). One class is an error either way.
    """
    y = train.y
    low = int(y.min())
    if low < 0:
        at = int(np.argmin(y))
        raise DataError(
            f"{train.label_source}: label {low} at index {at}; labels must be class indices "
            "from 0"
        )
    if class_names:
        n_classes = len(class_names)
        where = f"the {n_classes} class names in {names_key}"
    else:
        present = np.unique(y)
        n_classes = int(present[-1]) + 1
        if present.size != n_classes:
            missing = np.setdiff1d(np.arange(min(n_classes, present.size + 1)), present)
            gap = int(missing[0]) if missing.size else present.size
            top = int(present[-1])
            at = int(np.flatnonzero(y == top)[0])
            raise DataError(
                f"{train.label_source}: label {top} at index {at}, but label {gap} never occurs; "
                f"without class names labels must be 0..K-1 with every class present in the "
                f"training data ({present.size} distinct labels found)"
            )
        where = f"the {n_classes} classes of the training labels"
    if n_classes < 2:
        raise DataError(
            f"{train.label_source}: only one class ({class_names[0] if class_names else 0!r}); "
            "a classifier needs at least two"
        )
    for part in (train, test):
        if part is None or not part.y.size:
            continue
        bad = np.flatnonzero((part.y < 0) | (part.y >= n_classes))
        if bad.size:
            at = int(bad[0])
            raise DataError(
                f"{part.label_source}: label {int(part.y[at])} at index {at} is outside "
                f"{where} (labels must lie in 0..{n_classes - 1})"
            )
    return n_classes


def check_counts(x: np.ndarray, y: np.ndarray, source: str) -> None:
    if x.ndim == 0:
        raise DataError(f"{source}: a single number, expected images of shape (m, n_H, n_W)")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{source}: {x.shape[0]} images but {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise DataError(f"{source}: no images")


def stored_part(path: Path, x_key: str, y_key: str, x: np.ndarray, y_raw: np.ndarray) -> Part:
    """Images and labels stored as two arrays of one file (HDF5 data sets, npz members)."""
    y = labels_from(y_raw, f"{path}:{y_key}", y_key)
    if x.ndim >= 1 and x.shape[0] != y.shape[0]:
        raise DataError(
            f"{path}: {x.shape[0]} images in {x_key} but {y.shape[0]} labels in {y_key}"
        )
    check_counts(x, y, f"{path}:{x_key}")
    return Part(x, y, f"{path}:{x_key}", f"{path}:{y_key}")


def check_pixels(x: np.ndarray, source: str) -> float:
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
    if 0 in x.shape[1:]:
        raise DataError(f"{source}: images of shape {x.shape[1:]} hold no pixels")
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


def to_float_images(
    x: np.ndarray, divisor: float, idx: np.ndarray | None = None, source: str = "images"
) -> np.ndarray:
    """float32 NHWC pixels ``x / divisor`` of the rows ``idx`` (all rows when None).

    Rows are converted a chunk at a time into the preallocated result, so the only full-size
    arrays alive are the stored pixels and the result (checked against the memory budget).
    """
    rows = np.arange(x.shape[0]) if idx is None else idx
    shape = x.shape[1:] if x.ndim == 4 else (*x.shape[1:], 1)
    check_shape((rows.size, *shape), 4, f"{source} as float32")
    out = np.empty((rows.size, *shape), dtype=np.float32)
    per_row = max(1, int(np.prod(shape)) * max(x.dtype.itemsize, 4))
    step = max(1, CHUNK_BYTES // per_row)
    for start in range(0, rows.size, step):
        sel = rows[start : start + step]
        chunk = x[sel[0] : sel[-1] + 1] if idx is None else x[sel]
        out[start : start + sel.size] = chunk.reshape(sel.size, *shape)
    if divisor != 1.0:
        np.divide(out, np.float32(divisor), out=out)
    return out


def split(
    y: np.ndarray, source: str, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test indices; DataError when a part would be empty."""
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    if test_idx.size == 0 or train_idx.size == 0:
        raise DataError(
            f"{source}: too few images ({y.size}) to hold out a test part; add images "
            "or give a separate test set (test_path / --test-data)"
        )
    return train_idx, test_idx


def array_loader(read_parts: ReadParts, class_key: str) -> Callable[..., Dataset]:
    """A reader's ``load(path, test_path, options)`` for a format storing arrays.

    ``read_parts(path, want_train=, want_test=)`` returns ``(train, test, class_names)`` as
    stored; this adds what all array formats share: pixel checks, class counts, scaling to
    float32 and the split when there is no test part.
    """

    def load(path: Path, test_path: Path | None, options: LoadOptions) -> Dataset:
        if options.allow_test_only and test_path is None:
            train, own_test, class_names = read_parts(path, want_train=None, want_test=True)
            if train is None and own_test is not None:
                return test_only(path, own_test, class_names, options, class_key)
            if train is None:  # neither part: the message about the missing training part
                read_parts(path, want_train=True, want_test=False)
        else:
            train, own_test, class_names = read_parts(path, want_train=True,
                                                      want_test=not test_path)
        if test_path is not None:
            _, own_test, test_names = read_parts(test_path, want_train=False, want_test=True)
            if class_names and test_names and list(test_names) != list(class_names):
                raise DataError(
                    f"{test_path}: class names {test_names} differ from {class_names} in {path}"
                )
            class_names = class_names or test_names
        assert train is not None  # read with want_train=True, or found
        divisor = check_pixels(train.x, train.source)
        test_divisor = check_pixels(own_test.x, own_test.source) if own_test else 1.0
        if own_test is not None and own_test.x.shape[1:] != train.x.shape[1:]:
            raise DataError(
                f"{own_test.source}: test images have shape {own_test.x.shape[1:]} but training "
                f"images in {train.source} have shape {train.x.shape[1:]}"
            )
        size = options.image_size
        if size is not None and tuple(train.x.shape[1:3]) != size:
            raise DataError(
                f"{train.source}: images are {train.x.shape[1]}x{train.x.shape[2]}, not the "
                f"requested {size[0]}x{size[1]}; only image folders are resized"
            )
        check_class_labels(train, own_test, class_names, class_key or "the file")
        if own_test is not None:
            x_train = to_float_images(train.x, divisor, source=train.source)
            x_test = to_float_images(own_test.x, test_divisor, source=own_test.source)
            y_train, y_test = train.y, own_test.y
        else:
            train_idx, test_idx = split(train.y, train.source, options.test_fraction, options.seed)
            x_train = to_float_images(train.x, divisor, train_idx, train.source)
            x_test = to_float_images(train.x, divisor, test_idx, train.source)
            y_train, y_test = train.y[train_idx], train.y[test_idx]
        return Dataset(x_train, y_train, x_test, y_test, list(class_names), name=str(path))

    return load


def test_only(path: Path, test: Part, class_names: list[str], options: LoadOptions,
              class_key: str) -> Dataset:
    """The data set of a file holding only a test part: an empty training part."""
    divisor = check_pixels(test.x, test.source)
    size = options.image_size
    if size is not None and tuple(test.x.shape[1:3]) != size:
        raise DataError(
            f"{test.source}: images are {test.x.shape[1]}x{test.x.shape[2]}, not the "
            f"requested {size[0]}x{size[1]}; only image folders are resized")
    if class_names:
        bad = np.flatnonzero((test.y < 0) | (test.y >= len(class_names)))
        if bad.size:
            at = int(bad[0])
            raise DataError(
                f"{test.label_source}: label {int(test.y[at])} at index {at} is outside the "
                f"{len(class_names)} class names in {class_key or 'the file'}")
    x_test = to_float_images(test.x, divisor, source=test.source)
    x_train = np.zeros((0, *x_test.shape[1:]), dtype=np.float32)
    return Dataset(x_train, np.zeros(0, dtype=np.int64), x_test, test.y, list(class_names),
                   name=str(path))


def warn(message: str) -> None:
    """Report something skipped or guessed as a :class:`DataWarning` at the caller of load_path."""
    warnings.warn(message, DataWarning, stacklevel=5)


def available_memory() -> int | None:
    """Bytes of memory free now, where the system says (Linux, macOS); None elsewhere."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - depends on the system
        return None
