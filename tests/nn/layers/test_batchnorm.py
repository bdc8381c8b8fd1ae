"""BatchNorm2D: Keras's momentum, running statistics as saved state, additive batch statistics."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnstep import BatchNorm2D, Conv2D, Dense, Flatten, ReLU, Sequential, load_model
from cnnstep.nn.layers.norm import BLOCK_ROWS, channel_sums


def _bn(shape=(3, 4, 2), dtype=np.float64, **kwargs):
    layer = BatchNorm2D(**kwargs)
    layer.build(shape, np.random.default_rng(0), dtype)
    return layer


def test_training_normalises_each_channel_with_the_batch_statistics():
    x = np.random.default_rng(1).normal(3.0, 2.0, (5, 3, 4, 2))
    layer = _bn()
    layer.params["gamma"][:] = [2.0, 0.5]
    layer.params["beta"][:] = [1.0, -1.0]
    y = layer.forward(x, training=True)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # biased, as Keras
    want = (x - mean) / np.sqrt(var + 1e-3) * [2.0, 0.5] + [1.0, -1.0]
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_running_statistics_follow_keras_momentum_and_serve_inference():
    rng = np.random.default_rng(2)
    layer = _bn(momentum=0.9)
    mm, mv = np.zeros(2), np.ones(2)
    for _ in range(3):
        x = rng.normal(1.0, 3.0, (4, 3, 4, 2))
        layer.forward(x, training=True)
        mm = 0.9 * mm + 0.1 * x.mean(axis=(0, 1, 2))
        mv = 0.9 * mv + 0.1 * x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(layer.state["moving_mean"], mm, rtol=1e-12)
    np.testing.assert_allclose(layer.state["moving_variance"], mv, rtol=1e-12)
    x = rng.standard_normal((2, 3, 4, 2))
    np.testing.assert_allclose(layer.forward(x), (x - mm) / np.sqrt(mv + 1e-3), rtol=1e-12)
    # inference leaves the state alone
    layer.forward(x)
    np.testing.assert_allclose(layer.state["moving_mean"], mm, rtol=1e-12)


def test_the_statistics_of_two_parts_add_up_to_the_whole_batch():
    x = np.random.default_rng(3).normal(50.0, 0.5, (7, 3, 4, 2)).astype(np.float32)
    whole, part_a, part_b = _bn(dtype=np.float32), _bn(dtype=np.float32), _bn(dtype=np.float32)
    whole.forward(x, training=True)
    for layer in (part_a, part_b):
        layer.defer_state = True
    part_a.forward(x[:3], training=True)
    part_b.forward(x[3:], training=True)
    # deferred: nothing changed yet
    assert not part_a.state["moving_mean"].any()
    summed = [a + b for a, b in zip(part_a.statistics(), part_b.statistics())]
    part_a.update_state(summed)
    # float64 summaries: the split changes the running statistics by float32 rounding at most
    for key in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(part_a.state[key], whole.state[key], rtol=2e-7)


def test_channel_sums_are_float64_accurate_on_float32_blocks():
    rng = np.random.default_rng(4)
    for n in (0, 5, BLOCK_ROWS, 3 * BLOCK_ROWS + 17):
        a = rng.normal(1000.0, 1.0, (n, 3)).astype(np.float32)
        b = rng.standard_normal((n, 3)).astype(np.float32)
        exact = a.astype(np.float64).sum(axis=0)
        # each block of BLOCK_ROWS float32 additions errs by at most BLOCK_ROWS * eps32
        bound = BLOCK_ROWS * np.finfo(np.float32).eps * np.abs(a).sum(axis=0) + 1e-12
        assert np.all(np.abs(channel_sums(a) - exact) <= bound)
        exact_ab = (a.astype(np.float64) * b).sum(axis=0)
        bound_ab = BLOCK_ROWS * np.finfo(np.float32).eps * np.abs(a * b).sum(axis=0) + 1e-12
        assert np.all(np.abs(channel_sums(a, b) - exact_ab) <= bound_ab)
        assert channel_sums(a).dtype == np.float64


def test_an_empty_training_batch_changes_nothing():
    layer = _bn()
    out = layer.forward(np.zeros((0, 3, 4, 2)), training=True)
    assert out.shape == (0, 3, 4, 2)
    assert layer.backward(np.zeros((0, 3, 4, 2))).shape == (0, 3, 4, 2)
    assert not layer.state["moving_mean"].any() and (layer.state["moving_variance"] == 1).all()


def test_state_is_non_trainable_and_saved_with_the_model(tmp_path):
    model = Sequential([Conv2D(3, 3), BatchNorm2D(), ReLU(), Flatten(), Dense(2)], (5, 5, 1),
                       seed=0)
    assert model.count_params() == 30 + 6 + 152 and model.count_state() == 6
    assert all(p is not s for p in model.parameters() for s in model.state_arrays())
    x = np.random.default_rng(5).random((8, 5, 5, 1)).astype(np.float32)
    model.fit(x, np.arange(8) % 2, epochs=2, batch_size=4, threads=1)
    bn = model.layers[1]
    assert bn.state["moving_mean"].any()
    model.save(tmp_path / "bn.npz")
    again = load_model(tmp_path / "bn.npz")
    for key in ("moving_mean", "moving_variance"):
        np.testing.assert_array_equal(again.layers[1].state[key], bn.state[key])
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    assert "1.moving_variance" in again.named_arrays()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's own NumPy 2 notice
def test_matches_keras_batch_normalization():
    """Keras (on PyTorch) is the definition of momentum, epsilon and the moving variance."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(6)
    ours = _bn(shape=(4, 5, 3), dtype=np.float32)
    theirs = keras.layers.BatchNormalization()
    theirs.build((None, 4, 5, 3))
    for _ in range(3):
        x = rng.normal(2.0, 3.0, (6, 4, 5, 3)).astype(np.float32)
        y = ours.forward(x, training=True)
        y_keras = keras.ops.convert_to_numpy(theirs(x, training=True))
        # outputs of size ~1 from float32 sums over 120 values per channel
        np.testing.assert_allclose(y, y_keras, rtol=1e-5, atol=1e-5)
    for ours_key, keras_var in (("moving_mean", theirs.moving_mean),
                                ("moving_variance", theirs.moving_variance)):
        np.testing.assert_allclose(ours.state[ours_key], keras.ops.convert_to_numpy(keras_var),
                                   rtol=1e-5)
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours.forward(x),
                               keras.ops.convert_to_numpy(theirs(x, training=False)),
                               rtol=1e-5, atol=1e-5)
