"""Convolution, vectorized: window copies (im2col) and matrix products, block by block.

The output rows are processed in blocks small enough that each block's window matrix is still in
cache when the matrix product reads it (:func:`~cnnstep.ops.kernels.workspace.row_blocks`);
scratch buffers are allocated once per call and reused by every block, so one call's scratch is a
few MiB whatever the batch size.

A 1x1 convolution with stride 1 and no padding is a single matrix product each way.

The gradients are in :mod:`cnnstep.ops.kernels.conv_grads`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.checks import single_step_args
from cnnstep.ops.kernels.conv_grads import ConvCache, conv_grads, conv_work
from cnnstep.ops.kernels.im2col import (
    Scratch,
    all_finite,
    block_cols,
    conv_inputs,
    is_pointwise,
    window_rows,
)
from cnnstep.ops.kernels.threads import batch_parts, run_parts
from cnnstep.ops.kernels.wide import forward_wide, uses_wide_windows, wide_shape
from cnnstep.ops.kernels.workspace import get_workspace_budget, row_blocks


def conv_single_step(a_slice_prev: np.ndarray, W: np.ndarray, b: Any) -> np.floating:
    """Apply one filter to one window: ``sum(a_slice_prev * W) + b``.

    Parameters
    ----------
    a_slice_prev : ndarray of shape (f, f, n_C_prev)
        One window of the input.
    W : ndarray of shape (f, f, n_C_prev)
        One filter.
    b : ndarray of shape (1, 1, 1), or a number
        Its bias.

    Returns
    -------
    Z : numpy floating scalar
        float32 when every input is float32, float64 otherwise.
    """
    a, W, b, dtype = single_step_args(a_slice_prev, W, b, "conv_single_step")
    s = np.multiply(a, W, dtype=dtype)
    # b.item()-style conversion: float(b) on a (1, 1, 1) array is an error in NumPy 2.
    return dtype.type(np.sum(s) + dtype.type(b.reshape(-1)[0]))  # type: ignore[no-any-return]


def conv_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict[str, Any]
) -> tuple[np.ndarray, ConvCache]:
    """Forward pass of a convolution layer (cross-correlation, no activation).

    ``Z[i, h, w, c] = sum(A_pad[i, window(h, w)] * W[..., c]) + b[..., c]``.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev)
        Activations of the previous layer.
    W : ndarray of shape (f_h, f_w, n_C_prev, n_C)
        Filters (``f_h == f_w == f`` in the original material).
    b : ndarray of shape (1, 1, 1, n_C)
        Biases.
    hparameters : dict
        ``"stride"``: int or (s_h, s_w); ``"pad"``: int, (p_h, p_w), ((top, bottom), (left, right)),
        ``"same"`` or ``"valid"``; optional ``"dilation"``: int or (d_h, d_w), default 1.

    Returns
    -------
    Z : ndarray of shape (m, n_H, n_W, n_C)
        ``n_H = floor((n_H_prev + top + bottom - ((f_h - 1) * d_h + 1)) / s_h) + 1``, likewise
        ``n_W``.
        float32 for float32 inputs, float64 for float64 or integer inputs.
    cache : tuple
        ``(A_prev, W, b, hparameters)`` as given, for :func:`conv_backward`.
    """
    Z, _ = _forward(A_prev, W, b, hparameters, keep_windows=False)
    return Z, (A_prev, W, b, hparameters)


def conv_forward_windows(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict[str, Any],
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, ConvCache, np.ndarray | None]:
    """:func:`conv_forward` that also keeps its window matrix, for the backward pass.

    The backward pass builds ``dW`` from window copies of ``A_prev`` when there are few input
    channels (and always for a network's first layer): with the matrix kept, those copies are
    made once per training step instead of twice. It is kept only while it fits the workspace
    budget (:func:`cnnstep.ops.kernels.workspace.get_workspace_budget`), else ``None``.

    Parameters
    ----------
    A_prev, W, b, hparameters
        As :func:`conv_forward`.
    out : ndarray, optional
        A window matrix of an earlier step that is no longer needed: it is filled again when its
        shape and dtype fit (a layer reuses one buffer from step to step, so that the pages of
        a fresh array need not be found again each time).

    Returns
    -------
    Z, cache
        As :func:`conv_forward`.
    windows : ndarray of shape (m * n_H * n_W, f_h * f_w * n_C_prev), or None
        (of :func:`cnnstep.ops.kernels.wide.wide_shape` where the wide windows are used)
        Pass it to :func:`conv_backward_params` or :func:`cnnstep.ops.kernels.conv_grads.conv_grads`
        with the same cache.
    """
    Z, windows = _forward(A_prev, W, b, hparameters, keep_windows=True, out=out)
    return Z, (A_prev, W, b, hparameters), windows


def _forward(
    A_prev: Any, W: Any, b: Any, hparameters: Any, keep_windows: bool,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    A_in, W_, b_, geom, dtype = conv_inputs(A_prev, W, b, hparameters, "conv_forward")
    m = A_in.shape[0]
    parts = None if keep_windows else batch_parts(m, conv_work(geom, m, W_.shape), "conv")
    if parts:  # several threads: each its part of the batch
        Zs = run_parts(lambda s: _forward(A_in[s], W_, b_, hparameters, False)[0], parts)
        return np.concatenate(Zs), None
    n_H, n_W = geom.out_hw
    f_h, f_w, n_C_prev, n_C = W_.shape
    K = f_h * f_w * n_C_prev
    W_mat = W_.reshape(K, n_C)
    bias = b_.reshape(n_C)
    Z = np.empty((m, n_H, n_W, n_C), dtype=dtype)
    if is_pointwise(geom):
        np.matmul(A_in.astype(dtype, copy=False).reshape(-1, n_C_prev), W_mat,
                  out=Z.reshape(-1, n_C))
        Z += bias
        return Z, None
    # The wide windows multiply cells outside each window by zero weights: a NaN or an infinity
    # there would spread to its neighbours (inf * 0 is NaN), where the loops leave them alone.
    wide = uses_wide_windows(geom, n_C_prev, n_C) and all_finite(A_in)
    windows = None
    shape = wide_shape(geom, m, n_C_prev) if wide else (m * n_H * n_W, K)
    if keep_windows and shape[0] * shape[1] * dtype.itemsize <= get_workspace_budget():
        fits = out is not None and out.shape == shape and out.dtype == dtype
        windows = out if fits else np.empty(shape, dtype=dtype)
    if wide:
        forward_wide(A_in, W_, bias, geom, dtype, Z, windows)
        return Z, windows
    scratch = Scratch(dtype)
    for ex, h0, h1 in row_blocks(m, n_H, n_W * K * dtype.itemsize):
        rows = None if windows is None else windows[window_rows(geom, ex, h0, h1)]
        cols = block_cols(A_in, geom, ex, h0, h1, dtype, scratch, rows)
        z = Z[ex, h0:h1].reshape(-1, n_C)
        np.matmul(cols, W_mat, out=z)
        z += bias  # while the block is still in cache
    return Z, windows


def conv_backward(
    dZ: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of a convolution layer.

    Parameters
    ----------
    dZ : ndarray of shape (m, n_H, n_W, n_C)
        Gradient of the cost with respect to the output ``Z`` of :func:`conv_forward`.
    cache : tuple
        ``(A_prev, W, b, hparameters)`` from :func:`conv_forward`.

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev)
        Gradient with respect to ``A_prev``; input cells that no window covers get exactly 0.
    dW : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    db : ndarray of shape (1, 1, 1, n_C)
    """
    dA_prev, dW, db = conv_grads(dZ, cache)
    assert dA_prev is not None
    return dA_prev, dW, db


def conv_backward_params(
    dZ: np.ndarray, cache: ConvCache, windows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The parameter gradients of a convolution, without the input gradient.

    What a network's first layer needs in training (nothing is upstream of it): the same
    ``dW`` and ``db`` as :func:`conv_backward`, without computing ``dA_prev``.

    Parameters
    ----------
    dZ : ndarray of shape (m, n_H, n_W, n_C)
    cache : tuple
        ``(A_prev, W, b, hparameters)`` from :func:`conv_forward`.
    windows : ndarray, optional
        The window matrix :func:`conv_forward_windows` kept with this cache: ``dW`` is then
        computed from it instead of new window copies.

    Returns
    -------
    dW : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    db : ndarray of shape (1, 1, 1, n_C)
    """
    _, dW, db = conv_grads(dZ, cache, need_dA_prev=False, windows=windows)
    return dW, db
