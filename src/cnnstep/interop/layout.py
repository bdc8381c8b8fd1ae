"""Where cnnstep's arrays go in frameworks that compute in NCHW.

cnnstep computes on NHWC images with HWIO kernels and flattens ``(n_H, n_W, n_C)`` in that
order. PyTorch and ONNX compute on NCHW images with OIHW kernels, and ``nn.Flatten`` there reads
channels first, so a Dense layer fed by a Flatten sees its inputs in another order: its rows must
be permuted. Keras (channels last) matches cnnstep except for names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

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
    Pool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)
from cnnstep.ops.geometry import Pad2D, conv_geometry, pool_geometry

#: Layers that keep the shape and the order of their input (the order a Flatten produced).
ELEMENTWISE = (ReLU, Dropout, Sigmoid, Tanh, LeakyReLU)

#: The stem of each layer's name in Keras (Keras's own default for its counterpart): a model's
#: layers are named ``conv2d``, ``conv2d_1``, ... ``dense``, ... in order, in the ``.keras``
#: files of :func:`cnnstep.interop.to_keras` and in safetensors files in Keras layout alike.
KERAS_STEMS: dict[type[Layer], str] = {
    Conv2D: "conv2d", Dense: "dense", MaxPool2D: "max_pooling2d", AvgPool2D: "average_pooling2d",
    ReLU: "re_lu", Dropout: "dropout", Flatten: "flatten", BatchNorm2D: "batch_normalization",
    ZeroPadding2D: "zero_padding2d", Sigmoid: "activation", Tanh: "activation",
    LeakyReLU: "leaky_re_lu", GlobalAvgPool2D: "global_average_pooling2d",
    GlobalMaxPool2D: "global_max_pooling2d", Residual: "add",
}


def layer_paths(layers: Sequence[Layer], prefix: str = "") -> Iterator[tuple[str, Layer]]:
    """``(path, layer)`` for each layer and, after it, each layer it contains, depth first: the
    path is the prefix of its arrays' keys in model files (``"4"``, ``"4.main.0"``)."""
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}"
        yield path, layer
        for name, inner in layer.paths().items():
            yield from layer_paths(inner, f"{path}.{name}.")


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


def flattened_inputs(layers: Sequence[Layer]) -> dict[int, tuple[int, int, int]]:
    """``{id(layer): (n_H, n_W, n_C)}`` for each Dense fed by a Flatten of an image (through
    element-wise layers only), in ``layers`` and the layers they contain: the Dense layers whose
    rows depend on the flatten order."""
    found: dict[int, tuple[int, int, int]] = {}
    source: tuple[int, int, int] | None = None
    for layer in layers:
        if isinstance(layer, Flatten):
            shape = layer.input_shape or ()
            source = (shape[0], shape[1], shape[2]) if len(shape) == 3 else None
        elif isinstance(layer, Dense):
            if source is not None:
                found[id(layer)] = source
            source = None
        elif not isinstance(layer, ELEMENTWISE):
            source = None
        for inner in layer.paths().values():
            found.update(flattened_inputs(inner))
    return found


def keras_layer_names(layers: Sequence[Layer]) -> dict[int, str]:
    """``{id(layer): name}``: Keras-style names, numbered per stem in the order of ``layers``
    and the layers they contain (``conv2d``, ``conv2d_1``, ...), the same in every process and
    session."""
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for _, layer in layer_paths(layers):
        stem = KERAS_STEMS.get(type(layer), type(layer).__name__.lower())
        k = seen.get(stem, 0)
        seen[stem] = k + 1
        names[id(layer)] = stem if k == 0 else f"{stem}_{k}"
    return names


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


class Segment(NamedTuple):
    """Outputs of a padded pooling along one axis that one unpadded pooling computes: the cells
    ``[start, start + length)`` of the input, pooled by windows of ``kernel`` every ``stride``
    cells, give ``n_out`` outputs."""

    start: int
    length: int
    kernel: int
    stride: int
    n_out: int


def pool_segments(n: int, kernel: int, stride: int, pads: tuple[int, int]) -> list[Segment]:
    """A padded pooling along one axis as unpadded poolings over crops of the input, in order.

    Each window is clipped to the real cells it covers, so a pooling over those cells alone gives
    what cnnstep gives: the maximum never sees padding, and the mean divides by the real cells.
    Windows that lie wholly inside form one segment; each clipped window at either border is a
    segment of one output whose kernel is the clipped window (frameworks without explicit
    asymmetric pooling pads compute it so, with their own unpadded pooling).

    Parameters
    ----------
    n : int
        Input size along the axis.
    kernel, stride : int
    pads : (before, after)
        Each smaller than ``kernel`` (as cnnstep's pooling requires).
    """
    before, after = pads
    n_out = (n + before + after - kernel) // stride + 1
    segments: list[Segment] = []
    for i in range(n_out):
        lo, hi = i * stride - before, i * stride - before + kernel  # window, input coordinates
        a, b = max(lo, 0), min(hi, n)
        if b <= a:
            raise ValueError(f"a pooling window of {kernel} at output {i} holds no real cell")
        last = segments[-1] if segments else None
        if (a, b) == (lo, hi) and last is not None and last.kernel == kernel \
                and last.start + last.n_out * stride == a:
            # one more whole window after whole ones: the same pooling, one cell row longer
            segments[-1] = last._replace(length=b - last.start, n_out=last.n_out + 1)
        else:
            segments.append(Segment(a, b - a, b - a, stride, 1))
    return segments
