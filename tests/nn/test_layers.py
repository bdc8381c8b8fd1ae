"""Layers: numerical gradient checks of every layer, shapes, dtypes, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    gradient_check,
)
from cnnstep.nn.layers import layer_from_config

TOL = 1e-6

LAYER_CASES = [
    (lambda: Conv2D(3, 3, padding="same"), (5, 6, 2)),
    (lambda: Conv2D(4, 3, stride=2, padding="same"), (7, 6, 3)),
    (lambda: Conv2D(2, (2, 3), stride=(1, 2), padding=1, dilation=2), (6, 7, 2)),
    (lambda: Conv2D(2, 2, padding="valid"), (4, 5, 1)),
    (lambda: Conv2D(2, 3, padding=((0, 1), (2, 0))), (5, 5, 2)),
    (lambda: MaxPool2D(2), (4, 6, 3)),
    (lambda: MaxPool2D(3, stride=2, padding="same"), (5, 5, 2)),
    (lambda: MaxPool2D((2, 3), stride=1), (4, 5, 2)),
    (lambda: AvgPool2D(2), (4, 4, 2)),
    (lambda: AvgPool2D(3, stride=2, padding="same"), (5, 6, 2)),
    (lambda: ReLU(), (3, 4, 2)),
    (lambda: Flatten(), (2, 3, 4)),
    (lambda: Dense(5), (7,)),
    (lambda: Dropout(0.4), (12,)),
    (lambda: Dropout(0.3), (3, 3, 2)),
]


@pytest.mark.parametrize("make, shape", LAYER_CASES)
def test_layer_gradients_match_finite_differences(make, shape):
    layer = make()
    layer.build(shape, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((3, *shape))
    errors = gradient_check(layer, x, max_entries=None)
    assert set(errors) == {"x", *layer.params}
    for name, err in errors.items():
        assert err < TOL, (layer.describe(), name, err)


class _WrongDense(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] * 1.01
        return dx


def test_gradient_check_detects_a_wrong_gradient():
    layer = _WrongDense(3)
    layer.build((4,), np.random.default_rng(0))
    errors = gradient_check(layer, np.random.default_rng(1).standard_normal((2, 4)))
    assert errors["W"] > 1e-3 and errors["x"] < TOL


@pytest.mark.parametrize("make, shape", LAYER_CASES)
def test_float32_in_float32_out(make, shape):
    layer = make()
    layer.build(shape, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and y.shape == (2, *layer.output_shape)
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    for k, g in layer.grads.items():
        assert g.dtype == np.float32 and g.shape == layer.params[k].shape


def test_conv_output_shapes_and_he_init():
    conv = Conv2D(64, 3, stride=2, padding="same")
    assert conv.build((28, 28, 8), np.random.default_rng(0)) == (14, 14, 64)
    W = conv.params["W"]
    assert W.shape == (3, 3, 8, 64) and conv.params["b"].shape == (1, 1, 1, 64)
    assert abs(W.std() - np.sqrt(2 / 72)) < 0.01
    assert not conv.params["b"].any()
    assert MaxPool2D(8, stride=8, padding="same").build((28, 28, 8), None) == (4, 4, 8)


def test_dropout_is_identity_at_inference_and_scales_in_training():
    layer = Dropout(0.5)
    layer.build((1000,), np.random.default_rng(0))
    x = np.ones((4, 1000), dtype=np.float32)
    assert layer.forward(x) is x
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6


@pytest.mark.parametrize("layer", [
    Conv2D(4, (2, 3), stride=(1, 2), padding=((0, 1), (1, 1)), dilation=2),
    MaxPool2D(3, stride=2, padding="same"), AvgPool2D(2), ReLU(), Flatten(), Dense(3),
    Dropout(0.25),
])
def test_config_round_trip(layer):
    import json

    spec = json.loads(json.dumps({"type": layer.name, "config": layer.get_config()}))
    again = layer_from_config(spec)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()


def test_bad_layer_arguments_raise():
    with pytest.raises(ValueError, match="filters"):
        Conv2D(0)
    with pytest.raises(TypeError, match="kernel_size"):
        Conv2D(2, kernel_size="3")
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="Flatten"):
        Dense(3).build((4, 4, 1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown layer type"):
        layer_from_config({"type": "Conv3D", "config": {}})
    with pytest.raises(RuntimeError, match="forward"):
        ReLU().backward(np.ones((1, 2)))
    with pytest.raises(ValueError):
        Conv2D(2, 5, padding="valid").build((3, 3, 1), np.random.default_rng(0))


@pytest.mark.parametrize("make, shape", LAYER_CASES)
def test_backward_without_input_gradient_keeps_parameter_gradients(make, shape):
    layer = make()
    layer.build(shape, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((3, *shape))
    out = layer.forward(x, training=True)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    dx = layer.backward(dout)
    assert dx.shape == x.shape
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert layer.backward(dout, need_input_grad=False) is None
    assert set(layer.grads) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(layer.grads[name], g, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- fused paths vs the plain ops


def test_conv_layer_with_kept_windows_matches_the_ops_step_after_step():
    """Few input channels: the layer keeps its forward's window matrix and refills it the next
    step; its gradients stay those of conv_backward on the same data."""
    from cnnstep.ops.kernels.conv import conv_backward

    rng = np.random.default_rng(0)
    layer = Conv2D(4, 3, padding="same")
    layer.build((6, 6, 3), rng)
    for _ in range(3):
        x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
        dout = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
        layer.forward(x, training=True)
        dx = layer.backward(dout)
        want = conv_backward(dout, (x, layer.params["W"], layer.params["b"], layer.hparameters))
        for got, ref in zip((dx, layer.grads["W"], layer.grads["b"]), want):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert layer.backward(dout, need_input_grad=False) is None  # twice after one forward
    np.testing.assert_allclose(layer.grads["W"], want[1], rtol=1e-5, atol=1e-5)


def test_conv_layer_copies_do_not_share_the_spare_window_buffer():
    import copy

    rng = np.random.default_rng(1)
    layer = Conv2D(2, 3)
    layer.build((5, 5, 1), rng)
    layer.forward(np.ones((1, 5, 5, 1), np.float32), training=True)
    layer.backward(np.ones((1, 5, 5, 2), np.float32))
    clone = copy.copy(layer)
    assert clone.params["W"] is layer.params["W"]
    assert clone._spare is None and layer._spare is not None


def test_max_pool_layer_backward_from_its_output_matches_the_op():
    from cnnstep.ops.kernels.pool import pool_backward, pool_forward

    rng = np.random.default_rng(2)
    for n_C in (3, 16):
        x = np.round(rng.standard_normal((2, 8, 8, n_C))).astype(np.float32)  # ties
        layer = MaxPool2D(2)
        layer.build(x.shape[1:], rng)
        out = layer.forward(x, training=True)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        _, cache = pool_forward(x, layer.hparameters, "max")
        np.testing.assert_array_equal(layer.backward(dout), pool_backward(dout, cache, "max"))
