"""Image folders: one sub-folder per class (``root/<class>/*.png``), optionally split into
``root/train/<class>`` and ``root/test/<class>``. Needs Pillow.

Sizes come from image headers; the float32 result is checked against the memory budget and
the free memory before any image is decoded.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import numpy as np

from cnnstep.budget import check_shape
from cnnstep.data.dataset import Dataset
from cnnstep.data.images import IMAGE_FORMATS, IMAGE_SUFFIXES, load_image, pillow
from cnnstep.data.readers.common import LoadOptions, available_memory, reason, split, warn
from cnnstep.data.readers.idx import idx_files
from cnnstep.data.readers.registry import Reader, register
from cnnstep.errors import DataError
from cnnstep.fileio import open_regular

__all__ = ["load_image_folder"]

_TEST_FOLDER_NAMES = ("test", "val", "valid", "validation")
_GRAY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "F")
LARGE_SIDE = 256  # pixels; above this a CNN in NumPy trains slowly, so say so


def _class_sort_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _visible_subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(
            (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: _class_sort_key(p.name),
        )
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({reason(exc)})") from exc


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
    Image, _ = pillow()
    try:
        with open_regular(path) as f, Image.open(f, formats=IMAGE_FORMATS) as img:
            colour = img.mode not in _GRAY_MODES
            if img.mode == "P":  # a palette of only grays is a grayscale image
                palette = np.asarray(img.getpalette() or [], dtype=np.int64)
                triples = palette[: palette.size // 3 * 3].reshape(-1, 3)
                colour = bool(triples.size) and not (triples == triples[:, :1]).all()
            return int(img.height), int(img.width), colour
    except Image.UnidentifiedImageError as exc:
        raise DataError(f"{path}: not a readable image (not a PNG, JPEG, BMP or GIF file)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error,
            Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({reason(exc)})") from exc


def _scan(path: Path, test_path: Path | None) -> tuple[Path, Path | None, dict, dict, list[Path]]:
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
        raise DataError(f"{path}: cannot be listed ({reason(exc)})") from exc
    return train_root, test_root, train_classes, test_classes, skipped


def _no_images(train_root: Path, skipped: list[Path]) -> DataError:
    flat = [p for p in skipped if p.parent == train_root and p.suffix.lower() in IMAGE_SUFFIXES]
    if flat:
        return DataError(
            f"{train_root}: {len(flat)} images lie directly in the folder; put each class's "
            f"images in a sub-folder named after the class ({train_root}/<class>/*.png)"
        )
    hint = ""
    if any(idx_files(sub) for sub in _visible_subfolders(train_root)):
        hint = "; the IDX files are one folder further down, point to that folder"
    return DataError(
        f"{train_root}: no images found (expected one sub-folder per class holding "
        f"{'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)} files){hint}"
    )


def _only_test_folder(path: Path) -> Path | None:
    """The test folder of ``path`` when that is all it holds (no ``train/``, no class
    folders)."""
    if (path / "train").is_dir():
        return None
    test = _find_test_folder(path)
    if test is None:
        return None
    try:
        others = [d for d in _visible_subfolders(path) if d != test]
    except OSError as exc:
        raise DataError(f"{path}: cannot be listed ({reason(exc)})") from exc
    return None if others else test


def load_image_folder(path: Path, test_path: Path | None, options: LoadOptions) -> Dataset:
    """The data set of an image folder (see the module docstring for the layouts); with
    ``options.allow_test_only``, a folder holding only ``test/`` gives its images as the test
    part of a data set with an empty training part."""
    only_test = _only_test_folder(path) if options.allow_test_only and not test_path else None
    train_root, test_root, train_classes, test_classes, skipped = _scan(
        only_test or path, test_path)
    class_names = [name for name, files in train_classes.items() if files]
    if skipped:
        examples = ", ".join(str(p) for p in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        one = len(skipped) == 1
        warn(
            f"{path}: skipped {len(skipped)} {'entry that is' if one else 'entries that are'} "
            f"not an image in a class folder ({examples}{more})"
        )
    if not class_names:
        raise _no_images(train_root, skipped)
    empty = [name for name, files in train_classes.items() if not files]
    if empty:
        warn(f"{train_root}: class folders without images are left out: {', '.join(empty)}")
    if len(class_names) < 2 and only_test is None:
        raise DataError(
            f"{train_root}: only one class ({class_names[0]}); a classifier needs at least two "
            "class sub-folders"
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
    size = options.image_size
    chosen = size is not None
    if size is None:
        counts = Counter((h, w) for h, w, _ in headers)
        size = counts.most_common(1)[0][0]
        if len(counts) > 1:
            warn(
                f"{path}: images come in {len(counts)} sizes; all are resized to the most "
                f"common, {size[0]}x{size[1]} (choose with image_size / --image-size)"
            )
    n_C = 3 if any(colour for _, _, colour in headers) else 1
    _check_fits_in_memory(path, len(headers), size, n_C, chosen)

    if only_test is not None:
        train_sel, test_sel = [], train_files
    elif test_files:
        train_sel, test_sel = train_files, test_files
    else:
        y_all = np.array([label for _, label in train_files], dtype=np.int64)
        train_idx, test_idx = split(y_all, str(train_root), options.test_fraction, options.seed)
        train_sel = [train_files[i] for i in train_idx]
        test_sel = [train_files[i] for i in test_idx]
    x_train, y_train = _load_images(train_sel, size, n_C)
    x_test, y_test = _load_images(test_sel, size, n_C)
    return Dataset(x_train, y_train, x_test, y_test, class_names, name=str(path))


def _check_fits_in_memory(
    path: Path, m: int, size: tuple[int, int], n_C: int, chosen: bool
) -> None:
    """Refuse before decoding when the images would not fit (e.g. a folder of phone photos)."""
    hint = "choose a smaller size with image_size / --image-size, e.g. 64 64"
    need = check_shape((m, size[0], size[1], n_C), 4, f"{path}: {m} images as float32")
    free = available_memory()
    if free is not None and need > free // 2:
        raise DataError(
            f"{path}: {m} images of {size[0]}x{size[1]}x{n_C} need {need / 2**30:.1f} GiB as "
            f"float32, more than half the {free / 2**30:.1f} GiB of free memory; {hint}"
        )
    if not chosen and max(size) > LARGE_SIDE:
        warn(f"{path}: images are {size[0]}x{size[1]}; training at that size is slow, {hint}")


def _load_images(
    files: list[tuple[Path, int]], size: tuple[int, int], n_C: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``files`` into one preallocated (m, n_H, n_W, n_C) float32 array."""
    x = np.empty((len(files), size[0], size[1], n_C), dtype=np.float32)
    y = np.empty(len(files), dtype=np.int64)
    for i, (file, label) in enumerate(files):
        x[i] = load_image(file, size=size, channels=n_C)  # every failure is a DataError
        y[i] = label
    return x, y


def _sniff(path: Path, head: bytes) -> Path | None:
    return path if path.is_dir() else None


register(
    Reader(
        name="images",
        description="an image folder",
        sniff=_sniff,
        load=load_image_folder,
        class_key="",
        order=40,
    )
)
