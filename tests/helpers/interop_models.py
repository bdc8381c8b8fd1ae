"""Real-looking images and models with every layer and option, for the interop tests."""

from __future__ import annotations

import numpy as np

from cnnstep.nn.layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from cnnstep.nn.model import Sequential


def rgb64(images: np.ndarray) -> np.ndarray:
    """28x28 grey digits as 64x64 RGB images (upscaled 2x, padded, channels tinted)."""
    big = images.repeat(2, axis=1).repeat(2, axis=2)
    big = np.pad(big, ((0, 0), (4, 4), (4, 4), (0, 0)))
    return np.concatenate([big, 0.5 * big, 1 - big], axis=3).astype(np.float32)


def every_option_models() -> dict[str, Sequential]:
    """Models that between them use every layer and option ONNX and torch export must map."""
    return {
        # stride 2 with "same" on an even size pads asymmetrically (0 top, 1 bottom)
        "stride_same_asym": Sequential(
            [Conv2D(4, 3, stride=2, padding="same"), ReLU(), MaxPool2D(3, stride=2, padding="same"),
             Flatten(), Dense(5)], (28, 28, 1), seed=1),
        "dilation_explicit": Sequential(
            [Conv2D(3, 3, dilation=2, padding=((1, 3), (0, 2))), ReLU(),
             Conv2D(5, (2, 3), stride=(1, 2), dilation=(2, 1), padding="valid"), ReLU(),
             AvgPool2D(3, stride=2, padding=1), Flatten(), Dropout(0.3), Dense(7), ReLU(),
             Dropout(0.5), Dense(4)], (28, 28, 1), seed=2),
        "avg_same_even": Sequential(
            [Conv2D(6, 4, padding="same"), ReLU(), AvgPool2D(2, stride=1, padding="same"),
             MaxPool2D(2, padding=1), Flatten(), Dense(3)], (28, 28, 1), seed=3),
    }
