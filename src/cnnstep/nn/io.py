"""The model file: one ``.npz``, architecture as JSON inside, no pickle.

A model file holds the array ``__model__`` (a JSON string: layers, input shape, dtype, class
names, free-form metadata) and one array per parameter, named ``<layer index>.<name>``
(``0.W``, ``0.b``, ...). A checkpoint (:mod:`cnnstep.train.checkpoint`) is a model file plus more
entries. Files are written atomically and read with ``allow_pickle=False``;
every array's shape is checked against the architecture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.budget import check_bytes, check_shape
from cnnstep.errors import DataError
from cnnstep.fileio import check_regular, write_npz
from cnnstep.npzfile import NpzArchive
from cnnstep.ops.shapes import conv_output_shape, conv_window_geometry, pool_window_geometry

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


def read_npz(path: str | Path, kind: str = "cnnstep model file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read without pickle; a :class:`DataError` otherwise.

    Each member's declared sizes, and their total, are checked against the memory budget
    (:mod:`cnnstep.budget`) before anything is inflated; a member that is not an ``.npy`` array
    is an error.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    check_regular(path)  # a folder, FIFO or device: said so, never opened
    with NpzArchive(path, kind) as archive:
        total = sum(info.file_size for info in archive.members.values())
        check_bytes(total, f"{path} (all arrays together)")
        return {name: archive.read(name) for name in archive.members}


def read_header(arrays: dict[str, np.ndarray], key: str, path: Path) -> dict:
    """The JSON object stored under ``key`` (``__model__``, ``__checkpoint__``)."""
    if key not in arrays:
        raise DataError(f"{path}: not a cnnstep {key.strip('_')} file (no {key} entry)")
    raw = arrays[key]
    if raw.ndim != 0 or raw.dtype.kind not in "US":
        raise DataError(f"{path}: its {key} entry must be one JSON string, got {raw.dtype} "
                        f"of shape {raw.shape}")
    try:
        header = json.loads(str(raw[()]))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: its {key} entry is not valid JSON ({exc})") from exc
    except RecursionError:
        raise DataError(f"{path}: its {key} entry is nested too deeply") from None
    if not isinstance(header, dict):
        raise DataError(f"{path}: its {key} entry must be a JSON object")
    return header


def model_header(arrays: dict[str, np.ndarray], path: Path) -> dict:
    """The ``__model__`` header, checked for format, version, input shape, layers, class names
    and metadata (each a one-line DataError naming the field)."""
    header = read_header(arrays, "__model__", path)
    if header.get("format") != FORMAT:
        raise DataError(f"{path}: not a cnnstep model file (format {header.get('format')!r})")
    version = header.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise DataError(f"{path}: model file version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{path}: model file version {version} is newer than this cnnstep "
            f"reads ({FORMAT_VERSION}); upgrade cnnstep"
        )
    shape = header.get("input_shape")
    if not shape:
        raise DataError(f"{path}: the model file does not record its input shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise DataError(f"{path}: input_shape must be a list of positive integers, got {shape!r}")
    layers = header.get("layers")
    if not isinstance(layers, list) or not layers:
        raise DataError(f"{path}: layers must be a non-empty list, got {type(layers).__name__}")
    metadata = header.get("metadata", {})
    if metadata is not None and not isinstance(metadata, dict):
        raise DataError(f"{path}: metadata must be a JSON object, got {type(metadata).__name__}")
    names = header.get("class_names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
    ):
        raise DataError(f"{path}: class_names must be a list of strings, got {names!r}")
    if names is not None:
        check_class_names(names, path)
    if not isinstance(header.get("dtype", "float32"), str) or header.get(
        "dtype", "float32"
    ) not in ("float32", "float64"):
        raise DataError(f"{path}: dtype must be float32 or float64, got {header.get('dtype')!r}")
    check_shape([*shape], 8, f"{path}: input_shape {tuple(shape)}")
    return header


def check_class_names(names: list[str], path: Path) -> None:
    """DataError unless ``names`` are distinct, non-empty and at most 200 characters each (a
    prediction printed as a name must say which class it is). Control characters are allowed
    but escaped wherever the CLI prints them."""
    for name in names:
        if not name or len(name) > 200:
            raise DataError(f"{path}: class names must have 1 to 200 characters, got one of "
                            f"{len(name)}")
    if len(set(names)) != len(names):
        seen = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path}: class names must be distinct; repeated: "
                        f"{', '.join(map(repr, seen[:5]))}")


def check_architecture(layers: list[Any], input_shape: tuple[int, ...], itemsize: int,
                       path: Path) -> None:
    """Check every size the architecture declares against the memory budget, before building.

    Output shapes come from each layer's ``output_shape_for`` (geometry, no allocation); the
    weights of a layer with ``units`` (Dense) or ``filters`` and ``kernel_size`` (Conv2D) are
    counted from those. The layers inside a container (``Residual``) are checked the same way,
    and its paths must end in one shape.

    Parameters
    ----------
    layers : list of Layer
        Constructed, not built.
    input_shape : tuple of int
        One example's shape.
    itemsize : int
        Bytes per value (4 for float32).
    path : Path
        The model file, for messages.
    """
    shape = tuple(input_shape)
    for i, layer in enumerate(layers):
        shape = _check_layer(layer, shape, itemsize, path, f"layer {i}")


def _check_layer(layer: Any, shape: tuple[int, ...], itemsize: int, path: Path,
                 where: str) -> tuple[int, ...]:
    """The output shape of ``layer`` on ``shape``, its weights and output checked."""
    n_in = math.prod(shape)
    weights = 0
    conv = hasattr(layer, "filters") and hasattr(layer, "kernel_size")
    if hasattr(layer, "units"):
        weights = n_in * int(layer.units) + int(layer.units)
    elif conv:
        k_h, k_w = layer.kernel_size
        weights = (k_h * k_w * int(shape[-1]) + 1) * int(layer.filters)
    check_bytes(weights * itemsize * 3, f"{path}: {where} ({layer.describe()}) weights")
    try:
        if conv:
            k_h, k_w = layer.kernel_size
            w_shape = (k_h, k_w, int(shape[-1]), int(layer.filters))
            out = tuple(conv_output_shape(shape, w_shape, layer.hparameters, "Conv2D"))
        elif layer.paths():
            ends = {name: shape for name in ("main", "shortcut")}
            for name, inside in layer.paths().items():
                for j, sub in enumerate(inside):
                    ends[name] = _check_layer(sub, ends[name], itemsize, path,
                                              f"{where}.{name}.{j}")
            if len(set(ends.values())) > 1:
                raise ValueError(f"its paths end in different shapes {ends}")
            out = ends["main"]
        else:
            out = tuple(layer.output_shape_for(shape, np.float32))
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"{path}: {where} ({layer.describe()}) does not fit input {shape} ({exc})"
        ) from exc
    padded = _padded_input(layer, shape, conv)
    if padded is not None:  # zero_pad allocates it: dilation and "same" can make it huge
        check_shape(padded, itemsize, f"{path}: {where} ({layer.describe()}) padded input "
                                      f"{padded}")
    check_shape(out, itemsize, f"{path}: {where} ({layer.describe()}) output {out}")
    return out


def _padded_input(layer: Any, shape: tuple[int, ...], conv: bool) -> tuple[int, ...] | None:
    """The padded input a windowed layer (convolution, pooling) makes of ``shape``, or None."""
    hp = getattr(layer, "hparameters", None)
    if not isinstance(hp, dict) or "pad" not in hp or len(shape) != 3:
        return None
    if conv:
        k_h, k_w = layer.kernel_size
        geom = conv_window_geometry(shape, (k_h, k_w, int(shape[-1]), int(layer.filters)), hp,
                                    "Conv2D")
    else:
        geom = pool_window_geometry(shape, hp, layer.describe())
    (top, bottom), (left, right) = geom.pad
    return shape[0] + top + bottom, shape[1] + left + right, shape[2]


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
