"""Padding around the height and width of NHWC arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.geometry import Pad2D, as_array, explicit_pad


def pad_hw(X: np.ndarray, pad: Pad2D, value: float = 0.0, dtype: Any = None) -> np.ndarray:
    """Pad axes 1 and 2 of ``X`` with ``value``; no copy when there is nothing to pad.

    Parameters
    ----------
    X : ndarray of shape (m, n_H, n_W, n_C)
    pad : ((top, bottom), (left, right))
    value : float
        Fill value (``-inf`` for max pooling, where padded cells must never win).
    dtype : dtype, optional
        dtype of the result (default ``X.dtype``).

    Returns
    -------
    ndarray of shape (m, n_H + top + bottom, n_W + left + right, n_C)
    """
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    (t, bt), (lt, r) = pad
    if not (t or bt or lt or r):
        return X.astype(dtype, copy=False)
    m, n_H, n_W, n_C = X.shape
    out = np.empty((m, n_H + t + bt, n_W + lt + r, n_C), dtype=dtype)
    # Fill only the border: the interior is overwritten by X right after.
    out[:, :t] = value
    out[:, t + n_H:] = value
    out[:, t:t + n_H, :lt] = value
    out[:, t:t + n_H, lt + n_W:] = value
    out[:, t:t + n_H, lt:lt + n_W] = X
    return out


def crop_hw(X_pad: np.ndarray, pad: Pad2D, in_hw: tuple[int, int]) -> np.ndarray:
    """The interior of a padded array: ``X_pad[:, top:top + n_H, left:left + n_W]`` (a view).

    Slicing ``pad:-pad`` would be empty for a zero pad; this is not.
    """
    (t, _), (lt, _) = pad
    return X_pad[:, t:t + in_hw[0], lt:lt + in_hw[1]]


def zero_pad(X: np.ndarray, pad: Any) -> np.ndarray:
    """Pad the height and width of a batch of images with zeros.

    Parameters
    ----------
    X : ndarray of shape (m, n_H, n_W, n_C)
        A batch of ``m`` images.
    pad : int, (pad_h, pad_w) or ((top, bottom), (left, right))
        Zeros added on each side of the height and width (channels and batch are untouched).

    Returns
    -------
    X_pad : ndarray of shape (m, n_H + top + bottom, n_W + left + right, n_C)
        Same dtype as ``X``; always a new array.
    """
    X = as_array(X, "X", "zero_pad", ndim=4)
    pads = explicit_pad(pad, "pad", "zero_pad")
    out = pad_hw(X, pads)
    return out.copy() if out is X else out
