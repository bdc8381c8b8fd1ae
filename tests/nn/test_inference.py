"""predict_proba, predict and evaluate (cnnstep.nn.inference): the layer-by-layer results up to
rounding, on every built-in architecture and on both backends; the same numbers whatever the
threads setting, bit for bit; NaN where the layers put it; chunks of any batch size."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from models import small_model
from onednn_helpers import needs_onednn

import cnnstep.config as cfg
from cnnstep import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sequential,
    build_architecture,
)
from cnnstep.backends import record, status
from cnnstep.backends.inference import Chain
from cnnstep.backends.onednn.chain import ChainPrimitives
from cnnstep.nn import inference
from cnnstep.nn.layers import ZeroPadding2D
from cnnstep.nn.losses import classification_loss, predicted_classes, probabilities

BACKENDS = ["auto", "numpy"]
ARCHITECTURES = [("default", (28, 28, 1), 10), ("signs", (64, 64, 3), 6),
                 ("happy", (64, 64, 3), 2), ("resnet", (32, 32, 3), 4),
                 ("conv4", (40, 40, 3), 5)]


def layer_by_layer(model, x, batch_size=256):
    """The logits as Sequential.forward gives them, batch by batch (the old predict path)."""
    return np.concatenate([model.forward(x[i:i + batch_size])
                           for i in range(0, len(x), batch_size)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("arch", "shape", "classes"), ARCHITECTURES)
def test_predict_proba_gives_the_layers_results(arch, shape, classes, backend):
    model = build_architecture(arch, shape, classes, seed=1)
    x = np.random.default_rng(0).random((70, *shape), dtype=np.float32)
    with cfg.config_context(backend=backend):
        got = model.predict_proba(x, batch_size=50)
    want = probabilities(layer_by_layer(model, x))
    assert got.shape == want.shape and got.dtype == np.float32
    # probabilities from float32 logits summed in another order (sums of a few thousand
    # terms of size ~1): a few float32 ulps of 1, times the softmax's slope (at most 1/2)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_threads_setting_changes_no_bit(backend):
    model = build_architecture("default", (28, 28, 1), 10, seed=2)
    x = np.random.default_rng(1).random((300, 28, 28, 1), dtype=np.float32)
    y = np.arange(300) % 10
    with cfg.config_context(backend=backend):
        one, scores = model.predict_proba(x), model.evaluate(x, y)
        for n in (2, 3):
            with cfg.config_context(threads=n):
                np.testing.assert_array_equal(model.predict_proba(x), one)
                assert model.evaluate(x, y) == scores


def test_evaluate_sums_the_loss_batch_by_batch_as_before():
    model = small_model()
    x = np.random.default_rng(3).random((45, 8, 8, 1), dtype=np.float32)
    y = np.arange(45) % 3
    got = model.evaluate(x, y, batch_size=16)
    total, correct = 0.0, 0
    for i in range(0, 45, 16):
        part = layer_by_layer(model, x[i:i + 16])
        loss, _, _ = classification_loss(part, y[i:i + 16])
        total += loss * len(part)
        correct += int((predicted_classes(part) == y[i:i + 16]).sum())
    assert got["accuracy"] == correct / 45
    assert abs(got["loss"] - total / 45) <= 1e-5
    assert set(got) == {"loss", "accuracy"}


def test_evaluate_returns_the_classes_it_counted_from_the_same_pass():
    model = small_model()
    x = np.random.default_rng(3).random((45, 8, 8, 1), dtype=np.float32)
    y = np.arange(45) % 3
    scores, y_pred = model.evaluate(x, y, batch_size=16, return_predictions=True)
    assert scores == model.evaluate(x, y, batch_size=16)
    assert y_pred.shape == (45,) and y_pred.dtype == np.int64
    assert scores["accuracy"] == float(np.mean(y_pred == y))
    np.testing.assert_array_equal(y_pred, predicted_classes(layer_by_layer(model, x)))
    np.testing.assert_array_equal(y_pred, model.predict(x))  # no near ties in these outputs
    empty, none = model.evaluate(x[:0], y[:0], return_predictions=True)
    assert none.shape == (0,) and empty == {"loss": 0.0, "accuracy": 0.0}


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_any_batch_size_gives_the_same_predictions(batch_size):
    model = build_architecture("default", (28, 28, 1), 10, seed=4)
    x = np.random.default_rng(5).random((100, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict_proba(x, batch_size), model.predict_proba(x),
                               rtol=0, atol=2e-6)
    assert model.predict(x, batch_size).shape == (100,)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_int_is_refused(bad):
    model = small_model()
    with pytest.raises(ValueError, match="batch_size: expected a positive int"):
        model.predict_proba(np.zeros((2, 8, 8, 1), np.float32), batch_size=bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_lands_where_the_layers_put_it(backend):
    model = build_architecture("default", (28, 28, 1), 10, seed=6)
    x = np.random.default_rng(7).random((40, 28, 28, 1), dtype=np.float32)
    x[3, 10, 10, 0] = np.nan
    x[20, 5, 5, 0] = np.inf
    with cfg.config_context(backend=backend), np.errstate(invalid="ignore"):
        got = model.predict_proba(x)
        want = probabilities(layer_by_layer(model, x))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=2e-5)


def test_empty_input_and_float64_models():
    model = small_model()
    assert model.predict_proba(np.zeros((0, 8, 8, 1))).shape == (0, 3)
    m64 = Sequential([Conv2D(3, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(2)], (8, 8, 1),
                     seed=0, dtype=np.float64)
    x = np.random.default_rng(8).random((5, 8, 8, 1))
    got = m64.predict_proba(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, probabilities(m64.forward(x)), rtol=0, atol=1e-14)


def test_layers_are_read_as_chains_and_single_layers():
    model = Sequential([ZeroPadding2D(1), Conv2D(4, 3), BatchNorm2D(), ReLU(), MaxPool2D(2),
                        Conv2D(4, 3), ReLU(), Dropout(0.3), Flatten(), Dense(5), LeakyReLU(),
                        Dense(3)], (12, 12, 2), seed=0)
    parts = inference.segments(model.layers, model.input_shape, model.dtype)
    kinds = [p.label if isinstance(p, Chain) else type(p).__name__ for p in parts]
    assert kinds == ["ZeroPadding2D", "conv 4 3x3", "BatchNorm2D", "ReLU",
                     "max pool 2x2, conv 4 3x3 + relu, dense 5", "LeakyReLU", "Dense"]
    x = np.random.default_rng(9).random((9, 12, 12, 2), dtype=np.float32)
    np.testing.assert_allclose(model.predict_proba(x), probabilities(model.forward(x)),
                               rtol=0, atol=2e-5)


def test_a_flatten_and_dense_alone_run_as_layers():
    model = Sequential([Flatten(), Dense(4), ReLU(), Dense(2)], (3, 3, 2), seed=0)
    parts = inference.segments(model.layers, model.input_shape, model.dtype)
    assert [type(p).__name__ for p in parts] == ["Flatten", "Dense", "ReLU", "Dense"]
    x = np.random.default_rng(10).random((6, 3, 3, 2), dtype=np.float32)
    np.testing.assert_allclose(model.predict_proba(x), probabilities(model.forward(x)),
                               rtol=0, atol=1e-6)


def test_predictions_follow_the_weights_after_training():
    model = small_model(dropout=False)
    x = np.random.default_rng(11).random((20, 8, 8, 1), dtype=np.float32)
    before = model.predict_proba(x)
    model.fit(x, np.arange(20) % 3, epochs=1, batch_size=10, threads=1)
    after = model.predict_proba(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, probabilities(model.forward(x)), rtol=0, atol=2e-6)


def test_without_the_library_predict_runs_on_numpy_and_never_raises(monkeypatch):
    from cnnstep.backends.onednn import library

    model = build_architecture("default", (28, 28, 1), 10, seed=12)
    x = np.random.default_rng(12).random((70, 28, 28, 1), dtype=np.float32)
    y = np.arange(70) % 10
    with cfg.config_context(backend="numpy"):
        want, scores = model.predict_proba(x), model.evaluate(x, y)
    monkeypatch.setattr(library, "engine", lambda: "onednn-cpu-gomp is not installed")
    with cfg.config_context(backend="auto"):
        for n in (1, 2):
            with cfg.config_context(threads=n):
                # the same NumPy code ran as with the numpy setting: bit for bit
                np.testing.assert_array_equal(model.predict_proba(x), want)
                assert model.evaluate(x, y) == scores
    where = [v for k, v in status()["passes"].items() if k.startswith("inference")]
    assert where and all(v == "numpy: oneDNN is unavailable: onednn-cpu-gomp is not installed"
                         for v in where[-2:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunks_are_shared_between_the_threads_setting_threads(backend, monkeypatch):
    model = build_architecture("default", (28, 28, 1), 10, seed=13)
    x = np.random.default_rng(13).random((300, 28, 28, 1), dtype=np.float32)
    seen: list[tuple[int, int]] = []
    run = Chain.run

    def spy(self, a, out, checked=False):
        seen.append((threading.get_ident(), len(a)))
        run(self, a, out, checked)

    monkeypatch.setattr(Chain, "run", spy)
    with cfg.config_context(backend=backend, threads=2):
        model.predict_proba(x, batch_size=1000)
    # chunks of CHUNK images (batch_size is larger), every image once, on two threads
    full, rest = divmod(300, inference.CHUNK)
    assert sorted(n for _, n in seen) == sorted([inference.CHUNK] * full + [rest] * (rest > 0))
    assert len({ident for ident, _ in seen}) == 2
    seen.clear()
    assert inference.CHUNK > 20
    with cfg.config_context(backend=backend, threads=1):
        model.predict_proba(x, batch_size=20)  # chunks of batch_size, smaller than CHUNK
    assert [n for _, n in seen] == [20] * 15
    assert {ident for ident, _ in seen} == {threading.get_ident()}


@needs_onednn
def test_the_input_is_checked_once_and_only_a_chunk_with_nan_leaves_onednn(monkeypatch):
    model = build_architecture("default", (28, 28, 1), 10, seed=15)
    x = np.random.default_rng(15).random((100, 28, 28, 1), dtype=np.float32)
    checked: list[int] = []
    on_numpy: list[int] = []
    check, numpy_run = Chain.unsafe_values, Chain._numpy

    def count_checks(self, a):
        checked.append(len(a))
        return check(self, a)

    def count_numpy(self, a, out):
        on_numpy.append(len(a))
        numpy_run(self, a, out)

    monkeypatch.setattr(Chain, "unsafe_values", count_checks)
    monkeypatch.setattr(Chain, "_numpy", count_numpy)
    with cfg.config_context(backend="auto", threads=1):
        model.predict_proba(x)
    assert checked == [100] and on_numpy == []  # the whole input at once, then no chunk
    checked.clear()
    x[40, 3, 3, 0] = np.nan  # in the second chunk
    with cfg.config_context(backend="auto", threads=1), np.errstate(invalid="ignore"):
        got = model.predict_proba(x)
    chunk = inference.CHUNK
    assert checked == [100] + [chunk] * (100 // chunk) + [100 % chunk]  # then chunk by chunk
    assert on_numpy == [chunk]  # only the chunk that holds the NaN
    assert np.isnan(got[40]).all() and np.isfinite(np.delete(got, 40, axis=0)).all()


@needs_onednn
def test_primitives_are_made_once_and_kept_between_calls(monkeypatch):
    made: list[int] = []
    make = ChainPrimitives.__init__

    def count(self, *args, **kwargs):
        made.append(threading.get_ident())
        make(self, *args, **kwargs)

    monkeypatch.setattr(ChainPrimitives, "__init__", count)
    model = build_architecture("default", (28, 28, 1), 10, seed=14)
    x = np.random.default_rng(14).random((200, 28, 28, 1), dtype=np.float32)
    with cfg.config_context(backend="auto", threads=2):
        before = model.predict_proba(x)
        for _ in range(5):
            model.predict_proba(x)
        for layer in model.layers:  # in place, as an optimizer's step changes them
            for value in layer.params.values():
                value *= np.float32(1.5)
        after = model.predict_proba(x)  # the new weights, in the kept primitives
    # chunks of 32 and 8 images: each thread (the caller's, the pool's) makes at most one set
    # of primitives for each, whichever chunks it is handed, in six calls (per call: 18)
    assert max(Counter(made).values(), default=0) <= 2
    assert list(record.passes().values())[-1] == "onednn"
    want = probabilities(layer_by_layer(model, x))
    assert not np.allclose(after, before, rtol=0, atol=1e-3)
    np.testing.assert_allclose(after, want, rtol=0, atol=2e-5)
