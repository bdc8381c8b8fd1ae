"""Where cnnstep's arrays go in frameworks that compute in NCHW.

cnnstep computes on NHWC images with HWIO kernels and flattens ``(n_H, n_W, n_C)`` in that
order. PyTorch and ONNX compute on NCHW images with OIHW kernels, and ``nn.Flatten`` there reads
channels first, so a Dense layer fed by a Flatten sees its inputs in another order: its rows must
be permuted. Keras (channels last) matches cnnstep except for names.
"""

from __future__ import annotations

import numpy as np

from cnnstep.nn.layers import Conv2D, Dense, Dropout, Flatten, Layer, Pool2D, ReLU
from cnnstep.nn.model import Sequential
from cnnstep.ops.geometry import Pad2D, conv_geometry, pool_geometry

#: Layers that keep the shape and the order of their input (the order a Flatten produced).
ELEMENTWISE = (ReLU, Dropout)


def _stand_in(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only array of ``shape`` that allocates nothing, for the geometry checks."""
    return np.broadcast_to(np.empty((), dtype=np.float32), shape)


def resolved_pads(layer: Layer) -> Pad2D:
    """The padding ``((top, bottom), (left, right))`` a built Conv2D or pooling layer applies.

    ``"same"`` depends on the input size (the smaller half goes on top/left, as TensorFlow and
    ONNX ``SAME_UPPER``); exporters write these numbers rather than a mode name.
    """
    if layer.input_shape is None:
        raise ValueError(f"{layer.describe()} is not built: build the model first")
    x = _stand_in((0, *layer.input_shape))
    if isinstance(layer, Conv2D):
        W = layer.params["W"]
        return conv_geometry(x, W, layer.params["b"], layer.hparameters).pad
    if isinstance(layer, Pool2D):
        return pool_geometry(x, layer.hparameters).pad
    raise TypeError(f"{layer.name} has no padding")


def flattened_inputs(model: Sequential) -> dict[int, tuple[int, int, int]]:
    """``{index of a Dense layer: (n_H, n_W, n_C)}`` for each Dense fed by a Flatten of an image
    (through element-wise layers only): the Dense layers whose rows depend on the flatten order."""
    found: dict[int, tuple[int, int, int]] = {}
    source: tuple[int, int, int] | None = None
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Flatten):
            shape = layer.input_shape or ()
            source = (shape[0], shape[1], shape[2]) if len(shape) == 3 else None
        elif isinstance(layer, Dense):
            if source is not None:
                found[i] = source
            source = None
        elif not isinstance(layer, ELEMENTWISE):
            source = None
    return found


def hwio_to_oihw(W: np.ndarray) -> np.ndarray:
    """Conv kernel ``(f_h, f_w, n_C_prev, n_C)`` -> ``(n_C, n_C_prev, f_h, f_w)``."""
    return np.ascontiguousarray(W.transpose(3, 2, 0, 1))


def oihw_to_hwio(W: np.ndarray) -> np.ndarray:
    """Conv kernel ``(n_C, n_C_prev, f_h, f_w)`` -> ``(f_h, f_w, n_C_prev, n_C)``."""
    return np.ascontiguousarray(W.transpose(2, 3, 1, 0))


def dense_to_torch(W: np.ndarray, image: tuple[int, int, int] | None) -> np.ndarray:
    """Dense ``W`` of shape ``(n_in, units)`` as ``nn.Linear.weight`` ``(units, n_in)``.

    With ``image = (n_H, n_W, n_C)`` the rows, in cnnstep's ``(h, w, c)`` flatten order, are put
    in PyTorch's ``(c, h, w)`` order.
    """
    if image is not None:
        n_H, n_W, n_C = image
        W = W.reshape(n_H, n_W, n_C, -1).transpose(2, 0, 1, 3).reshape(n_H * n_W * n_C, -1)
    return np.ascontiguousarray(W.T)


def dense_from_torch(weight: np.ndarray, image: tuple[int, int, int] | None) -> np.ndarray:
    """The inverse of :func:`dense_to_torch`: ``(units, n_in)`` -> ``(n_in, units)``."""
    W = weight.T
    if image is not None:
        n_H, n_W, n_C = image
        W = W.reshape(n_C, n_H, n_W, -1).transpose(1, 2, 0, 3).reshape(n_H * n_W * n_C, -1)
    return np.ascontiguousarray(W)
