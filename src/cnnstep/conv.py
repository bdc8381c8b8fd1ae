"""Convolution, vectorized: one window copy (im2col) and one matrix product per batch chunk."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.geometry import (
    as_array,
    compute_dtype,
    conv_geometry,
    single_step_args,
    unpack_cache,
)
from cnnstep.padding import crop_hw, pad_hw
from cnnstep.windows import col2im_add, im2col
from cnnstep.workspace import batch_chunks

ConvCache = tuple[np.ndarray, np.ndarray, np.ndarray, dict]


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
    return dtype.type(np.sum(s) + dtype.type(b.reshape(-1)[0]))


def _conv_inputs(A_prev: Any, W: Any, b: Any, hparameters: Any, func: str):
    A_prev = as_array(A_prev, "A_prev", func)
    W = as_array(W, "W", func)
    b = as_array(b, "b", func)
    geom = conv_geometry(A_prev, W, b, hparameters, func)
    dtype = compute_dtype(func, A_prev=A_prev, W=W, b=b)
    return A_prev, W.astype(dtype, copy=False), b.astype(dtype, copy=False), geom, dtype


def conv_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict
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
    A_in, W_, b_, geom, dtype = _conv_inputs(A_prev, W, b, hparameters, "conv_forward")
    m = A_in.shape[0]
    n_H, n_W = geom.out_hw
    n_C = W_.shape[3]
    K = W_.shape[0] * W_.shape[1] * W_.shape[2]
    W_mat = W_.reshape(K, n_C)
    Z = np.empty((m, n_H, n_W, n_C), dtype=dtype)
    per_example = (n_H * n_W * K + int(np.prod(geom.padded_hw)) * W_.shape[2]) * dtype.itemsize
    for chunk in batch_chunks(m, per_example):
        cols = im2col(pad_hw(A_in[chunk], geom.pad, dtype=dtype), geom)
        np.matmul(cols, W_mat, out=Z[chunk].reshape(-1, n_C))
    Z += b_.reshape(n_C)
    return Z, (A_prev, W, b, hparameters)


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
    func = "conv_backward"
    cache = unpack_cache(cache, ("A_prev", "W", "b", "hparameters"), "conv_forward", func)
    A_in, W_, _, geom, dtype = _conv_inputs(*cache, func)
    dZ = as_array(dZ, "dZ", func)
    m, n_C_prev, n_C = A_in.shape[0], W_.shape[2], W_.shape[3]
    expected = (m, *geom.out_hw, n_C)
    if dZ.shape != expected:
        raise ValueError(
            f"{func}: dZ must have the shape of Z, {expected}, got shape {dZ.shape}"
        )
    dZ = np.ascontiguousarray(dZ, dtype=np.result_type(dtype, compute_dtype(func, dZ=dZ)))
    dtype = dZ.dtype
    W_ = W_.astype(dtype, copy=False)
    n_H, n_W = geom.out_hw
    K = W_.shape[0] * W_.shape[1] * n_C_prev
    W_mat = W_.reshape(K, n_C)

    db = dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, n_C)
    dW_mat = np.zeros((K, n_C), dtype=dtype)
    dA_prev = np.empty(A_in.shape, dtype=dtype)
    padded = int(np.prod(geom.padded_hw)) * n_C_prev
    per_example = (2 * n_H * n_W * K + 2 * padded) * dtype.itemsize
    for chunk in batch_chunks(m, per_example):
        A_pad = pad_hw(A_in[chunk], geom.pad, dtype=dtype)
        cols = im2col(A_pad, geom)
        dZ_mat = dZ[chunk].reshape(-1, n_C)
        dW_mat += cols.T @ dZ_mat
        dcols = dZ_mat @ W_mat.T
        dA_pad = np.zeros(A_pad.shape, dtype=dtype)
        col2im_add(dcols, geom, dA_pad)
        dA_prev[chunk] = crop_hw(dA_pad, geom.pad, geom.in_hw)
    return dA_prev, dW_mat.reshape(W_.shape), db
