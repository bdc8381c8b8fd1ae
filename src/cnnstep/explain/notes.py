"""What ``explain shapes`` says about the layers without windows: how the output size comes out
and the same layer in PyTorch, TensorFlow/Keras and ONNX (NCHW there, NHWC here)."""

from __future__ import annotations

from typing import Any

from cnnstep.nn.layers import (
    BatchNorm2D,
    Dense,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LeakyReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)

Shape = tuple[int, ...]


def _padding(layer: ZeroPadding2D, shape: Shape) -> list[str]:
    (t, b), (lt, r) = layer.padding
    n_H, n_W = shape[:2]
    keras = f"ZeroPadding2D({t})" if t == b == lt == r else f"ZeroPadding2D((({t}, {b}), " \
                                                              f"({lt}, {r})))"
    return [f"n_H: {n_H} + {t} + {b} = {n_H + t + b}", f"n_W: {n_W} + {lt} + {r} = {n_W + lt + r}",
            f"top {t}, bottom {b}, left {lt}, right {r}",
            f"PyTorch: nn.ZeroPad2d(({lt}, {r}, {t}, {b}))",
            f"TensorFlow/Keras: {keras}",
            f'ONNX: Pad(mode="constant", pads=[0, 0, {t}, {lt}, 0, 0, {b}, {r}])']


def _batch_norm(layer: BatchNorm2D, shape: Shape) -> list[str]:
    n_C = shape[-1]
    eps = f"{layer.epsilon:g}"
    return [f"y = gamma * (x - mean) / sqrt(var + {eps}) + beta, for each of the {n_C} channels",
            f"training: mean and variance of the batch's m x {shape[0]} x {shape[1]} values; "
            "inference: the running ones",
            f"running statistics: new = {layer.momentum:g} * old + {1 - layer.momentum:g} * batch",
            f"PyTorch: nn.BatchNorm2d({n_C}, eps={eps}, momentum={1 - layer.momentum:g}) "
            "(its running_var follows the unbiased variance)",
            f"TensorFlow/Keras: BatchNormalization(axis=-1, momentum={layer.momentum:g}, "
            f"epsilon={eps})",
            f"ONNX: BatchNormalization(epsilon={eps}) (inference, with the running statistics)"]


def _global(layer: Any, shape: Shape) -> list[str]:
    word, torch_name, keras, onnx = (
        ("mean", "AdaptiveAvgPool2d", "GlobalAveragePooling2D", "GlobalAveragePool")
        if isinstance(layer, GlobalAvgPool2D)
        else ("maximum", "AdaptiveMaxPool2d", "GlobalMaxPooling2D", "GlobalMaxPool"))
    return [f"the {word} of each {shape[0]} x {shape[1]} map: {shape[2]} values",
            f"PyTorch: nn.{torch_name}(1) then nn.Flatten()",
            f"TensorFlow/Keras: {keras}()", f"ONNX: {onnx} then Flatten"]


def _activation(layer: Any) -> list[str]:
    if isinstance(layer, LeakyReLU):
        a = f"{layer.alpha:g}"
        return [f"PyTorch: nn.LeakyReLU({a})", f"TensorFlow/Keras: LeakyReLU(negative_slope={a})",
                f"ONNX: LeakyRelu(alpha={a})"]
    name = "Sigmoid" if isinstance(layer, Sigmoid) else "Tanh"
    return [f"PyTorch: nn.{name}()", f'TensorFlow/Keras: Activation("{name.lower()}")',
            f"ONNX: {name}"]


def layer_notes(layer: Any, input_shape: Shape, last: bool) -> list[str]:
    """The explanation lines of a layer without windows (empty for those that need none)."""
    if isinstance(layer, ZeroPadding2D):
        return _padding(layer, input_shape)
    if isinstance(layer, BatchNorm2D):
        return _batch_norm(layer, input_shape)
    if isinstance(layer, (GlobalAvgPool2D, GlobalMaxPool2D)):
        return _global(layer, input_shape)
    if isinstance(layer, (LeakyReLU, Sigmoid, Tanh)):
        return _activation(layer)
    if isinstance(layer, Residual):
        short = "shortcut(x)" if layer.shortcut else "x (identity shortcut)"
        return [f"output = main(x) + {short}, the layers below; both give the same shape",
                "PyTorch: a module whose forward returns main(x) + shortcut(x)",
                "TensorFlow/Keras: layers.Add()([main, shortcut]) (functional API)",
                "ONNX: Add"]
    if isinstance(layer, Dense) and last and layer.units == 1:
        return ["one unit: a binary classifier; P(class 1) = sigmoid(logit), trained with "
                "binary cross-entropy on the logit",
                "PyTorch: nn.Linear then nn.BCEWithLogitsLoss",
                'TensorFlow/Keras: Dense(1, activation="sigmoid"), loss "binary_crossentropy"']
    return []
