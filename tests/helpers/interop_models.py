"""Real-looking images and models with every layer and option, for the interop tests."""

from __future__ import annotations

import numpy as np

from cnnstep.nn.architectures import ARCHITECTURES, build_architecture
from cnnstep.nn.layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from cnnstep.nn.model import Sequential


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
    }


def not_yet_exported(model: Sequential) -> list[str]:
    """The layer types of ``model`` (those inside containers too) that the Keras, PyTorch or
    ONNX exporter has no function for yet: the layers of issue 23 until the exporters register
    them. The round-trip tests skip such a model and name the types; a model joins them as
    soon as every exporter knows its layers."""
    from cnnstep.interop.keras_export import KERAS_EXPORTS
    from cnnstep.interop.onnx_export import ONNX_EXPORTS
    from cnnstep.interop.torch_modules import TORCH_EXPORTS
    from cnnstep.nn.layers import walk

    known = set(KERAS_EXPORTS) & set(ONNX_EXPORTS) & set(TORCH_EXPORTS)
    return sorted({type(layer).__name__ for layer in walk(model.layers)
                   if type(layer) not in known})


def builtin_models() -> dict[str, Sequential]:
    """Every built-in architecture, on 28x28 grey and 64x64 RGB images, 10 classes."""
    out = {}
    for arch in sorted(ARCHITECTURES):
        out[f"{arch}_28x28x1"] = build_architecture(arch, (28, 28, 1), 10, seed=0)
        out[f"{arch}_64x64x3"] = build_architecture(arch, (64, 64, 3), 10, seed=0)
    return out


def inputs_for(model: Sequential, mnist_images: np.ndarray) -> np.ndarray:
    """Real images of the model's input shape, signed (centred) so that a padded zero would show."""
    x = mnist_images if model.input_shape == (28, 28, 1) else rgb64(mnist_images)
    return (x - 0.5).astype(np.float32)
