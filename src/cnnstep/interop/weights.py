"""Weights in safetensors files, named and laid out as PyTorch or Keras expect; the layout of
each layer type's arrays in every framework (one small function per layer type).

``layout="torch"``: the state dict of :func:`cnnstep.interop.to_torch`'s module (one module per
cnnstep layer, fed NCHW images): keys ``"<layer path>.<tensor>"`` (``"0.weight"``,
``"4.main.1.running_mean"``), kernels OIHW, Linear weights ``(out, in)``, the rows of a Linear
fed by a Flatten in PyTorch's channels-first flatten order, and for batch normalisation
``weight``, ``bias``, ``running_mean``, ``running_var`` (and ``num_batches_tracked``, written as
0 and ignored when read).

``layout="keras"``: the layer names of :func:`cnnstep.interop.to_keras` (``conv2d``,
``conv2d_1``, ..., ``dense``, ..., ``batch_normalization``, ...), keys ``"<name>/kernel"`` and
``"<name>/bias"`` (``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` for batch
normalisation); kernels HWIO, Dense kernels ``(in, out)``, channels-last flatten order:
cnnstep's own layout.

``layout="onnx"``: the initializers of :func:`cnnstep.interop.to_onnx`: cnnstep's own keys
(``"<layer path>.<array>"``, as in model files), convolution kernels OIHW.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnstep.budget import check_bytes
from cnnstep.errors import DataError
from cnnstep.fileio import atomic_write
from cnnstep.interop.extras import require
from cnnstep.interop.layout import (
    dense_from_torch,
    dense_to_torch,
    flattened_inputs,
    hwio_to_oihw,
    keras_layer_names,
    layer_paths,
    oihw_to_hwio,
)
from cnnstep.nn.layers import BatchNorm2D, Conv2D, Dense, Layer
from cnnstep.nn.model import Sequential

LAYOUTS = ("torch", "keras")
_ALL_LAYOUTS = (*LAYOUTS, "onnx")


class Tensor(NamedTuple):
    """One array of a layer as a framework holds it: ``value``, and where it comes from in the
    layer (``kind`` "params" or "state", ``name``; None for a framework's own bookkeeping that
    cnnstep does not keep), with ``back`` turning a framework's array into cnnstep's."""

    value: np.ndarray
    kind: str | None = None
    name: str | None = None
    back: Callable[[np.ndarray], np.ndarray] | None = None


#: ``{layer type: tensors(layer, layout, image) -> {tensor name: Tensor}}``; ``image`` is the
#: (n_H, n_W, n_C) a Dense reads through a Flatten, or None.
WEIGHT_LAYOUTS: dict[type[Layer], Callable[[Any, str, Any], dict[str, Tensor]]] = {}


def weight_layout(*types: type[Layer]) -> Callable[[Callable[..., dict[str, Tensor]]],
                                                   Callable[..., dict[str, Tensor]]]:
    """Register the decorated function as the weight layout of ``types``."""
    def register(fn: Callable[..., dict[str, Tensor]]) -> Callable[..., dict[str, Tensor]]:
        for t in types:
            WEIGHT_LAYOUTS[t] = fn
        return fn
    return register


@weight_layout(Conv2D)
def _conv(layer: Conv2D, layout: str, image: Any) -> dict[str, Tensor]:
    W, b = layer.params["W"], layer.params["b"].reshape(-1)
    if layout == "keras":
        return {"kernel": Tensor(W, "params", "W"), "bias": Tensor(b, "params", "b")}
    names = ("weight", "bias") if layout == "torch" else ("W", "b")
    return {names[0]: Tensor(hwio_to_oihw(W), "params", "W", oihw_to_hwio),
            names[1]: Tensor(b, "params", "b")}


@weight_layout(Dense)
def _dense(layer: Dense, layout: str, image: Any) -> dict[str, Tensor]:
    W, b = layer.params["W"], layer.params["b"]
    if layout == "torch":
        return {"weight": Tensor(dense_to_torch(W, image), "params", "W",
                                 lambda w: dense_from_torch(w, image)),
                "bias": Tensor(b, "params", "b")}
    names = ("kernel", "bias") if layout == "keras" else ("W", "b")
    return {names[0]: Tensor(W, "params", "W"), names[1]: Tensor(b, "params", "b")}


@weight_layout(BatchNorm2D)
def _batch_norm(layer: BatchNorm2D, layout: str, image: Any) -> dict[str, Tensor]:
    arrays = [("params", "gamma"), ("params", "beta"), ("state", "moving_mean"),
              ("state", "moving_variance")]
    names = {"torch": ["weight", "bias", "running_mean", "running_var"],
             "keras": ["gamma", "beta", "moving_mean", "moving_variance"],
             "onnx": ["gamma", "beta", "moving_mean", "moving_variance"]}[layout]
    out = {n: Tensor(getattr(layer, kind)[name], kind, name)
           for n, (kind, name) in zip(names, arrays)}
    if layout == "torch":  # PyTorch counts its training steps; cnnstep keeps no such count
        out["num_batches_tracked"] = Tensor(np.zeros((), np.int64))
    return out


def tensors_of(layer: Layer, layout: str, image: Any = None) -> dict[str, Tensor]:
    """The arrays of ``layer`` (built, with arrays of its own) in ``layout``."""
    fn = WEIGHT_LAYOUTS.get(type(layer))
    if fn is None:
        known = ", ".join(sorted(t.__name__ for t in WEIGHT_LAYOUTS))
        raise ValueError(f"{layer.describe()} has arrays that the {layout} layout does not name "
                         f"(it names those of {known})")
    return fn(layer, layout, image)


def _walk(model: Sequential, layout: str) -> Iterator[tuple[str, Layer, dict[str, Tensor]]]:
    """``(key prefix, layer, tensors)`` for each layer with arrays of its own."""
    if layout not in _ALL_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not model.built:
        raise ValueError("model is not built: build it (or train it) first")
    flat = flattened_inputs(model.layers)
    names = keras_layer_names(model.layers)
    for path, layer in layer_paths(model.layers):
        if layer.paths() or not (layer.params or layer.state):
            continue  # a container's arrays are its layers'
        try:
            tensors = tensors_of(layer, layout, flat.get(id(layer)))
        except ValueError as exc:
            raise ValueError(f"layer {path} ({exc})") from None
        yield (f"{names[id(layer)]}/" if layout == "keras" else f"{path}."), layer, tensors


def keras_names(model: Sequential) -> dict[str, str]:
    """``{layer path: Keras name}`` for the layers with arrays (the names
    :func:`cnnstep.interop.to_keras` gives its layers; see
    :func:`cnnstep.interop.layout.keras_layer_names`)."""
    names = keras_layer_names(model.layers)
    return {path: names[id(layer)] for path, layer in layer_paths(model.layers)
            if (layer.params or layer.state) and not layer.paths()}


def state_dict(model: Sequential, layout: str = "torch") -> dict[str, np.ndarray]:
    """The model's weights (and running statistics) as ``{name: array}`` in ``layout`` (see the
    module docstring): float32, except PyTorch's int64 ``num_batches_tracked``.

    Parameters
    ----------
    model : Sequential
        Built.
    layout : {"torch", "keras"}
    """
    out: dict[str, np.ndarray] = {}
    for prefix, _, tensors in _walk(model, layout):
        for name, t in tensors.items():
            dtype = np.float32 if t.kind is not None else t.value.dtype
            out[prefix + name] = np.ascontiguousarray(t.value, dtype=dtype)
    return out


def load_state_dict(model: Sequential, arrays: dict[str, np.ndarray], layout: str = "torch",
                    *, source: str = "state dict") -> Sequential:
    """Copy ``arrays`` (named and shaped as :func:`state_dict` gives them) into ``model``.

    Every key must be there with the right shape and nothing else may be (PyTorch's
    ``num_batches_tracked`` may be left out); on any mismatch the model is left unchanged and a
    :class:`~cnnstep.errors.DataError` names the key (``source`` names the file in the message).
    """
    expected = {prefix + name: (layer, t) for prefix, layer, tensors in _walk(model, layout)
                for name, t in tensors.items()}
    missing = sorted(k for k, (_, t) in expected.items() if k not in arrays and t.kind)
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise DataError(f"{source}: the tensors do not fit this model in {layout} layout: "
                        f"{'; '.join(parts)}")
    new = []
    for key, (layer, t) in expected.items():
        if key not in arrays or t.kind is None or t.name is None:
            continue  # a framework's bookkeeping: not cnnstep's
        got = np.asarray(arrays[key])
        if got.shape != t.value.shape:
            raise DataError(f"{source}: tensor {key!r} has shape {got.shape}, the model needs "
                            f"{t.value.shape} ({layout} layout)")
        if got.dtype.kind != "f":
            raise DataError(f"{source}: tensor {key!r} holds {got.dtype}, expected floats")
        if not np.all(np.isfinite(got)):
            raise DataError(f"{source}: tensor {key!r} holds NaN or infinite values")
        target = getattr(layer, t.kind)[t.name]
        value = t.back(got) if t.back is not None else got
        new.append((target, np.reshape(value, target.shape)))
    for target, value in new:  # all checked: now change the model
        target[...] = value.astype(model.dtype)
    return model


def save_weights(model: Sequential, path: str | Path, layout: str = "torch") -> Path:
    """Write the model's weights to a safetensors file (atomically) in ``layout``."""
    st = require("safetensors.numpy", "safetensors", "safetensors weights")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    data = st.save(state_dict(model, layout),
                   metadata={"format": "pt" if layout == "torch" else "tf",
                             "cnnstep_layout": layout})
    path = Path(path)
    atomic_write(path, lambda f: f.write(data))
    return path


def load_weights(model: Sequential, path: str | Path, layout: str = "torch") -> Sequential:
    """Load a safetensors file of weights in ``layout`` into ``model`` (built); returns it.

    A PyTorch twin's ``state_dict()`` saved with ``safetensors.torch.save_file`` loads with
    ``layout="torch"``. The file is parsed by safetensors (no pickle); shapes are checked
    against the model before anything is copied.

    Raises
    ------
    DataError
        A missing or unreadable file, or tensors that do not fit the model.
    """
    st = require("safetensors.numpy", "safetensors", "safetensors weights")
    path = Path(path)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    try:
        check_bytes(2 * os.path.getsize(path), str(path))  # the file, then its arrays
        arrays = st.load(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except DataError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise DataError(f"{path}: not a safetensors file ({exc})") from exc
    return load_state_dict(model, arrays, layout, source=str(path))
