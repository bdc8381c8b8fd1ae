"""Data readers: one module per file format, each registering a
:class:`~cnnstep.data.readers.registry.Reader` (name, how it recognises a path, where it keeps
class names, how it loads). :func:`load_path` asks the registry which reader a path is for.

- ``idx``: a folder of MNIST-layout IDX files (plain or ``.gz``);
- ``hdf5``: a course-style HDF5 file (``train_set_x``, ``train_set_y``, ``list_classes``);
- ``npz``: an ``.npz`` archive with ``x_train``, ``y_train`` (``x_test``, ``y_test``,
  ``class_names``);
- ``image_folder``: a folder with one sub-folder of images per class (optionally ``train/`` and
  ``test/``);
- ``refused``: archives and single ``.npy`` files, refused with advice.

Adding a format is one new module here (plus its test): it calls ``register(Reader(...))``
and is found by name. Every way a file can be broken ends in a
:class:`~cnnstep.errors.DataError` naming the file; every size a file declares is checked
against the memory budget (:mod:`cnnstep.budget`) before it is allocated.

May import: :mod:`cnnstep.data` and top-level modules only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cnnstep.data.dataset import Dataset, check_fraction
from cnnstep.data.readers.common import DataWarning, LoadOptions
from cnnstep.data.readers.registry import Reader, detect, readers, register
from cnnstep.errors import DataError

__all__ = ["DataWarning", "Reader", "load_path", "readers", "register"]


def load_path(
    path: str | os.PathLike,
    *,
    test_path: str | os.PathLike | None = None,
    image_size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    allow_test_only: bool = False,
) -> Dataset:
    """Load the data set at ``path``, detecting its format from what is there.

    Parameters
    ----------
    path : str or PathLike
        An IDX folder (MNIST layout), a course-style HDF5 file, a folder of class sub-folders of
        images, or an ``.npz`` archive; a path to one IDX file means its folder.
    test_path : str or PathLike, optional
        A separate test set in the same format as ``path``. It replaces any test part inside
        ``path``.
    image_size : (n_H, n_W), optional
        Size every image of an image folder is resized to; the most common size when omitted.
        Array formats (IDX, HDF5, npz) are not resized and must already have this size.
    test_fraction : float
        Fraction of each class held out for testing when the data has no test part, in (0, 1).
    seed : int
        Seed of that stratified split.
    allow_test_only : bool, default False
        Read a file holding only a test part (``test_set_x``/``test_set_y``, ``x_test``/
        ``y_test``, ``t10k-*`` files, an image folder holding only ``test/``) as a data set whose
        training part is empty, to score a model on it; otherwise that is an error.

    Returns
    -------
    Dataset
        ``x_train`` of shape (m_train, n_H, n_W, n_C) and ``x_test`` of shape
        (m_test, n_H, n_W, n_C), float32 in [0, 1] (grayscale has n_C = 1); int64 labels;
        ``class_names`` from the file or folder names when it has them.

    Raises
    ------
    DataError
        The path is missing, empty, truncated, corrupt, inconsistent, over the memory budget or
        of no known format; the one-line message names the file and what is wrong.
    """
    path = Path(path).expanduser()
    test = Path(test_path).expanduser() if test_path is not None else None
    size = _check_image_size(image_size) if image_size is not None else None
    try:
        fraction = check_fraction(test_fraction)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    reader, path = detect(path)
    if test is not None:
        test_reader, test = detect(test)
        if test_reader is not reader:
            raise DataError(
                f"{test}: the test set is {test_reader.description} but {path} is "
                f"{reader.description}; give both in the same format"
            )
    return reader.load(path, test, LoadOptions(size, fraction, int(seed), bool(allow_test_only)))


def _check_image_size(image_size: Any) -> tuple[int, int]:
    try:
        n_H, n_W = (int(v) for v in image_size)
        given = tuple(image_size)
        ok = n_H == given[0] and n_W == given[1] and n_H > 0 and n_W > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(f"image_size must be two positive integers (n_H, n_W), got {image_size!r}")
    return n_H, n_W
