"""The course's architectures: the happy model's parameter counts, the small residual network."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep import (
    BatchNorm2D,
    Conv2D,
    Dense,
    GlobalAvgPool2D,
    ReLU,
    Residual,
    ZeroPadding2D,
    build_architecture,
)
from cnnstep.nn.architectures import ARCHITECTURES


def test_happy_model_has_the_courses_parameter_counts():
    model = build_architecture("happy", (64, 64, 3), 2)
    assert [type(layer).__name__ for layer in model.layers] == [
        "ZeroPadding2D", "Conv2D", "BatchNorm2D", "ReLU", "MaxPool2D", "Flatten", "Dense"]
    assert [layer.output_shape for layer in model.layers] == [
        (70, 70, 3), (64, 64, 32), (64, 64, 32), (64, 64, 32), (32, 32, 32), (32768,), (1,)]
    assert model.count_params() == 37_569 and model.count_state() == 64
    text = model.summary()
    assert text.splitlines()[-3:] == ["total parameters: 37,633",
                                      "trainable parameters: 37,569",
                                      "non-trainable parameters: 64"]
    assert "BatchNorm2D()" in text and "(None, 64, 64, 32)" in text
    assert model.n_classes == 2 and model.output_shape == (1,)  # one sigmoid unit


def test_happy_and_resnet_have_one_output_per_class_beyond_two():
    for name in ("happy", "resnet"):
        assert build_architecture(name, (64, 64, 3), 6).output_shape == (6,)
    assert build_architecture("default", (28, 28, 1), 2).output_shape == (2,)


def test_resnet_is_made_of_the_courses_blocks():
    model = build_architecture("resnet", (64, 64, 3), 6, seed=0)
    blocks = [layer for layer in model.layers if isinstance(layer, Residual)]
    assert [len(b.shortcut) for b in blocks] == [2, 0, 2, 0]  # conv, identity, conv, identity
    after = [model.layers[model.layers.index(b) + 1] for b in blocks]
    assert all(isinstance(layer, ReLU) for layer in after)
    assert isinstance(model.layers[-2], GlobalAvgPool2D) and isinstance(model.layers[-1], Dense)
    assert blocks[-1].output_shape == (8, 8, 64)
    assert (model.count_params(), model.count_state()) == (15_590, 800)
    main = blocks[0].main
    assert [type(layer) for layer in main] == [Conv2D, BatchNorm2D, ReLU] * 2 + [Conv2D,
                                                                                 BatchNorm2D]
    assert main[0].kernel_size == (1, 1) and main[3].kernel_size == (3, 3)


@pytest.mark.parametrize("name", ["happy", "resnet"])
def test_the_new_architectures_train_on_small_images(name):
    rng = np.random.default_rng(0)
    x = rng.random((16, 32, 32, 3)).astype(np.float32)
    y = np.arange(16) % 2
    x[y == 1, :16] += 0.5
    model = build_architecture(name, (32, 32, 3), 2, seed=1)
    history = model.fit(x, y, epochs=2, batch_size=8, threads=2, parallel="threads")
    assert len(history) == 2 and np.isfinite(history[-1]["loss"])
    assert model.predict_proba(x).shape == (16, 2)


def test_every_architecture_is_listed():
    assert {"default", "signs", "happy", "resnet"} <= set(ARCHITECTURES)
    assert isinstance(build_architecture("happy", (64, 64, 3), 2).layers[0], ZeroPadding2D)
