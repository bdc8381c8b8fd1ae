"""Writers for small data sets in every format :func:`cnnstep.formats.load_path` reads.

Shared by ``tests/data/readers/`` (the loaders) and ``test_formats_cli.py`` (the command line).
"""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnnstep.data.dataset import Dataset
from cnnstep.data.formats import load_path
from cnnstep.errors import DataError


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file's bytes: magic 0x0000TTNN, NN big-endian uint32 sizes, big-endian data."""
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    head = bytes([0, 0, type_code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return head + np.ascontiguousarray(arr, dtype=dtypes[type_code]).tobytes()


def write_idx_file(path: Path, arr: np.ndarray, type_code: int = 0x08) -> Path:
    data = idx_bytes(arr, type_code)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def digits(m: int, n_classes: int = 3, size: int = 6, seed: int = 0, channels: int = 0):
    """``m`` uint8 images whose class is visible (brightness grows with the label), labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(m) % n_classes
    shape = (m, size, size) + ((channels,) if channels else ())
    base = (y * (200 // max(1, n_classes - 1))).reshape((m,) + (1,) * (len(shape) - 1))
    x = np.clip(base + rng.integers(0, 40, size=shape), 0, 255).astype(np.uint8)
    return x, y.astype(np.uint8)


def write_idx_folder(
    folder: Path, m_train: int = 24, m_test: int = 9, gz: bool = False, sep: str = "-"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for stem, m, seed in (("train", m_train, 0), ("t10k", m_test, 1)):
        if not m:
            continue
        x, y = digits(m, seed=seed)
        write_idx_file(folder / f"{stem}-images{sep}idx3-ubyte{ext}", x)
        write_idx_file(folder / f"{stem}-labels{sep}idx1-ubyte{ext}", y)
    return folder


def write_h5(path: Path, parts=("train",), m: int = 12, classes=(b"non-cat", b"cat"), **over):
    """A course-style HDF5 file: ``<part>_set_x`` (m, 8, 8, 3) uint8, ``<part>_set_y``."""
    import h5py

    with h5py.File(path, "w") as f:
        for i, part in enumerate(parts):
            x, y = digits(m, n_classes=len(classes), size=8, seed=i, channels=3)
            f.create_dataset(f"{part}_set_x", data=over.get(f"{part}_set_x", x))
            f.create_dataset(f"{part}_set_y", data=over.get(f"{part}_set_y", y.astype(np.int64)))
        if classes is not None:
            f.create_dataset("list_classes", data=np.array(classes))
    return path


def write_image_folder(
    root: Path,
    classes=("cat", "dog"),
    per_class: int = 5,
    size=(8, 8),
    mode: str = "L",
    suffix: str = ".png",
) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            channels = 3 if mode == "RGB" else 1
            arr = (rng.integers(0, 60, size=(*size, channels)) + 150 * c).clip(0, 255)
            arr = arr.astype(np.uint8)
            img = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode=mode)
            img.save(root / name / f"{name}_{i}{suffix}")
    return root


def write_npz(path: Path, test: bool = True, m: int = 12, **arrays) -> Path:
    x, y = digits(m, seed=0)
    data = {"x_train": x, "y_train": y}
    if test:
        xt, yt = digits(6, seed=1)
        data.update(x_test=xt, y_test=yt)
    data.update(arrays)
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def check_dataset(ds: Dataset, n_C: int | None = None) -> None:
    """What every loader promises: float32 NHWC in [0, 1], int64 labels in the classes."""
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        assert x.shape[0] > 0
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.min() >= 0 and y.max() < len(ds.class_names)
    if n_C is not None:
        assert ds.x_train.shape[3] == n_C


def refused(match: str, path, **kwargs) -> str:
    """load_path(path) raises DataError whose one-line message matches ``match``."""
    with pytest.raises(DataError, match=match) as info:
        load_path(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes traced by tracemalloc while ``fn()`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

