"""Keras export: :func:`to_keras` (a Keras 3 model), :func:`save_keras` (a ``.keras`` file that
``keras.models.load_model`` reads as it is) and :func:`weights_from_keras` (the way back).

The model is made of Keras's built-in layers only, so loading it needs no code of ours (and
passes ``safe_mode``). Each cnnstep layer becomes the Keras layers that compute exactly what it
computes, on every Keras backend:

- ``Conv2D``: ``ZeroPadding2D`` with the pads cnnstep resolved (``"same"`` included: Keras's own
  ``"same"`` is not the same on every backend), then a ``"valid"`` ``Conv2D``. Keras refuses a
  stride and a dilation together: that convolution runs with stride 1 and a ``MaxPooling2D`` of
  size 1 keeps every ``stride``-th output (an exact subsampling).
- ``MaxPool2D`` / ``AvgPool2D`` with padding: cnnstep's padded windows never count a padded cell
  (the maximum never sees it, the mean divides by the real cells). Keras has no such explicit
  padding (and its torch backend pads ``"same"`` average pooling by replicating edges), so the
  windows clipped at a border are computed by ``"valid"`` poolings over ``Cropping2D`` crops of
  the input, and ``Concatenate`` puts the pieces together (see
  :func:`cnnstep.interop.layout.pool_segments`). Without padding: one pooling layer.
- ``ReLU``, ``Dropout``, ``Flatten`` (channels last, cnnstep's order), ``Dense``,
  ``ZeroPadding2D``, ``LeakyReLU``, ``BatchNorm2D`` (``BatchNormalization``, same momentum and
  epsilon), ``GlobalAvgPool2D`` / ``GlobalMaxPool2D`` (``GlobalAveragePooling2D`` /
  ``GlobalMaxPooling2D``), ``Sigmoid`` and ``Tanh`` (``Activation``): their Keras namesakes.
  ``Residual``: its paths, then ``Add``.
- A model with class scores ends in a ``softmax`` activation named ``probabilities``; a binary
  classifier (one output) in a ``sigmoid`` one (one column: class 1's probability).

Layers are named explicitly (``conv2d``, ``conv2d_1``, ``dense``, ... per type, in order; the
helper layers of a cnnstep layer carry its name with a suffix), so the names never depend on what
a Keras session built before. They are the names of the safetensors files in Keras layout.

Adding a layer type is one function registered with :func:`keras_export`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from cnnstep.interop.extras import MissingExtraError
from cnnstep.interop.layout import keras_layer_names, pool_segments, resolved_pads
from cnnstep.interop.weights import keras_names, load_state_dict, tensors_of
from cnnstep.nn.layers import (
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)
from cnnstep.nn.model import Sequential

#: The start of the warning NumPy 2 gives when Keras's torch backend converts a tensor.
NUMPY2_COPY_WARNING = "__array__ implementation doesn't accept a copy keyword"

#: How each layer type becomes Keras layers: ``export(graph, layer, x, name) -> output``.
KERAS_EXPORTS: dict[type[Layer], Callable[[KerasGraph, Any, Any, str], Any]] = {}


def keras_export(*types: type[Layer]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the Keras export of ``types``."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for t in types:
            KERAS_EXPORTS[t] = fn
        return fn
    return register


def import_keras() -> ModuleType:
    """``keras``, or a one-line :class:`MissingExtraError` saying what to install or set."""
    if importlib.util.find_spec("keras") is None:
        raise MissingExtraError("Keras export needs keras: pip install 'cnnstep[keras]' "
                                "(and a backend: torch, jax or tensorflow)")
    try:
        return importlib.import_module("keras")
    except ImportError as exc:
        backend = os.environ.get("KERAS_BACKEND", "the one in ~/.keras/keras.json")
        raise MissingExtraError(
            f"keras is installed but cannot load its backend ({backend}): {exc}; install that "
            "backend or set KERAS_BACKEND to one that is installed (torch, jax or tensorflow)"
        ) from exc


def pick_keras_backend() -> str | None:
    """Before Keras is first imported, with ``KERAS_BACKEND`` unset, set it to an installed
    backend when the configured one (TensorFlow by default) is not installed. For processes
    cnnstep owns (the CLI); returns the backend set, or None when nothing was changed."""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return None
    import json

    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        configured = str(json.loads(config.read_text(encoding="utf-8")).get("backend"))
    except (OSError, ValueError, AttributeError):
        configured = "tensorflow"
    if importlib.util.find_spec(configured) is not None:
        return None
    for backend in ("torch", "jax", "tensorflow"):
        if importlib.util.find_spec(backend) is not None:
            os.environ["KERAS_BACKEND"] = backend
            return backend
    return None


def to_numpy(keras: ModuleType, value: Any) -> np.ndarray:
    """A backend tensor as a NumPy array."""
    if hasattr(value, "detach"):  # a torch tensor: Keras's own conversion warns on NumPy 2
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(keras.ops.convert_to_numpy(value))


class KerasGraph:
    """What the layer exports share while a Keras model is built: Keras, names, dtype."""

    def __init__(self, keras: ModuleType, names: dict[int, str]) -> None:
        self.keras = keras
        self.names = names

    def add(self, kind: str, name: str, x: Any, weights: list[np.ndarray] | None = None,
            **config: Any) -> Any:
        """Apply a new ``keras.layers.<kind>`` named ``name`` to ``x``; set its ``weights``."""
        layer = getattr(self.keras.layers, kind)(name=name, dtype="float32", **config)
        out = layer(x)
        if weights is not None:
            layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
        return out

    def weights(self, layer: Layer) -> list[np.ndarray]:
        """``layer``'s arrays in the order Keras's layer holds them (Keras layout)."""
        return [t.value for t in tensors_of(layer, "keras").values()]

    def run(self, layers: list[Layer], x: Any, where: str = "layer") -> Any:
        """Apply the Keras export of each of ``layers`` in turn."""
        for i, layer in enumerate(layers):
            export = KERAS_EXPORTS.get(type(layer))
            if export is None:
                known = ", ".join(sorted(t.__name__ for t in KERAS_EXPORTS))
                raise ValueError(
                    f"{where} {i} ({layer.describe()}) has no exact Keras equivalent (Keras "
                    f"export knows {known}); export the model to ONNX instead "
                    "(cnnstep export --format onnx)")
            x = export(self, layer, x, self.names[id(layer)])
        return x


@keras_export(Conv2D)
def _conv(g: KerasGraph, layer: Conv2D, x: Any, name: str) -> Any:
    pads = resolved_pads(layer)
    if any(pads[0]) or any(pads[1]):
        x = g.add("ZeroPadding2D", f"{name}_pad", x, padding=pads)
    split = max(layer.stride) > 1 and max(layer.dilation) > 1  # Keras refuses both at once
    x = g.add("Conv2D", name, x, weights=g.weights(layer), filters=layer.filters,
              kernel_size=layer.kernel_size, strides=(1, 1) if split else layer.stride,
              padding="valid", dilation_rate=layer.dilation)
    if split:  # every stride-th output of the stride-1 convolution
        x = g.add("MaxPooling2D", f"{name}_stride", x, pool_size=(1, 1), strides=layer.stride,
                  padding="valid")
    return x


@keras_export(MaxPool2D, AvgPool2D)
def _pool(g: KerasGraph, layer: MaxPool2D | AvgPool2D, x: Any, name: str) -> Any:
    kind = "MaxPooling2D" if isinstance(layer, MaxPool2D) else "AveragePooling2D"
    n_H, n_W, _ = layer.input_shape or (0, 0, 0)
    (pad_h, pad_w) = resolved_pads(layer)
    rows = pool_segments(n_H, layer.pool_size[0], layer.stride[0], pad_h)
    cols = pool_segments(n_W, layer.pool_size[1], layer.stride[1], pad_w)
    bands = []
    for r, rs in enumerate(rows):
        pieces = []
        for c, cs in enumerate(cols):
            piece = name if len(rows) == len(cols) == 1 else f"{name}_r{r}c{c}"
            crop = ((rs.start, n_H - rs.start - rs.length), (cs.start, n_W - cs.start - cs.length))
            y = g.add("Cropping2D", f"{piece}_crop", x, cropping=crop) \
                if any(crop[0]) or any(crop[1]) else x
            pieces.append(g.add(kind, piece, y, pool_size=(rs.kernel, cs.kernel),
                                strides=(rs.stride, cs.stride), padding="valid"))
        band = name if len(rows) == 1 else f"{name}_r{r}"
        bands.append(pieces[0] if len(pieces) == 1 else
                     g.add("Concatenate", band, pieces, axis=2))
    return bands[0] if len(bands) == 1 else g.add("Concatenate", name, bands, axis=1)


@keras_export(ReLU)
def _relu(g: KerasGraph, layer: ReLU, x: Any, name: str) -> Any:
    return g.add("ReLU", name, x)


@keras_export(Dropout)
def _dropout(g: KerasGraph, layer: Dropout, x: Any, name: str) -> Any:
    return g.add("Dropout", name, x, rate=layer.rate)  # the identity at inference, as cnnstep


@keras_export(Flatten)
def _flatten(g: KerasGraph, layer: Flatten, x: Any, name: str) -> Any:
    return g.add("Flatten", name, x)  # channels last: cnnstep's order, Dense rows as they are


@keras_export(Dense)
def _dense(g: KerasGraph, layer: Dense, x: Any, name: str) -> Any:
    return g.add("Dense", name, x, weights=g.weights(layer), units=layer.units)


@keras_export(BatchNorm2D)
def _batch_norm(g: KerasGraph, layer: BatchNorm2D, x: Any, name: str) -> Any:
    # the same meaning of momentum and epsilon (cnnstep's are Keras's)
    return g.add("BatchNormalization", name, x, weights=g.weights(layer), axis=-1,
                 momentum=layer.momentum, epsilon=layer.epsilon)


@keras_export(ZeroPadding2D)
def _zero_padding(g: KerasGraph, layer: ZeroPadding2D, x: Any, name: str) -> Any:
    return g.add("ZeroPadding2D", name, x, padding=layer.padding)


@keras_export(Sigmoid, Tanh)
def _activation(g: KerasGraph, layer: Sigmoid | Tanh, x: Any, name: str) -> Any:
    return g.add("Activation", name, x, activation=layer.name.lower())


@keras_export(LeakyReLU)
def _leaky_relu(g: KerasGraph, layer: LeakyReLU, x: Any, name: str) -> Any:
    return g.add("LeakyReLU", name, x, negative_slope=layer.alpha)


@keras_export(GlobalAvgPool2D, GlobalMaxPool2D)
def _global_pool(g: KerasGraph, layer: GlobalAvgPool2D | GlobalMaxPool2D, x: Any,
                 name: str) -> Any:
    kind = "GlobalAveragePooling2D" if isinstance(layer, GlobalAvgPool2D) \
        else "GlobalMaxPooling2D"
    return g.add(kind, name, x)


@keras_export(Residual)
def _residual(g: KerasGraph, layer: Residual, x: Any, name: str) -> Any:
    main = g.run(layer.main, x, f"layer {name}: main path layer")
    shortcut = g.run(layer.shortcut, x, f"layer {name}: shortcut layer")
    return g.add("Add", name, [main, shortcut])


def to_keras(model: Sequential, *, probabilities: bool = True) -> Any:
    """The Keras 3 model computing what ``model`` computes (see the module docstring).

    Parameters
    ----------
    model : Sequential
        Built. Its weights are copied (float32).
    probabilities : bool, default True
        End a model with class scores in a softmax named ``probabilities`` (what
        ``model.predict_proba`` gives), a binary classifier (one output) in a sigmoid (Keras's
        way: one column, the probability of class 1); False: the logits.

    Returns
    -------
    keras.Model
        Input ``input``, float32 of shape (batch, n_H, n_W, n_C) (NHWC, as cnnstep).

    Raises
    ------
    ValueError
        A model that is not built, or a layer with no exact Keras equivalent (named, with the
        advice to export to ONNX).
    MissingExtraError
        Without Keras, or without the backend Keras is set to use.
    """
    if not model.built:
        raise ValueError("model is not built: build it (or train it) before exporting")
    keras = import_keras()
    graph = KerasGraph(keras, keras_layer_names(model.layers))
    inputs = keras.Input(shape=model.input_shape, name="input", dtype="float32")
    x = graph.run(model.layers, inputs)
    if probabilities and model.output_shape == (1,):  # binary: the logit of class 1
        x = graph.add("Activation", "probabilities", x, activation="sigmoid")
    elif probabilities and len(model.output_shape or ()) == 1:
        x = graph.add("Activation", "probabilities", x, activation="softmax")
    return keras.Model(inputs, x, name="cnnstep")


def save_keras(model: Sequential, path: str | Path, *, probabilities: bool = True) -> Path:
    """Write :func:`to_keras` of ``model`` to a ``.keras`` file (atomically); returns the path.

    ``keras.models.load_model(path)`` reads it as it is, on any Keras backend.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"path must end in .keras (Keras reads no other model file), got {path}")
    keras_model = to_keras(model, probabilities=probabilities)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keras saves to a path ending in .keras only: a fresh folder beside the target, then one
    # rename into place, so a reader never sees half a file and a failure leaves the old one
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        staged = Path(tmp) / "model.keras"
        with warnings.catch_warnings():
            # Keras's torch backend converts tensors with np.array(), which NumPy 2 deprecates
            warnings.filterwarnings("ignore", NUMPY2_COPY_WARNING, DeprecationWarning)
            keras_model.save(staged)
        os.replace(staged, path)
    return path


def weights_from_keras(model: Sequential, source: Any) -> Sequential:
    """Copy the weights of a Keras model made by :func:`to_keras` (and maybe trained since) into
    ``model`` (built, same architecture); returns ``model``.

    Parameters
    ----------
    source : keras.Model or str or Path
        The Keras model, or a ``.keras`` file (loaded with ``keras.saving.load_model``, safe
        mode). Its layers are found by name; shapes are checked before anything is copied.
    """
    if not model.built:
        raise ValueError("model is not built: build it before loading weights")
    keras = import_keras()
    label = "Keras model"
    if isinstance(source, (str, Path)):
        label = str(source)
        source = keras.saving.load_model(str(source), compile=False, safe_mode=True)
    arrays: dict[str, np.ndarray] = {}
    for name in keras_names(model).values():
        try:
            layer = source.get_layer(name)
        except ValueError:
            continue  # load_state_dict names what is missing
        for weight in layer.weights:
            arrays[weight.path] = to_numpy(keras, weight.value)
    return load_state_dict(model, arrays, "keras", source=label)
