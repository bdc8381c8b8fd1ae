"""The classification losses on logits, fused with their output function so that the gradient is
simply ``p - y``: softmax cross-entropy for ``K >= 2`` outputs, sigmoid (binary) cross-entropy
for one output.

A model whose last layer has one unit is a binary classifier: its logit ``z`` gives class 1
with probability ``sigmoid(z)`` and class 0 with ``1 - sigmoid(z)``. :func:`classification_loss`,
:func:`probabilities` and :func:`predicted_classes` choose by the number of columns, so every
caller treats both kinds alike (two probability columns for a binary classifier).
"""

from __future__ import annotations

import numpy as np

from cnnstep.nn.layers.activations import sigmoid


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


def sigmoid_cross_entropy(
    logits: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against labels 0/1, and its gradient.

    Parameters
    ----------
    logits : ndarray of shape (m, 1)
        One score per example (the output of a one-unit ``Dense`` layer).
    y : ndarray of shape (m,)
        Labels 0 or 1.

    Returns
    -------
    loss : float
        ``mean(max(z, 0) - z * y + log(1 + exp(-|z|)))``, the cross-entropy written so that
        nothing overflows or loses the small probabilities (computed in float64).
    dlogits : ndarray of shape (m, 1)
        ``(sigmoid(z) - y) / m``.
    probs : ndarray of shape (m, 2)
        ``[1 - sigmoid(z), sigmoid(z)]``: the probabilities of classes 0 and 1.
    """
    m = logits.shape[0]
    if logits.ndim != 2 or logits.shape[1] != 1:
        raise ValueError(f"logits must have shape (m, 1), got {logits.shape}")
    if y.shape != (m,):
        raise ValueError(f"y must have shape ({m},) to match logits {logits.shape}, got {y.shape}")
    z = logits[:, 0].astype(np.float64)
    loss = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
    probs = binary_probabilities(logits)
    dlogits = (probs[:, 1:] - y[:, None].astype(logits.dtype)) / logits.dtype.type(max(m, 1))
    return loss, dlogits, probs


def binary_probabilities(logits: np.ndarray) -> np.ndarray:
    """``[sigmoid(-z), sigmoid(z)]`` for logits ``z`` of shape (m, 1): shape (m, 2)."""
    return np.concatenate([sigmoid(-logits), sigmoid(logits)], axis=1)


def classification_loss(
    logits: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """:func:`sigmoid_cross_entropy` for one column of logits, else
    :func:`softmax_cross_entropy`; ``probs`` has two columns or more either way."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        return sigmoid_cross_entropy(logits, y)
    return softmax_cross_entropy(logits, y)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities for logits of shape (m, K): the softmax, or for K = 1 the two
    columns ``[1 - sigmoid, sigmoid]``. Shape (m, max(K, 2))."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        return binary_probabilities(logits)
    return softmax(logits)


def predicted_classes(logits: np.ndarray) -> np.ndarray:
    """The most probable class of each row: ``argmax``, or for one column ``logit > 0``."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return logits.argmax(axis=1)
