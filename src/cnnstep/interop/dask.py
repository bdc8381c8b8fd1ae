"""Predictions on dask arrays: one task per chunk of images, on a laptop or a cluster.

``predict_proba(model, X)`` and ``predict(model, X)`` take a dask array of NHWC images chunked
along the batch axis only (each chunk holds whole images) and return dask arrays: nothing runs
until ``.compute()`` (or ``client.compute``), and then each chunk runs on whichever worker holds
it. The model travels with the task graph (it pickles without anything but NumPy arrays).

Hyperparameter search beyond one machine needs no code here: scikit-learn's ``GridSearchCV``
over :class:`cnnstep.sklearn.CNNClassifier` inside ``joblib.parallel_backend("dask")`` runs its
fits on the workers of a ``distributed.Client`` (see the README, "More than one machine").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.interop.extras import require
from cnnstep.nn.model import Sequential
from cnnstep.ops.kernels.threads import blas_one_thread, serial


def _check(model: Sequential, X: Any, func: str) -> Any:
    da = require("dask.array", "dask", f"cnnstep.interop.dask.{func}")
    if not isinstance(X, da.Array):
        raise TypeError(f"{func}: X must be a dask array, got {type(X).__name__} "
                        "(for NumPy arrays use model.predict_proba)")
    if not model.built:
        raise ValueError(f"{func}: model is not built")
    if tuple(X.shape[1:]) != model.input_shape:
        expected = ", ".join(map(str, model.input_shape or ()))
        raise ValueError(f"{func}: X must have shape (m, {expected}), got {X.shape}")
    for axis, chunks in enumerate(X.chunks[1:], start=1):
        if len(chunks) != 1:
            raise ValueError(
                f"{func}: X must be chunked along the batch axis (axis 0) only, but axis {axis} "
                f"is split into {len(chunks)} chunks {chunks}; use "
                f"X.rechunk({{{', '.join(f'{a}: -1' for a in range(1, X.ndim))}}})")
    if not (model.output_shape and len(model.output_shape) == 1):
        raise ValueError(f"{func}: the model must output class scores (m, n_classes), "
                         f"its output shape is {model.output_shape}")
    return da


def _block_proba(block: np.ndarray, model: Sequential) -> np.ndarray:
    # a replica shares the weights but not the per-call caches: safe on a threaded worker.
    # One thread per chunk wherever it runs (dask runs chunks side by side): a product's last
    # bits can depend on BLAS's and oneDNN's thread count, which differ between a worker and
    # this process, so this is what makes a cluster's result the in-process one, bit for bit.
    with serial(), blas_one_thread():
        return model.replica().predict_proba(block)


def predict_proba(model: Sequential, X: Any) -> Any:
    """Class probabilities of the images in ``X``, lazily.

    Parameters
    ----------
    model : Sequential
        Built.
    X : dask.array.Array of shape (m, n_H, n_W, n_C)
        Chunked along axis 0 only.

    Returns
    -------
    dask.array.Array of shape (m, n_classes), the model's dtype, chunked as ``X`` along axis 0.
    """
    da = _check(model, X, "predict_proba")
    n_classes = model.n_classes or 0  # two columns for a one-output (binary) model
    return da.map_blocks(_block_proba, X, model, dtype=model.dtype, drop_axis=[2, 3],
                         chunks=(X.chunks[0], (n_classes,)), name="cnnstep-predict-proba")


def predict(model: Sequential, X: Any) -> Any:
    """Predicted class indices of the images in ``X``: a dask array of shape (m,), int64."""
    return predict_proba(model, X).argmax(axis=1)
