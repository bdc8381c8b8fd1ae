"""The eight step-by-step functions written as plain loops, to be read next to the formulas.

These are slow on purpose: one Python iteration per example, output cell and channel, exactly as
the formulas read. They give the same results as the fast functions in :mod:`cnnstep` (the test
suite checks this) and accept the same options. Only the hyperparameter parsing and padding are
shared with the fast path (:mod:`cnnstep.ops.geometry`, :mod:`cnnstep.ops.padding`).

Notation: ``m`` examples; ``n_H_prev, n_W_prev, n_C_prev`` the input's height, width, channels;
``n_H, n_W, n_C`` the output's; ``f_h x f_w`` the window; ``stride``, ``pad``, ``dilation``.

The step hook: every function here except the two helpers of the backward pass takes a
keyword-only ``on_step`` callback (default None: nothing is called and nothing changes).
It is called as ``on_step(i, h, w, c, value)`` once per step of the loops, in their order:

- ``conv_forward``, ``pool_forward``: after output cell ``(i, h, w, c)`` is computed, with its
  value;
- ``conv_backward``, ``pool_backward``: after the gradient cell ``dZ[i, h, w, c]`` (or
  ``dA[i, h, w, c]``) is routed back into its window, with that gradient;
- ``zero_pad``: for each input cell ``X[i, h, w, c]`` (which lands at ``h + top, w + left``),
  with its value.

The window of a step follows from ``h``, ``w`` and the geometry. :mod:`cnnstep.explain` records
its traces with this hook, so the loops it animates are these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstep.ops.checks import check_pool_mode, distribute_args, single_step_args
from cnnstep.ops.geometry import (
    as_array,
    compute_dtype,
    conv_geometry,
    explicit_pad,
    pool_geometry,
    unpack_cache,
)
from cnnstep.ops.padding import crop_hw, pad_hw

#: ``on_step(i, h, w, c, value)``: see the module's docstring
StepHook = Callable[[int, int, int, int, float], None]

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
]


def zero_pad(X: np.ndarray, pad: Any, *, on_step: StepHook | None = None) -> np.ndarray:
    """Pad the height and width of every image in ``X`` with zeros.

    Parameters
    ----------
    X : ndarray of shape (m, n_H, n_W, n_C)
    pad : int, (pad_h, pad_w) or ((top, bottom), (left, right))
    on_step : callable, optional
        ``on_step(i, h, w, c, value)`` at each step (see the module's docstring).

    Returns
    -------
    X_pad : ndarray of shape (m, n_H + top + bottom, n_W + left + right, n_C)
    """
    X = as_array(X, "X", "zero_pad", ndim=4)
    (top, bottom), (left, right) = explicit_pad(pad, "pad", "zero_pad")
    # Axis by axis: no padding on the examples, top/bottom, left/right, none on the channels.
    X_pad = np.pad(X, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="constant",
                   constant_values=0)
    if on_step is not None:  # one step per input cell, in loop order
        for i, h, w, c in np.ndindex(*X.shape):
            on_step(i, h, w, c, X[i, h, w, c])
    return X_pad


def conv_single_step(a_slice_prev: np.ndarray, W: np.ndarray, b: Any) -> np.floating:
    """One filter on one window: ``Z = sum(a_slice_prev * W) + b``.

    Parameters
    ----------
    a_slice_prev : ndarray of shape (f, f, n_C_prev)
    W : ndarray of shape (f, f, n_C_prev)
    b : ndarray of shape (1, 1, 1)

    Returns
    -------
    Z : numpy floating scalar
    """
    a, W, b, dtype = single_step_args(a_slice_prev, W, b, "conv_single_step")
    s = a.astype(dtype) * W.astype(dtype)  # element-wise product
    Z = np.sum(s)  # sum over all entries of the volume
    Z = Z + dtype.type(b.reshape(-1)[0])  # b.item(), not float(b): NumPy 2 refuses the latter
    return dtype.type(Z)  # type: ignore[no-any-return]


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict[str, Any],
                 *, on_step: StepHook | None = None) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Convolution forward pass, one output cell at a time.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    b : ndarray of shape (1, 1, 1, n_C)
    hparameters : dict with "stride", "pad" and optionally "dilation"
    on_step : callable, optional
        ``on_step(i, h, w, c, value)`` at each step (see the module's docstring).

    Returns
    -------
    Z : ndarray of shape (m, n_H, n_W, n_C)
    cache : (A_prev, W, b, hparameters)
    """
    A_prev_in = as_array(A_prev, "A_prev", "conv_forward")
    W_in = as_array(W, "W", "conv_forward")
    b_in = as_array(b, "b", "conv_forward")
    geom = conv_geometry(A_prev_in, W_in, b_in, hparameters, "conv_forward")
    dtype = compute_dtype("conv_forward", A_prev=A_prev_in, W=W_in, b=b_in)
    m = A_prev_in.shape[0]
    f_h, f_w, n_C_prev, n_C = W_in.shape
    stride_h, stride_w = geom.stride
    dil_h, dil_w = geom.dilation
    n_H, n_W = geom.out_hw
    b_in = b_in.reshape(1, 1, 1, n_C)

    A_prev_pad = pad_hw(A_prev_in, geom.pad, dtype=dtype)
    Z = np.zeros((m, n_H, n_W, n_C), dtype=dtype)
    for i in range(m):                      # loop over the batch of training examples
        a_prev_pad = A_prev_pad[i]          # select ith training example's padded activation
        for h in range(n_H):                # loop over vertical axis of the output volume
            vert_start = h * stride_h
            vert_end = vert_start + (f_h - 1) * dil_h + 1
            for w in range(n_W):            # loop over horizontal axis of the output volume
                horiz_start = w * stride_w
                horiz_end = horiz_start + (f_w - 1) * dil_w + 1
                # The window: every dil-th cell from the corner (dil = 1: a contiguous block).
                a_slice_prev = a_prev_pad[vert_start:vert_end:dil_h,
                                          horiz_start:horiz_end:dil_w, :]
                for c in range(n_C):        # loop over the filters (output channels)
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W_in[:, :, :, c],
                                                     b_in[:, :, :, c])
                    if on_step is not None:
                        on_step(i, h, w, c, Z[i, h, w, c])
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ: np.ndarray, cache: tuple[Any, ...], *,
                  on_step: StepHook | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convolution backward pass, one output cell at a time.

    Parameters
    ----------
    dZ : ndarray of shape (m, n_H, n_W, n_C)
    cache : (A_prev, W, b, hparameters) from :func:`conv_forward`
    on_step : callable, optional
        ``on_step(i, h, w, c, value)`` at each step (see the module's docstring).

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev)
    dW : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    db : ndarray of shape (1, 1, 1, n_C)
    """
    A_prev, W, b, hparameters = unpack_cache(cache, ("A_prev", "W", "b", "hparameters"),
                                             "conv_forward", "conv_backward")
    A_prev = as_array(A_prev, "A_prev", "conv_backward")
    W = as_array(W, "W", "conv_backward")
    b = as_array(b, "b", "conv_backward")
    dZ = as_array(dZ, "dZ", "conv_backward")
    geom = conv_geometry(A_prev, W, b, hparameters, "conv_backward")
    dtype = compute_dtype("conv_backward", A_prev=A_prev, W=W, b=b, dZ=dZ)
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f_h, f_w, _, n_C = W.shape
    stride_h, stride_w = geom.stride
    dil_h, dil_w = geom.dilation
    n_H, n_W = geom.out_hw
    if dZ.shape != (m, n_H, n_W, n_C):
        raise ValueError(f"conv_backward: dZ must have the shape of Z, {(m, n_H, n_W, n_C)}, "
                         f"got shape {dZ.shape}")

    dA_prev = np.zeros(A_prev.shape, dtype=dtype)
    dW = np.zeros(W.shape, dtype=dtype)
    db = np.zeros((1, 1, 1, n_C), dtype=dtype)
    A_prev_pad = pad_hw(A_prev, geom.pad, dtype=dtype)
    dA_prev_pad = pad_hw(dA_prev, geom.pad)

    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(n_H):
            vert_start = h * stride_h
            vert_end = vert_start + (f_h - 1) * dil_h + 1
            for w in range(n_W):
                horiz_start = w * stride_w
                horiz_end = horiz_start + (f_w - 1) * dil_w + 1
                window = (slice(vert_start, vert_end, dil_h), slice(horiz_start, horiz_end, dil_w))
                a_slice = a_prev_pad[window]
                for c in range(n_C):
                    # += everywhere: neighbouring windows overlap and their gradients add up.
                    da_prev_pad[window] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
                    if on_step is not None:
                        on_step(i, h, w, c, dZ[i, h, w, c])
    # Un-pad by position, not with [pad:-pad], which is empty when pad is 0.
    dA_prev[:] = crop_hw(dA_prev_pad, geom.pad, (n_H_prev, n_W_prev))
    return dA_prev, dW, db


def create_mask_from_window(x: np.ndarray) -> np.ndarray:
    """True at the window's maximum (the first one, in row-major order, when values tie).

    Parameters
    ----------
    x : ndarray of shape (f, f)

    Returns
    -------
    mask : ndarray of shape (f, f), bool
    """
    x = as_array(x, "x", "create_mask_from_window")
    if x.size == 0:
        raise ValueError(f"create_mask_from_window: x must not be empty, got shape {x.shape}")
    # x == np.max(x) would mark every tied cell and so multiply the gradient; keep only the first.
    mask = np.zeros(x.shape, dtype=bool)
    first = np.unravel_index(np.argmax(x), x.shape)
    mask[first] = True
    return mask


def distribute_value(dz: Any, shape: tuple[int, int]) -> np.ndarray:
    """``dz`` shared equally by the ``n_H * n_W`` cells of a window.

    Parameters
    ----------
    dz : float
    shape : (n_H, n_W)

    Returns
    -------
    a : ndarray of shape (n_H, n_W), every cell ``dz / (n_H * n_W)``
    """
    dz, (n_H, n_W), dtype = distribute_args(dz, shape, "distribute_value")
    average = dz / (n_H * n_W)  # divide by the number of cells, not by n_H + n_W
    return np.asarray(np.ones((n_H, n_W), dtype=dtype) * average)


def pool_forward(A_prev: np.ndarray, hparameters: dict[str, Any], mode: str = "max", *,
                 on_step: StepHook | None = None) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Pooling forward pass, one output cell at a time.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
    hparameters : dict with "f", "stride" and optionally "pad"
    mode : {"max", "average"}
    on_step : callable, optional
        ``on_step(i, h, w, c, value)`` at each step (see the module's docstring).

    Returns
    -------
    A : ndarray of shape (m, n_H, n_W, n_C)
    cache : (A_prev, hparameters)
    """
    check_pool_mode(mode, "pool_forward")
    A_in = as_array(A_prev, "A_prev", "pool_forward")
    geom = pool_geometry(A_in, hparameters, "pool_forward")
    dtype = compute_dtype("pool_forward", A_prev=A_in)
    m, n_H_prev, n_W_prev, n_C = A_in.shape
    f_h, f_w = geom.kernel
    stride_h, stride_w = geom.stride
    (top, _), (left, _) = geom.pad
    n_H, n_W = geom.out_hw

    A = np.zeros((m, n_H, n_W, n_C), dtype=dtype)
    for i in range(m):
        for h in range(n_H):
            # The window in padded coordinates, clipped to the real cells: padding never counts.
            vert_start = max(h * stride_h - top, 0)
            vert_end = min(h * stride_h - top + f_h, n_H_prev)
            for w in range(n_W):
                horiz_start = max(w * stride_w - left, 0)
                horiz_end = min(w * stride_w - left + f_w, n_W_prev)
                for c in range(n_C):
                    a_prev_slice = A_in[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    else:
                        A[i, h, w, c] = np.mean(a_prev_slice)
                    if on_step is not None:
                        on_step(i, h, w, c, A[i, h, w, c])
    return A, (A_prev, hparameters)


def pool_backward(dA: np.ndarray, cache: tuple[Any, ...], mode: str = "max", *,
                  on_step: StepHook | None = None) -> np.ndarray:
    """Pooling backward pass, one output cell at a time.

    Parameters
    ----------
    dA : ndarray of shape (m, n_H, n_W, n_C)
    cache : (A_prev, hparameters) from :func:`pool_forward`
    mode : {"max", "average"}
    on_step : callable, optional
        ``on_step(i, h, w, c, value)`` at each step (see the module's docstring).

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
    """
    check_pool_mode(mode, "pool_backward")
    A_prev, hparameters = unpack_cache(cache, ("A_prev", "hparameters"), "pool_forward",
                                       "pool_backward")
    A_prev = as_array(A_prev, "A_prev", "pool_backward")
    dA = as_array(dA, "dA", "pool_backward")
    geom = pool_geometry(A_prev, hparameters, "pool_backward")
    dtype = compute_dtype("pool_backward", A_prev=A_prev, dA=dA)
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f_h, f_w = geom.kernel
    stride_h, stride_w = geom.stride
    (top, _), (left, _) = geom.pad
    n_H, n_W = geom.out_hw
    if dA.shape != (m, n_H, n_W, n_C):
        raise ValueError(f"pool_backward: dA must have the shape of A, {(m, n_H, n_W, n_C)}, "
                         f"got shape {dA.shape}")

    dA_prev = np.zeros(A_prev.shape, dtype=dtype)
    for i in range(m):
        a_prev = A_prev[i]
        for h in range(n_H):
            vert_start = max(h * stride_h - top, 0)
            vert_end = min(h * stride_h - top + f_h, n_H_prev)
            for w in range(n_W):
                horiz_start = max(w * stride_w - left, 0)
                horiz_end = min(w * stride_w - left + f_w, n_W_prev)
                window = (slice(vert_start, vert_end), slice(horiz_start, horiz_end))
                for c in range(n_C):
                    if mode == "max":
                        a_prev_slice = a_prev[window][:, :, c]
                        mask = create_mask_from_window(a_prev_slice)
                        dA_prev[i][window][:, :, c] += mask * dA[i, h, w, c]
                    else:
                        da = dA[i, h, w, c]
                        shape = (vert_end - vert_start, horiz_end - horiz_start)
                        dA_prev[i][window][:, :, c] += distribute_value(da, shape)
                    if on_step is not None:
                        on_step(i, h, w, c, dA[i, h, w, c])
    return dA_prev
