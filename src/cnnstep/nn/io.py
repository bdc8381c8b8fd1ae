"""The model file: one ``.npz``, architecture as JSON inside, no pickle.

A model file holds the array ``__model__`` (a JSON string: layers, input shape, dtype, class
names, free-form metadata) and one array per parameter, named ``<layer index>.<name>``
(``0.W``, ``0.b``, ...). A checkpoint (:mod:`cnnstep.train.checkpoint`) is a model file plus more
entries. Files are written atomically and read with ``allow_pickle=False``;
every array's shape is checked against the architecture.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.errors import DataError
from cnnstep.fileio import write_npz

FORMAT = "cnnstep-model"
FORMAT_VERSION = 1


def json_array(obj: Any) -> np.ndarray:
    """``obj`` as JSON text in a 0-d string array (how headers are stored in the ``.npz``)."""
    return np.array(json.dumps(obj))


def model_arrays(config: dict, params: dict[str, np.ndarray],
                 metadata: dict | None) -> dict[str, np.ndarray]:
    """The arrays of a model file: the ``__model__`` header and one array per parameter."""
    header = {"format": FORMAT, "version": FORMAT_VERSION, **config, "metadata": metadata or {}}
    return {"__model__": json_array(header), **params}


def write_model_file(path: str | Path, config: dict, params: dict[str, np.ndarray],
                     metadata: dict | None = None) -> None:
    """Write a model file atomically (see :meth:`cnnstep.nn.model.Sequential.save`)."""
    arrays = model_arrays(config, params, metadata)
    write_npz(path, arrays)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read without pickle; a :class:`DataError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        raise DataError(f"{path}: not a cnnstep model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a cnnstep model file ({exc})") from exc


def read_header(arrays: dict[str, np.ndarray], key: str, path: Path) -> dict:
    """The JSON object stored under ``key`` (``__model__``, ``__checkpoint__``)."""
    if key not in arrays:
        raise DataError(f"{path}: not a cnnstep {key.strip('_')} file (no {key} entry)")
    try:
        header = json.loads(str(arrays[key][()]))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: its {key} entry is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise DataError(f"{path}: its {key} entry must be a JSON object")
    return header


def model_header(arrays: dict[str, np.ndarray], path: Path) -> dict:
    """The ``__model__`` header, checked for format, version and input shape."""
    header = read_header(arrays, "__model__", path)
    if header.get("format") != FORMAT:
        raise DataError(f"{path}: not a cnnstep model file (format {header.get('format')!r})")
    if header.get("version", 0) > FORMAT_VERSION:
        raise DataError(
            f"{path}: model file version {header.get('version')} is newer than this cnnstep "
            f"reads ({FORMAT_VERSION}); upgrade cnnstep"
        )
    if not header.get("input_shape"):
        raise DataError(f"{path}: the model file does not record its input shape")
    return header


def copy_weights(expected: dict[str, np.ndarray], arrays: dict[str, np.ndarray],
                 path: Path) -> None:
    """Copy ``arrays`` into the model's parameters ``expected`` after checking every name,
    shape, dtype and value; arrays the model does not have are an error too."""
    for key, param in expected.items():
        if key not in arrays:
            raise DataError(f"{path}: weights {key} are missing")
        arr = arrays[key]
        if arr.shape != param.shape:
            raise DataError(
                f"{path}: weights {key} have shape {arr.shape}, the architecture needs "
                f"{param.shape}"
            )
        if arr.dtype.kind != "f":
            raise DataError(f"{path}: weights {key} must be floats, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{path}: weights {key} contain NaN or infinity")
        param[...] = arr
    unexpected = [k for k in arrays
                  if not k.startswith("__") and "/" not in k and k not in expected]
    if unexpected:
        raise DataError(f"{path}: unexpected arrays {', '.join(sorted(unexpected))}")
