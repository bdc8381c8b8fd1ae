"""``explain shapes``: the padding it reports, applied in PyTorch, gives cnnstep's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnstep import AvgPool2D, Conv2D, Flatten, MaxPool2D, Sequential, conv_forward
from cnnstep.explain.shapes import describe_shapes, layer_shapes

torch = pytest.importorskip("torch", reason="needs PyTorch (the test extra) as the oracle")
F = torch.nn.functional

PADS = st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                 st.tuples(st.integers(0, 2), st.integers(0, 2)),
                 st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                           st.tuples(st.integers(0, 2), st.integers(0, 2))))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(5, 9), w=st.integers(5, 9), f=st.integers(1, 3), s=st.integers(1, 3),
       d=st.integers(1, 2), pad=PADS)
def test_reported_padding_applied_in_torch_gives_cnnsteps_convolution(h, w, f, s, d, pad):
    model = Sequential([Conv2D(2, f, stride=s, padding=pad, dilation=d)], (h, w, 3), seed=0,
                       dtype=np.float64)
    (shape,) = layer_shapes(model)
    (t, b), (lt, r) = shape.geometry.pad
    x = np.random.default_rng(0).standard_normal((1, h, w, 3))
    W, bias = model.layers[0].params["W"], model.layers[0].params["b"]
    ours, _ = conv_forward(x, W, bias, model.layers[0].hparameters)
    xt = F.pad(torch.from_numpy(x).permute(0, 3, 1, 2), (lt, r, t, b))
    theirs = F.conv2d(xt, torch.from_numpy(W).permute(3, 2, 0, 1),
                      torch.from_numpy(bias.reshape(-1)), stride=s, dilation=d)
    assert tuple(theirs.shape[2:]) == shape.output_shape[:2] == ours.shape[1:3]
    assert np.allclose(theirs.permute(0, 2, 3, 1).numpy(), ours)
    # the formula lines state the same numbers
    assert shape.lines[0].endswith(f"= {shape.output_shape[0]}")
    assert shape.lines[1].endswith(f"= {shape.output_shape[1]}")
    onnx_pads = f"pads=[{t}, {lt}, {b}, {r}]"
    assert any(onnx_pads in line for line in shape.lines)


def test_same_with_an_even_kernel_puts_the_extra_cell_last_and_names_each_framework():
    model = Sequential([Conv2D(4, 4, padding="same"), MaxPool2D(3, stride=2, padding="same"),
                        AvgPool2D(2, padding=((1, 0), (1, 0))), Flatten()], (8, 8, 1), seed=0)
    conv, maxpool, avg, _ = layer_shapes(model)
    assert conv.geometry.pad == ((1, 2), (1, 2))
    text = "\n".join(conv.lines)
    assert "top 1, bottom 2, left 1, right 2" in text
    assert "F.pad(x, (1, 2, 1, 2))" in text and 'padding="same"' in text
    assert "pads=[1, 1, 2, 2]" in text
    assert "value=float('-inf')" in "\n".join(maxpool.lines) or "padding=" in maxpool.lines[3]
    assert "count_include_pad=0" in "\n".join(avg.lines)
    assert "none matches" in avg.lines[4] and "no exact equivalent" in avg.lines[3]
    assert describe_shapes(model).startswith("input (8, 8, 1)\n0. Conv2D(4, 4x4, same)")
