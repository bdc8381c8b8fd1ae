"""Residual: main path plus shortcut, its arrays seen as its own, copies, files and limits."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from cnnstep import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    ReLU,
    Residual,
    Sequential,
    load_model,
)
from cnnstep.errors import DataError
from cnnstep.nn.architectures import convolutional_block, identity_block
from cnnstep.nn.layers import walk


def _net(seed=0):
    return Sequential([
        Conv2D(4, 3), BatchNorm2D(), ReLU(),
        convolutional_block(3, (2, 2, 6), s=2), ReLU(),
        identity_block(3, (3, 3, 6)), ReLU(),
        GlobalAvgPool2D(), Dense(3),
    ], (8, 8, 2), seed=seed)


def test_output_is_main_plus_shortcut():
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3))
    block = Residual([ReLU()])
    np.testing.assert_array_equal(block.forward(x), np.maximum(x, 0) + x)
    conv = Conv2D(3, 1)
    block = Residual([ReLU()], shortcut=conv)
    block.build((4, 4, 3), np.random.default_rng(0))
    want = np.maximum(x, 0) + conv.forward(x)
    np.testing.assert_allclose(block.forward(x), want, rtol=1e-12)


def test_the_arrays_inside_are_the_containers_own():
    block = convolutional_block(3, (2, 2, 4), s=2)
    block.build((5, 5, 3), np.random.default_rng(0))
    keys = list(block.params)
    assert keys[:2] == ["main.0.W", "main.0.b"] and "shortcut.1.gamma" in keys
    assert list(block.state) == ["main.1.moving_mean", "main.1.moving_variance",
                                 "main.4.moving_mean", "main.4.moving_variance",
                                 "main.7.moving_mean", "main.7.moving_variance",
                                 "shortcut.1.moving_mean", "shortcut.1.moving_variance"]
    assert block.params["shortcut.0.W"] is block.shortcut[0].params["W"]
    new = np.zeros_like(block.params["main.0.W"])
    block.params["main.0.W"] = new  # how a worker process binds its shared memory
    assert block.main[0].params["W"] is new
    with pytest.raises(KeyError):
        block.params["main.9.W"] = new
    with pytest.raises(KeyError):
        block.params["main.0.nope"] = new
    with pytest.raises(TypeError):
        del block.params["main.0.W"]
    assert len(list(walk([block]))) == 1 + 8 + 2


def test_copies_share_parameters_but_not_caches_or_gradients():
    model = _net()
    replica = model.replica()
    block, twin = model.layers[3], replica.layers[3]
    assert twin is not block and twin.main[0] is not block.main[0]
    assert twin.params["main.0.W"] is block.params["main.0.W"]
    assert twin.state["main.1.moving_mean"] is block.state["main.1.moving_mean"]
    assert twin.defer_state and not block.defer_state
    x = np.random.default_rng(1).random((2, 8, 8, 2)).astype(np.float32)
    replica.forward(x, training=True)
    assert block.main[0]._cache is None  # the original ran nothing
    assert len(replica.statistics()) == 1 + 4 + 3
    assert [s.shape for s in replica.statistics()] == replica.statistics_shapes()
    deep = copy.deepcopy(block)
    assert deep.params["main.0.W"] is not block.params["main.0.W"]
    np.testing.assert_array_equal(deep.params["main.0.W"], block.params["main.0.W"])


def test_mismatched_paths_are_refused_at_build_with_both_shapes():
    with pytest.raises(ValueError, match=r"main path gives \(4, 4, 5\) but the input"):
        Sequential([Residual([Conv2D(5, 1)])], (4, 4, 3))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\) but the shortcut gives \(4, 4, 3\)"):
        Sequential([Residual([Conv2D(3, 1, stride=2)], shortcut=[ReLU()])], (4, 4, 3))
    with pytest.raises(ValueError, match="only once"):
        relu = ReLU()
        Residual([relu], shortcut=[relu])


def test_dropout_inside_keeps_training_on_one_thread():
    assert Residual([Dropout(0.5)]).serial_training
    assert not Residual([ReLU()]).serial_training


def test_model_file_round_trip_with_nested_blocks(tmp_path):
    model = _net()
    x = np.random.default_rng(2).random((6, 8, 8, 2)).astype(np.float32)
    model.fit(x, np.arange(6) % 3, epochs=1, batch_size=3, threads=1)
    model.save(tmp_path / "res.npz")
    again = load_model(tmp_path / "res.npz")
    assert again.get_config() == json.loads(json.dumps(model.get_config()))
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    for key, value in model.named_arrays().items():
        np.testing.assert_array_equal(again.named_arrays()[key], value)
    assert "3.shortcut.1.moving_variance" in again.named_arrays()


def test_model_files_check_the_layers_inside_before_building(tmp_path):
    model = Sequential([Residual([Conv2D(2, 1)], shortcut=[Conv2D(2, 1)])], (4, 4, 1))
    model.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["__model__"][()]))
    header["layers"][0]["config"]["shortcut"][0]["config"]["filters"] = 10**9
    arrays["__model__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "big.npz", **arrays)
    with pytest.raises(DataError, match=r"layer 0\.shortcut\.0 \(Conv2D.* weights: declares"):
        load_model(tmp_path / "big.npz")
    header["layers"][0]["config"]["shortcut"][0]["config"]["filters"] = 3
    arrays["__model__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(DataError, match="paths end in different shapes"):
        load_model(tmp_path / "odd.npz")


def test_summary_lists_the_layers_inside_and_counts_state_apart():
    text = _net().summary()
    assert "\n  main.0 Conv2D(2, 1x1, valid, stride 2x2)" in text
    assert "\n  shortcut.1 BatchNorm2D()" in text
    model = _net()
    assert text.endswith(f"trainable parameters: {model.count_params():,}\n"
                         f"non-trainable parameters: {model.count_state():,}")
    assert model.count_state() == 2 * (4 + 2 + 2 + 6 + 6 + 3 + 3 + 6)
