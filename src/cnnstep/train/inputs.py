"""The checks of what ``Sequential.fit`` is given: the same rules the data readers apply to
files, with messages that name the Python argument (``x``, ``y``, ``validation_data``).

Decisions: labels may be integer class indices of shape (m,), or one-hot rows of shape
(m, K); whole-number floats are accepted, fractions are not. Pixels must be floats:
``uint8`` images are refused with the fix (``x.astype("float32") / 255``) rather than scaled
silently, because ``predict`` and ``evaluate`` would then see other numbers than ``fit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_fit_inputs"]


def _labels(y: Any, name: str, m: int, n_classes: int | None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[0] == m and y.size and y.dtype.kind in "biuf":
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(
                f"{name} of shape {y.shape} must be one-hot rows (a single 1 per row), or class "
                f"indices of shape ({m},)"
            )
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(f"{name} must have shape ({m},) (class indices) or ({m}, K) (one-hot), "
                         f"got shape {y.shape}")
    if y.shape[0] != m:
        raise ValueError(f"{name} has {y.shape[0]} labels but x has {m} examples")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise ValueError(f"{name} must hold integer class indices, found "
                             f"{float(y[bad[0]]):g} at index {int(bad[0])}")
    elif y.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and n_classes is not None:
        bad = np.flatnonzero((y < 0) | (y >= n_classes))
        if bad.size:
            raise ValueError(f"{name} holds label {int(y[bad[0]])} at index {int(bad[0])}, "
                             f"outside the model's {n_classes} classes (0..{n_classes - 1})")
    return y


def _pixels(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.uint8:
        raise ValueError(
            f"{name} is uint8 (pixels 0-255); cnnstep trains on floats in [0, 1]: pass "
            f"{name}.astype('float32') / 255"
        )
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numbers, got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (m, n_H, n_W, n_C), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no examples")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        at = int(np.flatnonzero(~np.isfinite(x).reshape(x.shape[0], -1).all(axis=1))[0])
        raise ValueError(f"{name} contains NaN or infinity (example {at})")
    return x


def check_fit_inputs(
    x: Any, y: Any, n_classes: int | None, *, x_name: str = "x", y_name: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(x, y)`` for training: ValueError naming the argument otherwise.

    Parameters
    ----------
    x : array-like of shape (m, n_H, n_W, n_C)
        Float pixels (uint8 is refused, see the module docstring); no NaN or infinity.
    y : array-like of shape (m,) or (m, K)
        Integer class indices, or one-hot rows.
    n_classes : int or None
        The model's number of outputs (labels must lie in 0..n_classes-1); None: unchecked.
    x_name, y_name : str
        The argument names used in messages.

    Returns
    -------
    x : ndarray of shape (m, n_H, n_W, n_C), as given
    y : ndarray of shape (m,), int64
    """
    x = _pixels(x, x_name)
    y = _labels(y, y_name, x.shape[0], n_classes)
    return x, y
