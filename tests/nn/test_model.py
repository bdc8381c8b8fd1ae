"""Sequential model: gradients, fit, determinism, optimizers, save/load, summary."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from models import small_model as _small_model
from models import toy_data as _toy_data

from cnnstep import (
    SGD,
    Adam,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    build_architecture,
    gradient_check,
    load_model,
)
from cnnstep.errors import DataError
from cnnstep.nn.losses import softmax_cross_entropy


def test_whole_model_gradients_match_finite_differences():
    model = _small_model()
    x = np.random.default_rng(3).random((2, 8, 8, 1))
    for name, err in gradient_check(model, x, max_entries=60).items():
        assert err < 1e-6, (name, err)


def test_relu_then_maxpool_runs_pooled_first_with_identical_results():
    model = _small_model(dropout=False)
    order = model.run_order()
    assert isinstance(order[1], MaxPool2D) and isinstance(order[2], ReLU)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype(np.float32)
    x[0] = 0.0  # all-zero windows after ReLU: ties everywhere
    y = np.array([0, 1, 2, 1])
    logits = model.forward(x, training=True)
    model.backward(softmax_cross_entropy(logits, y)[1])
    fast = [g.copy() for g in model.gradients()]
    model._order = model.layers  # as declared: ReLU, then pooling
    assert np.array_equal(model.forward(x, training=True), logits)
    model.backward(softmax_cross_entropy(logits, y)[1])
    for a, b in zip(fast, model.gradients()):
        assert np.array_equal(a, b)


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 5))
    y = np.array([0, 3, 4, 1])
    loss, d, probs = softmax_cross_entropy(logits, y)
    assert np.allclose(probs.sum(1), 1)
    eps, num = 1e-6, np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        p, m = logits.copy(), logits.copy()
        p[idx] += eps
        m[idx] -= eps
        num[idx] = (softmax_cross_entropy(p, y)[0] - softmax_cross_entropy(m, y)[0]) / (2 * eps)
    assert np.allclose(num, d, atol=1e-8)
    big_loss, _, _ = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert big_loss == pytest.approx(2000.0)


def test_matches_pytorch_on_one_training_step():
    torch = pytest.importorskip("torch")
    model = build_architecture("default", (8, 8, 1), 10, seed=0, dtype=np.float64)
    x = np.random.default_rng(1).random((5, 8, 8, 1))
    y = np.array([0, 1, 2, 3, 9])
    conv1, conv2, dense = model.layers[0], model.layers[3], model.layers[7]
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding="same"), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding="same"), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    ).double()
    with torch.no_grad():
        for t, layer in ((net[0], conv1), (net[3], conv2)):
            t.weight.copy_(torch.from_numpy(layer.params["W"].transpose(3, 2, 0, 1).copy()))
            t.bias.copy_(torch.from_numpy(layer.params["b"].reshape(-1)))
    Wd = torch.tensor(dense.params["W"], requires_grad=True)
    xt = torch.tensor(x.transpose(0, 3, 1, 2))
    feats = net(xt).permute(0, 2, 3, 1).reshape(5, -1)  # channels-last flatten, like cnnstep
    loss_t = torch.nn.functional.cross_entropy(feats @ Wd, torch.tensor(y))
    loss_t.backward()
    loss, logits = model.train_step(x, y, SGD(lr=1e-9, momentum=0.0))
    assert loss == pytest.approx(loss_t.item(), rel=1e-10)
    assert np.allclose(dense.grads["W"], Wd.grad.numpy(), atol=1e-10)
    assert np.allclose(conv1.grads["W"], net[0].weight.grad.numpy().transpose(2, 3, 1, 0),
                       atol=1e-10)


def test_fit_learns_and_is_deterministic():
    x, y = _toy_data()
    runs = []
    for _ in range(2):
        model = _small_model(seed=5)
        history = model.fit(x, y, epochs=6, batch_size=16, optimizer=Adam(0.03),
                            validation_data=(x, y), augment_shift=1)
        runs.append((model, history))
    (m1, h1), (m2, h2) = runs
    assert [h["loss"] for h in h1] == [h["loss"] for h in h2]
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(a, b)
    assert h1[-1]["val_accuracy"] > 0.9
    assert h1[-1]["loss"] < h1[0]["loss"]
    other = _small_model(seed=6)
    assert not np.array_equal(other.parameters()[0], _small_model(seed=5).parameters()[0])


@pytest.mark.parametrize("optimizer", [SGD(0.05, momentum=0.9), SGD(0.05, momentum=0.9,
                                       nesterov=True), SGD(0.1, momentum=0.0), Adam(0.01)])
def test_optimizers_reduce_the_loss(optimizer):
    x, y = _toy_data()
    model = _small_model(dropout=False)
    before = model.evaluate(x, y)["loss"]
    model.fit(x, y, epochs=3, batch_size=16, optimizer=optimizer)
    assert model.evaluate(x, y)["loss"] < 0.7 * before
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_adam_first_step_moves_each_weight_by_lr():
    p = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    opt = Adam(0.1)
    opt.step([p], [np.array([0.5, -3.0, 1e-3], dtype=np.float32)])
    assert np.allclose(p, [0.9, -1.9, 2.9], atol=1e-4)
    assert p.dtype == np.float32


def test_save_load_gives_identical_predictions(tmp_path):
    x, y = _toy_data()
    model = _small_model()
    model.fit(x, y, epochs=1, batch_size=32)
    path = tmp_path / "m.npz"
    model.save(path, metadata={"data": "toy"})
    again, meta = load_model(path, with_metadata=True)
    assert meta == {"data": "toy"}
    assert again.class_names == ["a", "b", "c"] and again.input_shape == (8, 8, 1)
    assert np.array_equal(again.predict_proba(x), model.predict_proba(x))
    assert [type(a) for a in again.layers] == [type(b) for b in model.layers]
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was moved into place
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(str(npz["__model__"][()]))
    assert header["input_shape"] == [8, 8, 1] and header["class_names"] == ["a", "b", "c"]


def test_load_refuses_bad_files(tmp_path):
    model = _small_model()
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    bad = dict(arrays, **{"0.W": np.zeros((2, 2, 1, 4), np.float32)})
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(DataError, match=r"0\.W have shape"):
        load_model(tmp_path / "shape.npz")
    missing = {k: v for k, v in arrays.items() if k != "3.b"}
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(DataError, match="missing"):
        load_model(tmp_path / "missing.npz")
    np.savez(tmp_path / "pickled.npz", __model__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError):
        load_model(tmp_path / "pickled.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="not an .npz"):
        load_model(tmp_path / "text.npz")
    with pytest.raises(DataError, match="no such file"):
        load_model(tmp_path / "absent.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(DataError):
        load_model(tmp_path / "empty.npz")


def test_summary_and_architectures():
    model = build_architecture("default", (28, 28, 1), 10)
    text = model.summary()
    assert "Conv2D(16, 3x3, same)" in text and "(None, 7, 7, 32)" in text
    assert model.count_params() == 160 + 4640 + 15690
    signs = build_architecture("signs", (64, 64, 3), 6)
    assert signs.layers[2].output_shape == (8, 8, 8)
    assert signs.output_shape == (6,)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_architecture("resnet50", (8, 8, 1), 2)


def test_predict_checks_input_shape():
    model = _small_model()
    with pytest.raises(ValueError, match=r"\(m, 8, 8, 1\)"):
        model.predict(np.zeros((2, 9, 8, 1)))
    assert model.predict(np.zeros((0, 8, 8, 1))).shape == (0,)


@pytest.mark.parametrize("first", [[], [Dropout(0.0)], [ReLU()]])
def test_training_backward_skips_only_the_input_gradient(first):
    # Layers before the first one with parameters only carry the gradient to the input: in
    # training (need_input_grad=False) they are skipped, and the parameters' gradients match.
    model = Sequential([*first, *_small_model(dropout=False).layers], (8, 8, 1), seed=0,
                       class_names=["a", "b", "c"])
    x = np.random.default_rng(3).random((4, 8, 8, 1)).astype(np.float32)
    logits = model.forward(x, training=True)
    dlogits = np.random.default_rng(4).standard_normal(logits.shape).astype(np.float32)
    dx = model.backward(dlogits)
    assert dx.shape == x.shape
    grads = [g.copy() for g in model.gradients()]
    assert model.backward(dlogits, need_input_grad=False) is None
    for g, g2 in zip(grads, model.gradients()):
        np.testing.assert_allclose(g2, g, rtol=1e-5, atol=1e-6)


def test_an_empty_batch_goes_through_every_layer():
    model = Sequential([Conv2D(2, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(3)], (6, 6, 1))
    x = np.zeros((0, 6, 6, 1), np.float32)
    assert model.forward(x).shape == (0, 3)
    assert model.forward(x, training=True).shape == (0, 3)
    assert model.predict(x).shape == (0,)
