"""Model and checkpoint files: one ``.npz`` each, architecture as JSON inside, no pickle.

A model file holds the array ``__model__`` (a JSON string: layers, input shape, dtype, class
names, free-form metadata) and one array per parameter, named ``<layer index>.<name>``
(``0.W``, ``0.b``, ...). A checkpoint is a model file plus ``__checkpoint__`` (JSON: training
progress, optimizer settings, random-generator state, metrics so far) and the optimizer's arrays
(``optimizer/m.0``, ...). Files are written atomically and read with ``allow_pickle=False``;
every array's shape is checked against the architecture.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from cnnstep.errors import DataError
from cnnstep.model import Sequential

FORMAT = "cnnstep-model"
FORMAT_VERSION = 1


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then move it into place.

    Readers never see a half-written file, and an interrupted write leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json_array(obj: Any) -> np.ndarray:
    return np.array(json.dumps(obj))


def _model_arrays(model: Sequential, metadata: dict | None) -> dict[str, np.ndarray]:
    if not model.built:
        raise ValueError("cannot save a model that is not built yet")
    header = {"format": FORMAT, "version": FORMAT_VERSION, **model.get_config(),
              "metadata": metadata or {}}
    return {"__model__": _json_array(header), **model.named_parameters()}


def save_model(model: Sequential, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``model`` (architecture, weights, class names, input shape) to ``path`` (.npz).

    Parameters
    ----------
    model : Sequential
        A built model.
    path : str or Path
        Destination; written atomically.
    metadata : dict, optional
        JSON-able extra information (e.g. the data set it was trained on).
    """
    arrays = _model_arrays(model, metadata)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _read_npz(path: str | Path) -> dict[str, np.ndarray]:
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


def _header(arrays: dict[str, np.ndarray], key: str, path: Path) -> dict:
    if key not in arrays:
        raise DataError(f"{path}: not a cnnstep {key.strip('_')} file (no {key} entry)")
    try:
        header = json.loads(str(arrays[key][()]))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: its {key} entry is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise DataError(f"{path}: its {key} entry must be a JSON object")
    return header


def _model_from_arrays(arrays: dict[str, np.ndarray], path: Path) -> tuple[Sequential, dict]:
    header = _header(arrays, "__model__", path)
    if header.get("format") != FORMAT:
        raise DataError(f"{path}: not a cnnstep model file (format {header.get('format')!r})")
    if header.get("version", 0) > FORMAT_VERSION:
        raise DataError(
            f"{path}: model file version {header.get('version')} is newer than this cnnstep "
            f"reads ({FORMAT_VERSION}); upgrade cnnstep"
        )
    if not header.get("input_shape"):
        raise DataError(f"{path}: the model file does not record its input shape")
    try:
        model = Sequential.from_config(header)
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"{path}: invalid architecture ({exc})") from exc
    expected = model.named_parameters()
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
    return model, header.get("metadata") or {}


def load_model(path: str | Path, *, with_metadata: bool = False):
    """Read a model written by :func:`save_model` (never unpickles anything).

    Parameters
    ----------
    path : str or Path
    with_metadata : bool, default False
        Also return the metadata dict.

    Returns
    -------
    Sequential, or (Sequential, dict) with ``with_metadata``

    Raises
    ------
    DataError
        If the file is missing, not a model file, or its weights do not fit its architecture.
    """
    path = Path(path)
    model, metadata = _model_from_arrays(_read_npz(path), path)
    return (model, metadata) if with_metadata else model


def save_checkpoint(
    path: str | Path,
    model: Sequential,
    optimizer,
    state: dict,
    arrays: dict[str, np.ndarray] | None = None,
    metadata: dict | None = None,
) -> None:
    """Write everything needed to continue training exactly where it stopped.

    Parameters
    ----------
    path : str or Path
    model : Sequential
    optimizer : Optimizer
    state : dict
        JSON-able training progress (epoch, batch, metrics so far, run settings).
    arrays : dict of ndarray, optional
        Extra arrays of the training progress (e.g. the epoch's shuffling order).
    metadata : dict, optional
        Stored as the model's metadata.
    """
    opt_scalars, opt_arrays = optimizer.state_dict()
    header = {
        "state": state,
        "optimizer": opt_scalars,
        "rng": model.rng.bit_generator.state,
    }
    out = _model_arrays(model, metadata)
    out["__checkpoint__"] = _json_array(header)
    out.update({f"optimizer/{k}": v for k, v in opt_arrays.items()})
    out.update({f"state/{k}": v for k, v in (arrays or {}).items()})
    atomic_write(path, lambda f: np.savez(f, **out))


def load_checkpoint(path: str | Path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    model : Sequential
        With its weights and its random generator's state restored.
    optimizer : Optimizer
        With its settings, step count and slot arrays restored.
    state : dict
        The training progress given to :func:`save_checkpoint`.
    arrays : dict of ndarray
        The extra arrays given to :func:`save_checkpoint`.
    metadata : dict
    """
    from cnnstep.optimizers import optimizer_from_config

    path = Path(path)
    raw = _read_npz(path)
    model, metadata = _model_from_arrays(raw, path)
    header = _header(raw, "__checkpoint__", path)
    try:
        opt_scalars = header["optimizer"]
        optimizer = optimizer_from_config(opt_scalars["type"], opt_scalars["config"])
        opt_arrays = {k[len("optimizer/"):]: v for k, v in raw.items()
                      if k.startswith("optimizer/")}
        optimizer.load_state_dict(opt_scalars, opt_arrays, model.parameters())
        model.rng.bit_generator.state = header["rng"]
        state = header["state"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: damaged checkpoint ({exc})") from exc
    arrays = {k[len("state/"):]: v for k, v in raw.items() if k.startswith("state/")}
    return model, optimizer, state, arrays, metadata
