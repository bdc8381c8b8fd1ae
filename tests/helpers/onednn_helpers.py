"""What the tests of oneDNN's kernels share: a skip where the extra is missing, a fixture that
turns the kernels on for problems of any size, and the dispatch run so that it must use them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from cnnstep.backends import (
    conv2d_backward,
    conv2d_forward,
    onednn,
    pool2d_backward,
    pool2d_forward,
    record,
)
from cnnstep.backends.onednn import primitives
from cnnstep.config import config_context

needs_onednn = pytest.mark.skipif(
    not onednn.available(),
    reason=f"needs onednn-cpu-gomp (the onednn extra) and libgomp.so.1: {onednn.describe()}")


@pytest.fixture
def onednn_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """oneDNN's kernels on, however little work a problem holds (the one MIN_WORK), nothing
    remembered from other tests; the settings restored after."""
    monkeypatch.setattr(primitives, "MIN_WORK", 0)
    primitives.forget()
    with config_context(backend="auto"):
        yield
    primitives.forget()


def dnn_conv(A: Any, W: Any, b: Any, hp: dict, dZ: Any = None,
             need_dA: bool = True) -> tuple[np.ndarray, Any]:
    """A convolution's forward pass (and backward, given ``dZ``) through the dispatch, which
    must have run them on oneDNN."""
    Z, ctx = conv2d_forward(A, W, b, hp, training=True)
    assert ctx is not None and ctx.backend == "onednn", "the forward pass ran on NumPy"
    if dZ is None:
        return Z, None
    grads = conv2d_backward(dZ, ctx, need_dA)
    assert last_pass() == "onednn", "the backward pass ran on NumPy"
    return Z, grads


def dnn_pool(A: Any, hp: dict, dA: Any = None) -> tuple[np.ndarray, Any]:
    """A max pooling's forward pass (and backward, given ``dA``) through the dispatch, which
    must have run them on oneDNN."""
    out, ctx = pool2d_forward(A, hp, "max", training=True)
    assert ctx is not None and ctx.backend == "onednn", "the forward pass ran on NumPy"
    if dA is None:
        return out, None
    dA_prev = pool2d_backward(dA, ctx)
    assert last_pass() == "onednn", "the backward pass ran on NumPy"
    return out, dA_prev


def last_pass() -> str:
    """Where the latest pass ran: ``"onednn"`` or ``"numpy: <why>"``."""
    return list(record.passes().values())[-1]
