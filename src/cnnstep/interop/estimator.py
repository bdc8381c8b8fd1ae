"""A scikit-learn classifier around a cnnstep network: pipelines, grid search, cross-validation.

Imported by ``cnnstep.sklearn`` (and ``cnnstep.interop.CNNClassifier``); importing it imports
scikit-learn (the ``sklearn`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnstep.interop.extras import require
from cnnstep.nn.architectures import ARCHITECTURES
from cnnstep.nn.layers import Dense, Flatten, Layer, ReLU
from cnnstep.nn.model import Sequential
from cnnstep.nn.optimizers import optimizer_from_config

require("sklearn", "sklearn", "cnnstep.sklearn")

from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.multiclass import check_classification_targets  # noqa: E402
from sklearn.utils.validation import (  # noqa: E402
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

Arch = str | Callable[[int], Sequence[Layer]]

#: ``arch="auto"``: images of at least this many cells a side get the convolutional network
#: (its two 2x2 max poolings need 4), smaller inputs the network of one hidden layer of
#: ``AUTO_HIDDEN`` units.
AUTO_MIN_IMAGE = 4
AUTO_HIDDEN = 100
#: ``epochs="auto"``: at least this many gradient steps (and at least 10 epochs).
AUTO_MIN_STEPS = 200


def _ndim(X: Any) -> int:
    """Dimensions of an array, data frame or nested list (without trusting ``np.shape``, which
    array-likes may refuse)."""
    return int(X.ndim) if hasattr(X, "ndim") else np.asarray(X).ndim


def in_float64(model: Sequential) -> Sequential:
    """``model`` with its arrays (parameters and state) in float64: the same function, computed
    in double precision."""
    if model.dtype == np.float64:
        return model
    twin = Sequential.from_config({**model.get_config(), "dtype": "float64"})
    arrays = model.named_arrays()
    for key, value in twin.named_arrays().items():
        value[...] = arrays[key]
    return twin


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """A convolutional network trained by cnnstep, as a scikit-learn classifier.

    Parameters
    ----------
    arch : str or callable, default "auto"
        ``"auto"``: the ``default`` convolutional network for images of at least 4x4 cells (4-D
        ``X``, or rows read with ``image_shape``), and for anything smaller (a row of features
        is a 1x1 image) a network of one hidden layer: ``Flatten, Dense(100), ReLU,
        Dense(n_classes)``. Or a built-in architecture name
        (``cnnstep.nn.architectures.ARCHITECTURES``), or a function ``n_classes -> list of
        layers``.
    image_shape : (n_H, n_W, n_C), optional
        How to read the rows of a 2-D ``X`` of shape (m, n_H * n_W * n_C) (channels last, as
        ``x.reshape(m, -1)`` of NHWC images). Without it a row of n features is one 1x1 image of
        n channels. A 4-D ``X`` (m, n_H, n_W, n_C) is taken as it is.
    epochs : int or "auto", default "auto"
        ``"auto"``: at least 10 epochs and at least ``AUTO_MIN_STEPS`` (200) gradient steps, so
        that a small data set is not left half-trained (200 rows in batches of 64: 50 epochs;
        10,000 images: 10).
    batch_size : int, default 64
    optimizer : {"adam", "sgd"}, default "adam"
    lr : float, optional
        Learning rate; the optimizer's default (Adam 1e-3, SGD 1e-2) when None.
    augment : int, default 0
        Shift training images by up to this many pixels at random.
    random_state : int, RandomState or None
        Seeds the initial weights, shuffling, dropout and augmentation.
    threads : int, optional
        Threads sharing each batch in training. None means 1, as scikit-learn's ``n_jobs=None``
        does: searches and cross-validation run several fits at once (``n_jobs``), and a small
        network trains faster on one thread than split (``cnnstep train`` picks its own).
    verbose : int, default 0
        Print one line per epoch when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : Sequential
        The trained network (save it with ``model_.save(path)``).
    image_shape_ : (n_H, n_W, n_C)
    n_features_in_ : int
        n_H * n_W * n_C.
    history_ : list of dict
        Per-epoch metrics of the last ``fit``.
    """

    def __init__(self, arch: Arch = "auto", image_shape: Sequence[int] | None = None,
                 epochs: int | str = "auto", batch_size: int = 64, optimizer: str = "adam",
                 lr: float | None = None, augment: int = 0, random_state: Any = None,
                 threads: int | None = None, verbose: int = 0) -> None:
        self.arch = arch
        self.image_shape = image_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.augment = augment
        self.random_state = random_state
        self.threads = threads
        self.verbose = verbose

    # ------------------------------------------------------------------ data

    def _images(self, X: Any, fit: bool) -> np.ndarray:
        """``X`` as float32 NHWC images, checked (and, in ``fit``, remembered)."""
        if _ndim(X) > 2:
            x = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=True)
            if x.ndim != 4:
                raise ValueError(f"X must be 2-D (m, features) or 4-D (m, n_H, n_W, n_C), "
                                 f"got shape {x.shape}")
            if fit:
                self.n_features_in_ = int(np.prod(x.shape[1:]))
                self.image_shape_ = tuple(int(d) for d in x.shape[1:])
            elif x.shape[1:] != self.image_shape_:
                raise ValueError(f"X has images of shape {x.shape[1:]}, but {type(self).__name__}"
                                 f" was fitted on {self.image_shape_}")
            return x
        x = validate_data(self, X, dtype=np.float32, ensure_all_finite=True, reset=fit)
        n = x.shape[1]
        if fit:
            shape = (1, 1, n) if self.image_shape is None else tuple(int(d) for d in
                                                                   self.image_shape)
            if len(shape) != 3 or int(np.prod(shape)) != n:
                raise ValueError(f"image_shape must be (n_H, n_W, n_C) with n_H * n_W * n_C = "
                                 f"{n} (the features of X), got {self.image_shape!r}")
            self.image_shape_ = shape
        return x.reshape(x.shape[0], *self.image_shape_)

    def _layers(self, n_classes: int) -> list[Layer]:
        if isinstance(self.arch, str) and self.arch == "auto":
            n_H, n_W, _ = self.image_shape_
            if min(n_H, n_W) >= AUTO_MIN_IMAGE:
                return list(ARCHITECTURES["default"](n_classes))
            return [Flatten(), Dense(AUTO_HIDDEN), ReLU(), Dense(n_classes)]
        if isinstance(self.arch, str):
            if self.arch not in ARCHITECTURES:
                raise ValueError(f"arch must be 'auto', one of {', '.join(ARCHITECTURES)} or a "
                                 "function "
                                 f"n_classes -> layers, got {self.arch!r}")
            return list(ARCHITECTURES[self.arch](n_classes))
        if callable(self.arch):
            return list(self.arch(n_classes))
        raise TypeError(f"arch must be a name or a function, got {type(self.arch).__name__}")

    def _epochs(self, m: int) -> int:
        if isinstance(self.epochs, str) and self.epochs == "auto":
            batch = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 \
                else 1  # a wrong batch size is the training loop's to name
            steps_per_epoch = -(-m // batch)
            return max(10, -(-AUTO_MIN_STEPS // steps_per_epoch))
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) \
                or self.epochs < 1:
            raise ValueError(f"epochs must be 'auto' or a positive int, got {self.epochs!r}")
        return int(self.epochs)

    # ------------------------------------------------------------------ estimator

    def fit(self, X: Any, y: Any) -> CNNClassifier:
        """Train a fresh network on ``X`` (images or rows) and labels ``y`` (any values).

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None")
        x = self._images(X, fit=True)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != len(x):
            raise ValueError(f"X and y hold different numbers of examples: {len(x)} and {len(y)}")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds only one class ({self.classes_[0]!r}); a classifier "
                             "needs at least two")
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        try:
            model = Sequential(self._layers(len(self.classes_)), self.image_shape_, seed=seed,
                               class_names=[str(c) for c in self.classes_])
        except ValueError as exc:
            raise ValueError(f"arch {self.arch!r} does not fit images of shape "
                             f"{self.image_shape_}: {exc}"
                             + ("; set image_shape to read 2-D rows as images"
                                if self.image_shape is None and _ndim(X) == 2 else "")
                             ) from exc
        config = {} if self.lr is None else {"lr": float(self.lr)}
        opt = optimizer_from_config(self.optimizer, config)
        self.history_ = model.fit(x, y_idx, epochs=self._epochs(len(x)),
                                  batch_size=self.batch_size, optimizer=opt,
                                  augment_shift=self.augment,
                                  threads=1 if self.threads is None else self.threads,
                                  log=print if self.verbose else None)
        self.model_ = model
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (m, n_classes), columns in the order of ``classes_``.

        The trained network is evaluated in float64 (its float32 weights exactly, the sums in
        double precision), as scikit-learn's own estimators compute: a row's probabilities then
        depend on the other rows of ``X`` only by float64 rounding (about 1e-16), whatever BLAS
        kernel or thread count sums them, where float32 sums differ by up to about 1e-7.
        """
        check_is_fitted(self)
        x = self._images(X, fit=False).astype(np.float64)
        proba = in_float64(self.model_).predict_proba(x)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each example, shape (m,), from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
