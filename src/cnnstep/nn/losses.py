"""Softmax and the softmax cross-entropy loss (fused, so its gradient is simply ``p - y``)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits.

    Parameters
    ----------
    logits : ndarray of shape (m, n_classes)

    Returns
    -------
    ndarray of shape (m, n_classes)
        Probabilities; each row sums to 1. Same float dtype as ``logits``.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def softmax_cross_entropy(
    logits: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer labels, and its gradient.

    Parameters
    ----------
    logits : ndarray of shape (m, n_classes)
        Scores before the softmax (the output of the last ``Dense`` layer).
    y : ndarray of shape (m,)
        Integer class labels in ``[0, n_classes)``.

    Returns
    -------
    loss : float
        ``mean(-log softmax(logits)[i, y[i]])``; ``inf``/``nan`` when the logits are not finite.
    dlogits : ndarray of shape (m, n_classes)
        Gradient of ``loss`` with respect to ``logits``: ``(softmax(logits) - onehot(y)) / m``.
    probs : ndarray of shape (m, n_classes)
        ``softmax(logits)``.
    """
    m = logits.shape[0]
    if y.shape != (m,):
        raise ValueError(f"y must have shape ({m},) to match logits {logits.shape}, got {y.shape}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    rows = np.arange(m)
    # log-sum-exp form: exact even where a probability underflows to 0
    loss = float(np.mean(np.log(sums[:, 0], dtype=np.float64) - shifted[rows, y]))
    probs = exp / sums
    dlogits = probs.copy()
    dlogits[rows, y] -= 1
    dlogits /= m
    return loss, dlogits, probs
