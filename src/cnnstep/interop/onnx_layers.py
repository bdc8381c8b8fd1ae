"""The ONNX graph being written (:class:`OnnxGraph`) and how each layer type becomes ONNX nodes:
one small function per layer type, registered with :func:`onnx_export`.

Image layers compute on NCHW tensors (the graph transposes cnnstep's NHWC input once);
``Flatten`` transposes back to NHWC first, so the values come out in cnnstep's order. The
weights are initializers named ``"<layer path>.<array>"`` (:mod:`cnnstep.interop.weights`,
``"onnx"`` layout). The ``onnx`` module is handed in by the caller: nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from cnnstep.interop.layout import resolved_pads
from cnnstep.interop.weights import tensors_of
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

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]

#: How each layer type becomes ONNX nodes: ``export(graph, layer, x, key) -> output name``,
#: where ``key`` is the layer's path (``"3"``, ``"4.main.0"``).
ONNX_EXPORTS: dict[type[Layer], Callable[[OnnxGraph, Any, str, str], str]] = {}


def onnx_export(*types: type[Layer]) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register the decorated function as the ONNX export of ``types``."""
    def register(fn: Callable[..., str]) -> Callable[..., str]:
        for t in types:
            ONNX_EXPORTS[t] = fn
        return fn
    return register


def onnx_pads(pads: tuple[tuple[int, int], tuple[int, int]]) -> list[int]:
    """cnnstep's ``((top, bottom), (left, right))`` as ONNX ``[top, left, bottom, right]``."""
    (t, b), (left, r) = pads
    return [t, left, b, r]


class OnnxGraph:
    """The nodes and initializers being written, and whether the current tensor is NCHW."""

    def __init__(self, onnx: ModuleType) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.nchw = False
        self._count = 0

    def const(self, name: str, array: np.ndarray, dtype: Any = np.float32) -> str:
        """An initializer ``name`` holding ``array`` (float32 unless told)."""
        self.inits.append(self.onnx.numpy_helper.from_array(
            np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def weights(self, layer: Layer, key: str) -> list[str]:
        """The initializers of ``layer``'s arrays, in the order its operator takes them."""
        return [self.const(f"{key}.{name}", t.value)
                for name, t in tensors_of(layer, "onnx").items()]

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        """A node ``op`` on ``inputs``; returns the name of its output."""
        out = f"{stem}_{self._count}"
        self._count += 1
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def run(self, layers: list[Layer], x: str, prefix: str = "") -> str:
        """Apply the ONNX export of each of ``layers`` to ``x`` in turn."""
        for i, layer in enumerate(layers):
            export = ONNX_EXPORTS.get(type(layer))
            if export is None:
                known = ", ".join(sorted(t.__name__ for t in ONNX_EXPORTS))
                raise ValueError(f"layer {prefix}{i} ({layer.describe()}) has no ONNX export; "
                                 f"exportable: {known}")
            x = export(self, layer, x, f"{prefix}{i}")
        return x


@onnx_export(Conv2D)
def _conv(g: OnnxGraph, layer: Conv2D, x: str, key: str) -> str:
    return g.node("Conv", [x, *g.weights(layer, key)], f"{key}_conv",
                  kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                  dilations=list(layer.dilation), pads=onnx_pads(resolved_pads(layer)))


@onnx_export(MaxPool2D)
def _max_pool(g: OnnxGraph, layer: MaxPool2D, x: str, key: str) -> str:
    return g.node("MaxPool", [x], f"{key}_maxpool", kernel_shape=list(layer.pool_size),
                  strides=list(layer.stride), pads=onnx_pads(resolved_pads(layer)))


@onnx_export(AvgPool2D)
def _avg_pool(g: OnnxGraph, layer: AvgPool2D, x: str, key: str) -> str:
    return g.node("AveragePool", [x], f"{key}_avgpool", kernel_shape=list(layer.pool_size),
                  strides=list(layer.stride), pads=onnx_pads(resolved_pads(layer)),
                  count_include_pad=0)


@onnx_export(ReLU)
def _relu(g: OnnxGraph, layer: ReLU, x: str, key: str) -> str:
    return g.node("Relu", [x], f"{key}_relu")


@onnx_export(Sigmoid)
def _sigmoid(g: OnnxGraph, layer: Sigmoid, x: str, key: str) -> str:
    return g.node("Sigmoid", [x], f"{key}_sigmoid")


@onnx_export(Tanh)
def _tanh(g: OnnxGraph, layer: Tanh, x: str, key: str) -> str:
    return g.node("Tanh", [x], f"{key}_tanh")


@onnx_export(LeakyReLU)
def _leaky_relu(g: OnnxGraph, layer: LeakyReLU, x: str, key: str) -> str:
    return g.node("LeakyRelu", [x], f"{key}_leakyrelu", alpha=layer.alpha)


@onnx_export(Dropout)
def _dropout(g: OnnxGraph, layer: Dropout, x: str, key: str) -> str:
    return g.node("Identity", [x], f"{key}_dropout")  # inverted dropout: nothing at inference


@onnx_export(Flatten)
def _flatten(g: OnnxGraph, layer: Flatten, x: str, key: str) -> str:
    if g.nchw:  # back to NHWC first: the values come out in cnnstep's order
        x, g.nchw = g.node("Transpose", [x], f"{key}_to_nhwc", perm=TO_NHWC), False
    return g.node("Flatten", [x], f"{key}_flatten", axis=1)


@onnx_export(Dense)
def _dense(g: OnnxGraph, layer: Dense, x: str, key: str) -> str:
    return g.node("Gemm", [x, *g.weights(layer, key)], f"{key}_dense")


@onnx_export(BatchNorm2D)
def _batch_norm(g: OnnxGraph, layer: BatchNorm2D, x: str, key: str) -> str:
    # inference: gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta, per channel
    return g.node("BatchNormalization", [x, *g.weights(layer, key)], f"{key}_batchnorm",
                  epsilon=layer.epsilon)


@onnx_export(ZeroPadding2D)
def _zero_padding(g: OnnxGraph, layer: ZeroPadding2D, x: str, key: str) -> str:
    (t, b), (left, r) = layer.padding
    pads = g.const(f"{key}_pads", np.array([0, 0, t, left, 0, 0, b, r]), np.int64)
    return g.node("Pad", [x, pads], f"{key}_pad", mode="constant")


@onnx_export(GlobalAvgPool2D, GlobalMaxPool2D)
def _global_pool(g: OnnxGraph, layer: GlobalAvgPool2D | GlobalMaxPool2D, x: str,
                 key: str) -> str:
    op = "GlobalAveragePool" if isinstance(layer, GlobalAvgPool2D) else "GlobalMaxPool"
    x = g.node(op, [x], f"{key}_{op.lower()}")  # (m, n_C, 1, 1)
    g.nchw = False  # (m, n_C): channels, in cnnstep's order
    return g.node("Flatten", [x], f"{key}_flatten", axis=1)


@onnx_export(Residual)
def _residual(g: OnnxGraph, layer: Residual, x: str, key: str) -> str:
    start = g.nchw
    main = g.run(layer.main, x, f"{key}.main.")
    main_nchw, g.nchw = g.nchw, start
    shortcut = g.run(layer.shortcut, x, f"{key}.shortcut.") if layer.shortcut else x
    if g.nchw != main_nchw:
        raise ValueError(f"layer {key} ({layer.name}): its paths end in different layouts "
                         "(one flattens, the other does not)")
    return g.node("Add", [main, shortcut], f"{key}_add")
