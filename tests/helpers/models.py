"""Small models and data sets shared by the nn and train tests."""

from __future__ import annotations

import numpy as np

from cnnstep import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential


def toy_data(m=96, seed=0):
    """Two classes that differ in which half of an 8x8 image is bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, m)
    x = rng.random((m, 8, 8, 1)).astype(np.float32) * 0.3
    x[y == 0, :4] += 0.7
    x[y == 1, 4:] += 0.7
    return x, y


def small_model(seed=0, dropout=True):
    layers = [Conv2D(4, 3, padding="same"), ReLU(), MaxPool2D(2),
              Conv2D(6, 2, stride=2, padding="valid"), ReLU(), AvgPool2D(2, padding="same"),
              Flatten()]
    if dropout:
        layers.append(Dropout(0.2))
    return Sequential([*layers, Dense(3)], (8, 8, 1), seed=seed, class_names=["a", "b", "c"])
