"""The layers beside Conv2D/pooling/Dense: gradient checks, dtypes, configs, exact semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnstep import (
    BatchNorm2D,
    Conv2D,
    Dense,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LeakyReLU,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
    gradient_check,
)
from cnnstep.nn.architectures import convolutional_block, identity_block
from cnnstep.nn.layers import layer_from_config

TOL = 1e-6

CASES = [
    (lambda: BatchNorm2D(), (3, 4, 2)),
    (lambda: BatchNorm2D(momentum=0.5, epsilon=1e-5), (2, 3, 3)),
    (lambda: ZeroPadding2D(2), (3, 4, 2)),
    (lambda: ZeroPadding2D(((1, 0), (2, 3))), (3, 2, 1)),
    (lambda: ZeroPadding2D((0, 1)), (2, 2, 2)),
    (lambda: Sigmoid(), (6,)),
    (lambda: Sigmoid(), (3, 2, 2)),
    (lambda: Tanh(), (3, 2, 2)),
    (lambda: LeakyReLU(0.2), (4, 3, 2)),
    (lambda: LeakyReLU(), (5,)),
    (lambda: GlobalAvgPool2D(), (3, 4, 2)),
    (lambda: GlobalMaxPool2D(), (3, 4, 2)),
    (lambda: Residual([Conv2D(2, 3), Tanh()]), (4, 4, 2)),
    (lambda: Residual(Dense(4), shortcut=Dense(4)), (3,)),
    (lambda: identity_block(2, (2, 3, 2)), (4, 4, 2)),
    (lambda: convolutional_block(3, (2, 2, 3), s=2), (5, 5, 2)),
]


def _errors_ok(layer, errors, x):
    """Every relative error below TOL; a parameter whose gradient is zero in exact arithmetic
    (a convolution's bias just before batch normalisation: the mean is taken out again) has
    only finite-difference noise on both sides, so there the absolute sizes are checked."""
    for name, err in errors.items():
        if err < TOL:
            continue
        assert name.endswith(".b"), (layer.describe(), name, err)
        layer.forward(x, training=True)
        layer.backward(np.ones((x.shape[0], *layer.output_shape)))
        assert np.abs(layer.grads[name]).max() < 1e-9, (layer.describe(), name)


@pytest.mark.parametrize("make, shape", CASES)
def test_gradients_match_finite_differences(make, shape):
    layer = make()
    layer.build(shape, np.random.default_rng(1), np.float64)
    x = np.random.default_rng(2).standard_normal((3, *shape))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks of the (leaky) ReLU
    errors = gradient_check(layer, x, max_entries=None, seed=7)
    assert set(errors) == {"x", *layer.params}
    _errors_ok(layer, errors, x)


@pytest.mark.parametrize("make, shape", CASES)
def test_float32_in_float32_out_and_shapes(make, shape):
    layer = make()
    layer.build(shape, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    for training in (False, True):
        y = layer.forward(x, training=training)
        assert y.dtype == np.float32 and y.shape == (2, *layer.output_shape)
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    for k, g in layer.grads.items():
        assert g.dtype == np.float32 and g.shape == layer.params[k].shape


@pytest.mark.parametrize("make, shape", CASES)
def test_backward_without_input_gradient_gives_the_same_parameter_gradients(make, shape):
    layer = make()
    layer.build(shape, np.random.default_rng(1), np.float64)
    x = np.random.default_rng(2).standard_normal((3, *shape))
    out = layer.forward(x, training=True)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    assert layer.backward(dout).shape == x.shape
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert layer.backward(dout, need_input_grad=False) is None
    assert set(layer.grads) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(layer.grads[name], g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", CASES)
def test_config_round_trip_through_json(make, shape):
    layer = make()
    spec = json.loads(json.dumps({"type": layer.name, "config": layer.get_config()}))
    again = layer_from_config(spec)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    assert again.describe() == layer.describe()
    layer.build(shape, np.random.default_rng(0))
    assert again.build(shape, np.random.default_rng(0)) == layer.output_shape


def test_zero_padding_puts_zeros_around_and_crops_the_gradient():
    x = np.arange(12.0).reshape(1, 2, 3, 2)
    layer = ZeroPadding2D(((1, 2), (0, 1)))
    assert layer.build((2, 3, 2), None) == (5, 4, 2)
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y[:, 1:3, 0:3], x)
    assert y.sum() == x.sum() and y.base is not x
    dy = np.random.default_rng(0).standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy[:, 1:3, 0:3])
    assert ZeroPadding2D(0).forward(x) is not x


def test_global_pools_reduce_each_map():
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 2))
    np.testing.assert_allclose(GlobalAvgPool2D().forward(x), x.mean(axis=(1, 2)), rtol=1e-14)
    np.testing.assert_array_equal(GlobalMaxPool2D().forward(x), x.max(axis=(1, 2)))
    # ties: the gradient goes to the first maximum in row-major order, once
    layer = GlobalMaxPool2D()
    ties = np.ones((1, 2, 2, 1))
    assert layer.forward(ties, training=True).shape == (1, 1)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1)))[0, :, :, 0], [[1, 0], [0, 0]])


def test_sigmoid_is_exact_in_both_tails_and_never_overflows():
    x = np.array([[-800.0, -40.0, 0.0, 40.0, 800.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = Sigmoid().forward(x)
        s32 = Sigmoid().forward(x.astype(np.float32))
    np.testing.assert_allclose(s, [[0.0, np.exp(-40.0), 0.5, 1.0, 1.0]], rtol=1e-15, atol=0)
    assert s32.dtype == np.float32 and s32[0, 1] == np.float32(np.exp(-40.0))


def test_leaky_relu_slope_and_its_gradient_at_zero():
    layer = LeakyReLU(0.25)
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(layer.forward(x, training=True), [[-0.5, 0.0, 3.0]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.25, 0.25, 1.0]])
    assert LeakyReLU().alpha == 0.01
    assert np.array_equal(LeakyReLU(0.0).forward(x), ReLU().forward(x))


@pytest.mark.parametrize("make, error, match", [
    (lambda: LeakyReLU(-0.1), ValueError, "alpha"),
    (lambda: LeakyReLU(float("nan")), ValueError, "alpha"),
    (lambda: LeakyReLU("0.1"), TypeError, "alpha"),
    (lambda: BatchNorm2D(momentum=1.5), ValueError, "momentum"),
    (lambda: BatchNorm2D(epsilon=0), ValueError, "epsilon"),
    (lambda: BatchNorm2D(epsilon=None), TypeError, "epsilon"),
    (lambda: ZeroPadding2D(-1), ValueError, "padding"),
    (lambda: ZeroPadding2D("same"), ValueError, "padding"),
    (lambda: Residual([]), ValueError, "at least one layer"),
    (lambda: Residual("ReLU"), TypeError, "layers"),
    (lambda: Residual([ReLU(), 3]), TypeError, "Layer instances"),
])
def test_bad_arguments_are_refused_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("layer, shape", [
    (BatchNorm2D(), (4,)), (ZeroPadding2D(1), (4,)), (GlobalAvgPool2D(), (4, 4)),
    (GlobalMaxPool2D(), (4,)),
])
def test_map_layers_refuse_flat_inputs(layer, shape):
    with pytest.raises(ValueError, match=r"\(n_H, n_W, n_C\)"):
        layer.build(shape, np.random.default_rng(0))


def test_backward_before_a_training_forward_says_so():
    for layer in (BatchNorm2D(), ZeroPadding2D(), Sigmoid(), Tanh(), LeakyReLU(),
                  GlobalAvgPool2D(), GlobalMaxPool2D()):
        layer.build((2, 2, 1), np.random.default_rng(0))
        layer.forward(np.ones((1, 2, 2, 1)), training=False)
        with pytest.raises(RuntimeError, match="forward"):
            layer.backward(np.ones((1, *layer.output_shape)))


@pytest.mark.parametrize("make, shape", [c for c in CASES if len(c[1]) == 3])
def test_model_file_round_trip(make, shape, tmp_path):
    from cnnstep import Flatten, Sequential, load_model

    model = Sequential([make(), Flatten(), Dense(2)], shape, seed=3)
    x = np.random.default_rng(4).standard_normal((5, *shape)).astype(np.float32)
    model.forward(x, training=True)  # moves any running statistics away from their start
    model.save(tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert again.get_config() == json.loads(json.dumps(model.get_config()))
    assert set(again.named_arrays()) == set(model.named_arrays())
    for key, value in model.named_arrays().items():
        np.testing.assert_array_equal(again.named_arrays()[key], value)
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
