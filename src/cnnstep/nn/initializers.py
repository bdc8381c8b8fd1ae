"""Weight initialisation: He (Kaiming) normal for layers followed by ReLU, zeros for biases."""

from __future__ import annotations

from typing import Any

import numpy as np


def he_normal(
    shape: tuple[int, ...], fan_in: int, rng: np.random.Generator, dtype: Any = np.float32
) -> np.ndarray:
    """Normal weights with standard deviation ``sqrt(2 / fan_in)``.

    This keeps the variance of activations roughly constant through ReLU layers.

    Parameters
    ----------
    shape : tuple of int
        Shape of the weight array.
    fan_in : int
        Number of inputs of one output unit (``f_h * f_w * n_C_prev`` for a convolution).
    rng : numpy.random.Generator
    dtype : dtype, default float32

    Returns
    -------
    ndarray of the given shape and dtype
    """
    if fan_in < 1:
        raise ValueError(f"fan_in must be at least 1, got {fan_in}")
    std = np.sqrt(2.0 / fan_in)
    return (rng.standard_normal(shape) * std).astype(dtype)


def zeros(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """An array of zeros (the usual bias initialisation)."""
    return np.zeros(shape, dtype=dtype)
