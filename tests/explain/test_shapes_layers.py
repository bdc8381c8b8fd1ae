"""``explain shapes`` for the layers without windows and for the layers inside a Residual: the
statements it prints, run in PyTorch, give cnnstep's numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnstep import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LeakyReLU,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)
from cnnstep.explain.shapes import describe_shapes, layer_shapes

torch = pytest.importorskip("torch", reason="needs PyTorch (the test extra) as the oracle")
nn = torch.nn  # the printed statements are evaluated with this name


def _statement(lines, framework="PyTorch"):
    (line,) = [x for x in lines if x.startswith(f"{framework}: ")]
    return line.split(": ", 1)[1]


def _run(statement, x_nhwc):
    first = statement.split(" then ")[0].split(" (")[0]
    modules = [eval(first, {"nn": nn})]  # noqa: S307 - our own printed statement
    if " then " in statement:
        modules.append(eval(statement.split(" then ")[1], {"nn": nn}))  # noqa: S307
    out = torch.nn.Sequential(*modules)(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2)))
    out = out.detach().numpy()
    return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out


@pytest.mark.parametrize("layer", [
    ZeroPadding2D(((1, 2), (0, 3))), ZeroPadding2D(2), GlobalAvgPool2D(), GlobalMaxPool2D(),
    LeakyReLU(0.2), Sigmoid(), Tanh(), BatchNorm2D(momentum=0.9, epsilon=1e-4),
])
def test_the_printed_pytorch_statement_computes_the_same(layer):
    model = Sequential([layer], (5, 4, 3), seed=0, dtype=np.float64)
    (shape,) = layer_shapes(model)
    assert shape.output_shape == model.output_shape
    x = np.random.default_rng(0).normal(1.0, 2.0, (2, 5, 4, 3))
    statement = _statement(shape.lines)
    if isinstance(layer, BatchNorm2D):  # training mode: the batch's statistics
        mod = eval(statement.split(" (")[0], {"nn": nn}).double()  # noqa: S307
        got = mod(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
        np.testing.assert_allclose(layer.forward(x, training=True), got.transpose(0, 2, 3, 1),
                                   rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(layer.state["moving_mean"], mod.running_mean.numpy(),
                                   rtol=1e-12)
        return
    np.testing.assert_allclose(layer.forward(x), _run(statement, x), rtol=1e-7, atol=1e-12)


def test_zero_padding_lines_state_the_sizes_and_the_keras_and_onnx_pads():
    model = Sequential([ZeroPadding2D(((1, 2), (0, 3)))], (5, 4, 3))
    (shape,) = layer_shapes(model)
    assert shape.lines[:3] == ("n_H: 5 + 1 + 2 = 8", "n_W: 4 + 0 + 3 = 7",
                               "top 1, bottom 2, left 0, right 3")
    assert "ZeroPadding2D(((1, 2), (0, 3)))" in _statement(shape.lines, "TensorFlow/Keras")
    assert _statement(shape.lines, "ONNX") == 'Pad(mode="constant", pads=[0, 0, 1, 0, 0, 0, 2, 3])'


def test_the_layers_inside_a_residual_follow_it_indented_by_their_path():
    model = Sequential([
        Conv2D(4, 3), Residual([Conv2D(4, 3, stride=2), BatchNorm2D()],
                               shortcut=[Conv2D(4, 1, stride=2, padding="valid")]),
        ReLU(), Flatten(), Dense(1),
    ], (6, 6, 1), seed=0)
    shapes = layer_shapes(model)
    assert [s.index for s in shapes] == ["0", "1", "1.main.0", "1.main.1", "1.shortcut.0", "2",
                                         "3", "4"]
    inner = {s.index: s for s in shapes}
    assert inner["1.main.0"].input_shape == (6, 6, 4)
    assert inner["1.main.1"].input_shape == (3, 3, 4)
    assert inner["1.shortcut.0"].output_shape == (3, 3, 4)
    text = describe_shapes(model)
    assert "\n   1.main.0. Conv2D(4, 3x3, same, stride 2x2): (6, 6, 4) -> (3, 3, 4)\n" in text
    assert re.search(r"1\. Residual.*\n   output = main\(x\) \+ shortcut\(x\)", text)
    assert "one unit: a binary classifier" in text
