"""A model whose last layer has one unit is a binary classifier: sigmoid cross-entropy on the
logit, two probability columns, accuracy from the sign of the logit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models import toy_data

from cnnstep import Adam, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, load_model
from cnnstep.nn.losses import (
    classification_loss,
    predicted_classes,
    probabilities,
    sigmoid_cross_entropy,
)


def _binary(seed=0):
    return Sequential([Conv2D(4, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(1)], (8, 8, 1),
                      seed=seed, class_names=["top", "bottom"])


def test_loss_gradient_and_probabilities_match_pytorch():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 5, (9, 1))
    z[:4, 0] = [-1000.0, 0.0, 1000.0, -40.0]  # far tails: still finite and exact
    y = rng.integers(0, 2, 9)
    y[:4] = [1, 0, 0, 1]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dz, probs = sigmoid_cross_entropy(z, y)
    tz = torch.tensor(z, requires_grad=True)
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        tz[:, 0], torch.tensor(y, dtype=torch.float64))
    want.backward()
    assert loss == pytest.approx(want.item(), rel=1e-14)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-14, atol=1e-17)
    p0, p1 = (torch.sigmoid(torch.tensor(s * z)).numpy() for s in (-1, 1))
    np.testing.assert_allclose(probs, np.hstack([p0, p1]), rtol=1e-14, atol=0)
    assert probs.shape == (9, 2) and probs[3, 1] == pytest.approx(np.exp(-40.0), rel=1e-14)


def test_the_general_functions_choose_by_the_number_of_columns():
    z1 = np.array([[2.0], [-1.0], [0.0]], dtype=np.float32)
    y = np.array([1, 1, 0])
    assert classification_loss(z1, y)[0] == sigmoid_cross_entropy(z1, y)[0]
    assert probabilities(z1).dtype == np.float32 and probabilities(z1).shape == (3, 2)
    np.testing.assert_array_equal(predicted_classes(z1), [1, 0, 0])
    z3 = np.array([[0.0, 2.0, 1.0]])
    np.testing.assert_array_equal(predicted_classes(z3), [1])
    np.testing.assert_allclose(probabilities(z3).sum(axis=1), 1.0)


def test_a_one_unit_model_trains_predicts_and_evaluates_as_two_classes(tmp_path):
    x, y = toy_data(96, seed=1)
    model = _binary()
    assert model.n_classes == 2 and model.output_shape == (1,)
    history = model.fit(x, y, epochs=8, batch_size=16, threads=1, optimizer=Adam(0.01))
    assert history[-1]["train_accuracy"] > 0.9
    proba = model.predict_proba(x)
    assert proba.shape == (96, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), proba.argmax(axis=1))
    result = model.evaluate(x, y)
    assert result["accuracy"] == pytest.approx(np.mean(model.predict(x) == y))
    assert result["accuracy"] > 0.9 and result["loss"] < 0.4
    model.save(tmp_path / "binary.npz")
    again = load_model(tmp_path / "binary.npz")
    assert again.class_names == ["top", "bottom"]
    np.testing.assert_array_equal(again.predict_proba(x), proba)
    assert model.predict_proba(x[:0]).shape == (0, 2)


def test_labels_beyond_the_two_classes_are_refused():
    x, y = toy_data(8)
    with pytest.raises(ValueError, match="2 classes"):
        _binary().fit(x, y + 1, epochs=1)


@pytest.mark.parametrize("parallel", ["threads", "processes"])
def test_the_split_runners_train_a_binary_model_like_one_thread(parallel):
    x, y = toy_data(64, seed=2)
    one, two = _binary(seed=3), _binary(seed=3)
    h1 = one.fit(x, y, epochs=2, batch_size=32, threads=1)
    h2 = two.fit(x, y, epochs=2, batch_size=32, threads=2, parallel=parallel)
    # the parts' gradients are summed in another order than one thread's sums
    assert h2[-1]["loss"] == pytest.approx(h1[-1]["loss"], rel=1e-4)
    assert h2[-1]["train_accuracy"] == pytest.approx(h1[-1]["train_accuracy"], abs=1 / 32)
