"""NumPy's kernels as a backend: the layers' passes on :mod:`cnnstep.ops.kernels`.

What the layers' passes add to the functional ops: a training convolution with few input
channels keeps its window matrix for the backward pass (made once per step instead of twice),
reusing the buffer of the step before; a training max pooling keeps each maximum's tap
(:mod:`cnnstep.ops.kernels.pool_taps`) or its output, so the backward pass need not find the
maxima again. Every pass gives the functional ops' numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.kernels.conv import conv_forward, conv_forward_windows
from cnnstep.ops.kernels.conv_grads import DW_FROM_DZ_MIN_CHANNELS, ConvCache, conv_grads
from cnnstep.ops.kernels.pool import PoolCache, pool_backward_with_output, pool_forward
from cnnstep.ops.kernels.pool_taps import max_pool_backward_taps, max_pool_forward_taps


def conv_pass(
    A: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict[str, Any], training: bool,
    spare: np.ndarray | None = None,
) -> tuple[np.ndarray, ConvCache, np.ndarray | None]:
    """A convolution's forward pass: ``(Z, cache, windows)``.

    In training with fewer than :data:`~cnnstep.ops.kernels.conv_grads.DW_FROM_DZ_MIN_CHANNELS`
    input channels, the backward pass builds ``dW`` from window copies of ``A``: the forward's
    are kept (``windows``; small here: few channels per window), filling ``spare`` (the buffer
    of an earlier step that its backward pass is done with) when it fits. Elsewhere ``windows``
    is ``None``.
    """
    if training and W.shape[2] < DW_FROM_DZ_MIN_CHANNELS:
        return conv_forward_windows(A, W, b, hparameters, out=spare)
    Z, cache = conv_forward(A, W, b, hparameters)
    return Z, cache, None


def conv_backward_pass(
    dZ: np.ndarray, cache: ConvCache, windows: np.ndarray | None, need_dA_prev: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dA_prev or None, dW, db)`` of :func:`conv_pass`'s cache (and windows)."""
    return conv_grads(dZ, cache, need_dA_prev, windows)


def pool_pass(
    A: np.ndarray, hparameters: dict[str, Any], mode: str, training: bool
) -> tuple[np.ndarray, PoolCache, np.ndarray | None]:
    """A pooling's forward pass: ``(A_out, cache, taps)``; ``taps`` (max pooling in training,
    where it pays) for :func:`pool_backward_pass`, else ``None``."""
    if training and mode == "max":
        return max_pool_forward_taps(A, hparameters)
    A_out, cache = pool_forward(A, hparameters, mode=mode)
    return A_out, cache, None


def pool_backward_pass(
    dA: np.ndarray, cache: PoolCache, mode: str, A_out: np.ndarray, taps: np.ndarray | None
) -> np.ndarray:
    """``dA_prev`` of :func:`pool_pass`'s cache, given its output (and taps)."""
    if taps is not None:
        return max_pool_backward_taps(dA, cache, taps)
    return pool_backward_with_output(dA, cache, A_out, mode=mode)
