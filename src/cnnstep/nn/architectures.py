"""The built-in architectures, by name: the registry behind ``--arch`` and the README.

Adding an architecture is one function decorated with :func:`register_architecture`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnstep.nn.layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU
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
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return Sequential(ARCHITECTURES[name](n_classes), input_shape, seed=seed, dtype=dtype,
                      class_names=class_names)
