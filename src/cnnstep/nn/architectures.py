"""The built-in architectures, by name: the registry behind ``--arch`` and the README.

Adding an architecture is one function decorated with :func:`register_architecture`. The
course's residual blocks are here too (:func:`identity_block`, :func:`convolutional_block`),
each one :class:`~cnnstep.nn.layers.residual.Residual` to be followed by a ``ReLU``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnstep.nn.layers import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    ReLU,
    Residual,
    ZeroPadding2D,
)
from cnnstep.nn.model import Sequential

ARCHITECTURES: dict[str, Callable[[int], list[Layer]]] = {}


def register_architecture(name: str) -> Callable[[Callable[[int], list[Layer]]],
                                                 Callable[[int], list[Layer]]]:
    """Register ``layers(n_classes) -> list[Layer]`` under ``name``."""
    def decorate(fn: Callable[[int], list[Layer]]) -> Callable[[int], list[Layer]]:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        ARCHITECTURES[name] = fn
        return fn
    return decorate


def outputs(n_classes: int) -> int:
    """Units of a classifier's last layer: one (a sigmoid's logit) for two classes, else one
    per class."""
    return 1 if n_classes == 2 else n_classes


def identity_block(f: int, filters: tuple[int, int, int]) -> Residual:
    """The course's identity block: 1x1, ``f x f`` and 1x1 convolutions, each followed by
    batch normalisation (ReLU after the first two), added to the unchanged input.

    Follow it with a ``ReLU`` layer. The input must have ``filters[2]`` channels.
    """
    f1, f2, f3 = filters
    return Residual([
        Conv2D(f1, 1, padding="valid"), BatchNorm2D(), ReLU(),
        Conv2D(f2, f, padding="same"), BatchNorm2D(), ReLU(),
        Conv2D(f3, 1, padding="valid"), BatchNorm2D(),
    ])


def convolutional_block(f: int, filters: tuple[int, int, int], s: int = 2) -> Residual:
    """The course's convolutional block: the identity block's main path with a stride ``s``
    first convolution, and on the shortcut a stride ``s`` 1x1 convolution and batch
    normalisation, so that both paths give ``filters[2]`` channels at the same size.

    Follow it with a ``ReLU`` layer.
    """
    f1, f2, f3 = filters
    return Residual(
        [Conv2D(f1, 1, stride=s, padding="valid"), BatchNorm2D(), ReLU(),
         Conv2D(f2, f, padding="same"), BatchNorm2D(), ReLU(),
         Conv2D(f3, 1, padding="valid"), BatchNorm2D()],
        shortcut=[Conv2D(f3, 1, stride=s, padding="valid"), BatchNorm2D()],
    )


@register_architecture("default")
def default(n_classes: int) -> list[Layer]:
    return [
        Conv2D(16, 3, padding="same"), ReLU(), MaxPool2D(2),
        Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2),
        Flatten(), Dense(n_classes),
    ]


@register_architecture("signs")
def signs(n_classes: int) -> list[Layer]:
    return [
        Conv2D(8, 4, stride=1, padding="same"), ReLU(), MaxPool2D(8, stride=8, padding="same"),
        Conv2D(16, 2, stride=1, padding="same"), ReLU(), MaxPool2D(4, stride=4, padding="same"),
        Flatten(), Dense(n_classes),
    ]


@register_architecture("happy")
def happy(n_classes: int) -> list[Layer]:
    return [
        ZeroPadding2D(3), Conv2D(32, 7, stride=1, padding="valid"), BatchNorm2D(), ReLU(),
        MaxPool2D(2), Flatten(), Dense(outputs(n_classes)),
    ]


@register_architecture("resnet")
def resnet(n_classes: int) -> list[Layer]:
    return [
        Conv2D(16, 5, stride=2, padding="same"), BatchNorm2D(), ReLU(),
        MaxPool2D(3, stride=2, padding="same"),
        convolutional_block(3, (8, 8, 32), s=1), ReLU(),
        identity_block(3, (8, 8, 32)), ReLU(),
        convolutional_block(3, (16, 16, 64), s=2), ReLU(),
        identity_block(3, (16, 16, 64)), ReLU(),
        GlobalAvgPool2D(), Dense(outputs(n_classes)),
    ]


@register_architecture("conv4")
def conv4(n_classes: int) -> list[Layer]:
    layers: list[Layer] = []
    for filters in (16, 32, 64, 64):
        layers += [Conv2D(filters, 3, padding="same"), ReLU(), MaxPool2D(2)]
    return [*layers, Flatten(), Dense(n_classes)]


def build_architecture(
    name: str,
    input_shape: Sequence[int],
    n_classes: int,
    *,
    seed: int | None = None,
    class_names: Sequence[str] | None = None,
    dtype: Any = np.float32,
) -> Sequential:
    """A built-in architecture, built for ``input_shape`` and ``n_classes`` outputs.

    ``default``: Conv 16 3x3 same, ReLU, MaxPool 2, Conv 32 3x3 same, ReLU, MaxPool 2, Flatten,
    Dense. ``signs``: Conv 8 4x4 same, ReLU, MaxPool 8 s8 same, Conv 16 2x2 same, ReLU,
    MaxPool 4 s4 same, Flatten, Dense. ``conv4`` (what ``cnnstep train`` picks for images
    larger than 32x32): four times Conv 3x3 same (16, 32, 64, 64 filters), ReLU, MaxPool 2;
    Flatten, Dense.

    ``happy`` (the course's happy model): ZeroPadding 3, Conv 32 7x7 valid, BatchNorm, ReLU,
    MaxPool 2, Flatten, Dense; for (64, 64, 3) and 2 classes, 37,633 parameters of which 37,569
    trainable. ``resnet`` (a small network of the course's blocks): Conv 16 5x5 s2 same,
    BatchNorm, ReLU, MaxPool 3 s2 same, convolutional block (3, [8, 8, 32], s=1), identity
    block, convolutional block (3, [16, 16, 64], s=2), identity block (each block followed by a
    ReLU), GlobalAvgPool, Dense.

    ``happy`` and ``resnet`` end in one unit for 2 classes (a binary classifier: sigmoid and
    binary cross-entropy), in ``n_classes`` units otherwise; ``default``, ``signs`` and
    ``conv4`` always in ``n_classes`` units.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return Sequential(ARCHITECTURES[name](n_classes), input_shape, seed=seed, dtype=dtype,
                      class_names=class_names)
