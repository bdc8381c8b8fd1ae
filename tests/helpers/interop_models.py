"""Real-looking images and models with every layer and option, for the interop tests."""

from __future__ import annotations

import numpy as np

from cnnstep.nn.architectures import ARCHITECTURES, build_architecture
from cnnstep.nn.layers import (
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)
from cnnstep.nn.model import Sequential


def with_statistics(model: Sequential, seed: int = 0) -> Sequential:
    """``model`` with batch normalisation's scale, shift and running statistics made unlike
    their starting values (1, 0, 0, 1), so that an export that dropped one would show."""
    rng = np.random.default_rng(seed)
    for key, array in model.named_arrays().items():
        name = key.rsplit(".", 1)[-1]
        if name in ("gamma", "moving_variance"):
            array[...] = rng.uniform(0.5, 2.0, array.shape)
        elif name in ("beta", "moving_mean"):
            array[...] = rng.normal(0.0, 0.3, array.shape)
    return model


def rgb64(images: np.ndarray) -> np.ndarray:
    """28x28 grey digits as 64x64 RGB images (upscaled 2x, padded, channels tinted)."""
    big = images.repeat(2, axis=1).repeat(2, axis=2)
    big = np.pad(big, ((0, 0), (4, 4), (4, 4), (0, 0)))
    return np.concatenate([big, 0.5 * big, 1 - big], axis=3).astype(np.float32)


def every_option_models() -> dict[str, Sequential]:
    """Models that between them use every layer and option the exporters must map."""
    return {
        # stride 2 with "same" on an even size pads asymmetrically (0 top, 1 bottom), and so
        # does the max pooling after it (14 -> 7: pads (0, 1))
        "stride_same_asym": Sequential(
            [Conv2D(4, 3, stride=2, padding="same"), ReLU(), MaxPool2D(3, stride=2, padding="same"),
             Flatten(), Dense(5)], (28, 28, 1), seed=1),
        # dilation, explicit uneven padding, a stride with a dilation (Keras refuses both at
        # once), padded average pooling, dropout
        "dilation_explicit": Sequential(
            [Conv2D(3, 3, dilation=2, padding=((1, 3), (0, 2))), ReLU(),
             Conv2D(5, (2, 3), stride=(1, 2), dilation=(2, 1), padding="valid"), ReLU(),
             AvgPool2D(3, stride=2, padding=1), Flatten(), Dropout(0.3), Dense(7), ReLU(),
             Dropout(0.5), Dense(4)], (28, 28, 1), seed=2),
        # an even kernel with "same" (1 top, 2 bottom), padded average and max pooling
        "avg_same_even": Sequential(
            [Conv2D(6, 4, padding="same"), ReLU(), AvgPool2D(2, stride=1, padding="same"),
             MaxPool2D(2, padding=1), Flatten(), Dense(3)], (28, 28, 1), seed=3),
        # max pooling straight on a convolution's signed outputs, with explicit asymmetric pads
        # (a padded cell taken for 0 would win where every real value is negative), strided and
        # dilated "same" on one axis
        "asym_pools": Sequential(
            [Conv2D(4, 3, stride=2, dilation=2, padding="same"),
             MaxPool2D(3, stride=2, padding=((2, 0), (1, 2))),
             AvgPool2D((3, 2), stride=(2, 1), padding=((1, 2), (0, 1))), Flatten(), Dense(6)],
            (28, 28, 1), seed=4),
        # the layers of issue 23 outside the built-in architectures
        "zero_pad_activations": with_statistics(Sequential(
            [ZeroPadding2D(((1, 2), (0, 3))), Conv2D(5, 3, padding="valid"), BatchNorm2D(),
             LeakyReLU(0.2), Conv2D(4, 2, stride=2, padding="same"), Tanh(),
             Residual([Conv2D(4, 3, padding="same"), Sigmoid()]), GlobalMaxPool2D(),
             Dense(3)], (28, 28, 1), seed=5)),
        # a residual block on a flattened input, a binary output (one unit)
        "dense_residual_binary": Sequential(
            [Conv2D(3, 3, stride=2), ReLU(), GlobalAvgPool2D(),
             Residual([Dense(6), Tanh(), Dense(3)], shortcut=[Dense(3)]), Sigmoid(), Dense(1)],
            (28, 28, 1), seed=6),
    }


def builtin_models() -> dict[str, Sequential]:
    """Every built-in architecture, on 28x28 grey images with 10 classes and 64x64 RGB images
    with 2 (a binary classifier where the architecture makes one), batch normalisation's
    statistics made unlike their start."""
    out = {}
    for arch in sorted(ARCHITECTURES):
        out[f"{arch}_28x28x1"] = with_statistics(
            build_architecture(arch, (28, 28, 1), 10, seed=0))
        out[f"{arch}_64x64x3"] = with_statistics(
            build_architecture(arch, (64, 64, 3), 2, seed=0))
    return out


def inputs_for(model: Sequential, mnist_images: np.ndarray) -> np.ndarray:
    """Real images of the model's input shape, signed (centred) so that a padded zero would show."""
    x = mnist_images if model.input_shape == (28, 28, 1) else rgb64(mnist_images)
    return (x - 0.5).astype(np.float32)
