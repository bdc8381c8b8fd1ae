"""Weights in safetensors files, named and laid out as PyTorch or Keras expect.

``layout="torch"``: the state dict of the model's PyTorch twin, an ``nn.Sequential`` with one
module per cnnstep layer (``nn.Conv2d``, ``nn.ReLU``, ``nn.MaxPool2d``, ``nn.AvgPool2d``,
``nn.Flatten``, ``nn.Dropout``, ``nn.Linear``) fed NCHW images: keys ``"<layer index>.weight"``
and ``"<layer index>.bias"``, kernels OIHW, Linear weights ``(out, in)``, and the rows of a
Linear fed by a Flatten in PyTorch's channels-first flatten order.

``layout="keras"``: Keras's default layer names (``conv2d``, ``conv2d_1``, ..., ``dense``,
``dense_1``, ...), keys ``"<name>/kernel"`` and ``"<name>/bias"``; kernels HWIO, Dense kernels
``(in, out)``, channels-last flatten order: cnnstep's own layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnstep.errors import DataError
from cnnstep.fileio import atomic_write
from cnnstep.interop.extras import require
from cnnstep.interop.layout import (
    dense_from_torch,
    dense_to_torch,
    flattened_inputs,
    hwio_to_oihw,
    keras_layer_names,
    oihw_to_hwio,
)
from cnnstep.nn.layers import Conv2D, Dense
from cnnstep.nn.model import Sequential

LAYOUTS = ("torch", "keras")


def _check(model: Sequential, layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not model.built:
        raise ValueError("model is not built: build it (or train it) first")
    for i, layer in enumerate(model.layers):
        if layer.params and not isinstance(layer, (Conv2D, Dense)):
            raise ValueError(f"layer {i} ({layer.describe()}) has parameters that the {layout} "
                             "layout does not name (only Conv2D and Dense)")


def keras_names(model: Sequential) -> dict[int, str]:
    """``{layer index: Keras name}`` for the layers with weights (the names of
    :func:`cnnstep.interop.layout.keras_layer_names`, which :func:`cnnstep.interop.to_keras`
    gives its layers)."""
    names = keras_layer_names(model.layers)
    return {i: names[id(layer)] for i, layer in enumerate(model.layers)
            if isinstance(layer, (Conv2D, Dense))}


def _keys(model: Sequential, layout: str) -> dict[int, tuple[str, str]]:
    """``{layer index: (weight key, bias key)}``."""
    if layout == "torch":
        return {i: (f"{i}.weight", f"{i}.bias")
                for i, layer in enumerate(model.layers) if isinstance(layer, (Conv2D, Dense))}
    return {i: (f"{n}/kernel", f"{n}/bias") for i, n in keras_names(model).items()}


def state_dict(model: Sequential, layout: str = "torch") -> dict[str, np.ndarray]:
    """The model's weights as ``{name: float32 array}`` in ``layout`` (see the module docstring).

    Parameters
    ----------
    model : Sequential
        Built.
    layout : {"torch", "keras"}
    """
    _check(model, layout)
    flat = flattened_inputs(model)
    out: dict[str, np.ndarray] = {}
    for i, (wkey, bkey) in _keys(model, layout).items():
        layer = model.layers[i]
        W, b = layer.params["W"], layer.params["b"].reshape(-1)
        if layout == "torch":
            W = hwio_to_oihw(W) if isinstance(layer, Conv2D) else dense_to_torch(W, flat.get(i))
        out[wkey] = np.ascontiguousarray(W, dtype=np.float32)
        out[bkey] = np.ascontiguousarray(b, dtype=np.float32)
    return out


def load_state_dict(model: Sequential, arrays: dict[str, np.ndarray], layout: str = "torch",
                    *, source: str = "state dict") -> Sequential:
    """Copy ``arrays`` (named and shaped as :func:`state_dict` gives them) into ``model``.

    Every key must be there with the right shape and nothing else may be; on any mismatch the
    model is left unchanged and a :class:`~cnnstep.errors.DataError` names the key (``source``
    names the file in the message).
    """
    _check(model, layout)
    expected = state_dict(model, layout)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise DataError(f"{source}: the tensors do not fit this model in {layout} layout: "
                        f"{'; '.join(parts)}")
    for key, want in expected.items():
        got = np.asarray(arrays[key])
        if got.shape != want.shape:
            raise DataError(f"{source}: tensor {key!r} has shape {got.shape}, the model needs "
                            f"{want.shape} ({layout} layout)")
        if got.dtype.kind != "f":
            raise DataError(f"{source}: tensor {key!r} holds {got.dtype}, expected floats")
        if not np.all(np.isfinite(got)):
            raise DataError(f"{source}: tensor {key!r} holds NaN or infinite values")
    flat = flattened_inputs(model)
    new: dict[tuple[int, str], np.ndarray] = {}
    for i, (wkey, bkey) in _keys(model, layout).items():
        layer = model.layers[i]
        W = np.asarray(arrays[wkey])
        if layout == "torch":
            W = oihw_to_hwio(W) if isinstance(layer, Conv2D) else dense_from_torch(W, flat.get(i))
        new[i, "W"] = W
        new[i, "b"] = np.asarray(arrays[bkey]).reshape(layer.params["b"].shape)
    for (i, name), value in new.items():  # all checked: now change the model
        model.layers[i].params[name][...] = value.astype(model.dtype)
    return model


def save_weights(model: Sequential, path: str | Path, layout: str = "torch") -> Path:
    """Write the model's weights to a safetensors file (atomically) in ``layout``."""
    st = require("safetensors.numpy", "safetensors", "safetensors weights")
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
        arrays = st.load(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise DataError(f"{path}: not a safetensors file ({exc})") from exc
    return load_state_dict(model, arrays, layout, source=str(path))
