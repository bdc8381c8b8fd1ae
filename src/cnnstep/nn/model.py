"""A sequential model: a stack of layers, its forward and backward passes, and its file."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from cnnstep.errors import DataError
from cnnstep.nn.inference import outputs, scores
from cnnstep.nn.io import (
    check_architecture,
    copy_weights,
    model_header,
    read_npz,
    write_model_file,
)
from cnnstep.nn.layers import Layer, MaxPool2D, ReLU, layer_from_config
from cnnstep.nn.layers.base import run_backward, walk
from cnnstep.nn.losses import classification_loss, probabilities
from cnnstep.nn.summary import summary_text
from cnnstep.nn.trainer import DEFAULT_TRAINER, resolve_trainer


class Sequential:
    """Layers applied one after the other; the last one outputs class scores (logits).

    A last layer of K >= 2 units scores K classes (softmax cross-entropy); a last layer of one
    unit is a binary classifier: its logit is class 1's (sigmoid and binary cross-entropy,
    :mod:`cnnstep.nn.losses`), and :meth:`predict_proba` still gives two columns.

    Parameters
    ----------
    layers : sequence of Layer
    input_shape : (n_H, n_W, n_C), optional
        Shape of one input; when given, the model is built right away.
    seed : int, optional
        Seeds the model's random generator (initial weights, shuffling, dropout, augmentation):
        the same seed gives the same run.
    dtype : dtype, default float32
    class_names : list of str, optional
        Display names of the output classes (stored in saved models).

    Attributes
    ----------
    rng : numpy.random.Generator
        The model's only source of randomness.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        input_shape: Sequence[int] | None = None,
        *,
        seed: int | None = None,
        dtype: Any = np.float32,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.layers = list(layers)
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"layers must be Layer instances, got {type(layer).__name__}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.class_names = list(class_names) if class_names is not None else None
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self._order: list[Layer] = self.layers
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------------ structure

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape: Sequence[int]) -> Sequential:
        """Create every layer's parameters for inputs of shape ``input_shape`` (no batch axis)."""
        shape = tuple(int(d) for d in input_shape)
        if not shape or any(d < 1 for d in shape):
            raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}")
        self.input_shape = shape
        for layer in self.layers:
            try:
                shape = layer.build(shape, self.rng, self.dtype)
            except ValueError as exc:
                raise ValueError(
                    f"cannot build {layer.describe()} on input {shape}: {exc}"
                ) from exc
        self.output_shape = shape
        self._order = self.run_order()
        return self

    def _require_built(self) -> None:
        if not self.built:
            raise RuntimeError("the model is not built yet: call build(input_shape) or fit(...)")

    def parameters(self) -> list[np.ndarray]:
        """All trainable arrays, in a fixed order (layer by layer, ``W`` before ``b``)."""
        return [p for layer in self.layers for p in layer.params.values()]

    def gradients(self) -> list[np.ndarray]:
        """Gradients from the last :meth:`backward`, in the order of :meth:`parameters`."""
        return [layer.grads[k] for layer in self.layers for k in layer.params]

    def named_parameters(self) -> dict[str, np.ndarray]:
        """``{"<layer index>.<name>": array}``, the keys used in saved models."""
        return {f"{i}.{k}": v
                for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def named_arrays(self) -> dict[str, np.ndarray]:
        """Parameters and non-trainable state, ``{"<layer index>.<name>": array}``: what a model
        file holds (a layer's state names differ from its parameter names)."""
        arrays = self.named_parameters()
        for i, layer in enumerate(self.layers):
            for k, v in layer.state.items():
                if f"{i}.{k}" in arrays:
                    raise ValueError(f"layer {i} ({layer.name}) uses {k!r} for a parameter "
                                     "and for state")
                arrays[f"{i}.{k}"] = v
        return arrays

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.named_parameters()

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": layer.grads[k]
                for i, layer in enumerate(self.layers) for k in layer.params}

    def count_params(self) -> int:
        """The number of trainable values (all of :meth:`parameters`)."""
        return int(sum(p.size for p in self.parameters()))

    def count_state(self) -> int:
        """The number of non-trainable values (the layers' ``state``, such as running
        statistics); saved in model files like the parameters."""
        return int(sum(a.size for layer in self.layers for a in layer.state.values()))

    @property
    def n_classes(self) -> int | None:
        """The classes the model tells apart: its outputs, or 2 for a single output (binary);
        None before it is built."""
        if not self.output_shape:
            return None
        return max(int(self.output_shape[-1]), 2)

    def state_arrays(self) -> list[np.ndarray]:
        """All non-trainable arrays, in a fixed order (layer by layer)."""
        return [a for layer in self.layers for a in layer.state.values()]

    def statistics(self) -> list[np.ndarray]:
        """The layers' additive summaries of their last training batch
        (:meth:`~cnnstep.nn.layers.base.Layer.statistics`), layer by layer; summed over the
        parts of a batch they are the whole batch's."""
        return [s for layer in self.layers for s in layer.statistics()]

    def statistics_shapes(self) -> list[tuple[int, ...]]:
        """The shapes of :meth:`statistics`' arrays, known once the model is built."""
        return [s for layer in self.layers for s in layer.statistics_shapes()]

    def update_state(self, statistics: Sequence[np.ndarray]) -> None:
        """Fold summed :meth:`statistics` of one batch into the layers' state (in place)."""
        start = 0
        for layer in self.layers:
            n = len(layer.statistics_shapes())
            if n:
                layer.update_state(statistics[start:start + n])
            start += n
        if start != len(statistics):
            raise ValueError(f"update_state: the model keeps {start} statistics, got "
                             f"{len(statistics)}")

    def get_config(self) -> dict:
        """JSON-able description: layers, input shape, dtype, class names."""
        return {
            "layers": [{"type": layer.name, "config": layer.get_config()} for layer in self.layers],
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "dtype": self.dtype.name,
            "class_names": self.class_names,
        }

    @classmethod
    def from_config(cls, config: dict, *, seed: int | None = None) -> Sequential:
        """Rebuild a (freshly initialised) model from :meth:`get_config`."""
        layers = [layer_from_config(spec) for spec in config["layers"]]
        return cls(
            layers,
            input_shape=config.get("input_shape"),
            seed=seed,
            dtype=config.get("dtype", "float32"),
            class_names=config.get("class_names"),
        )

    def summary(self) -> str:
        """A table of layers, output shapes and value counts, then the totals of trainable and
        non-trainable parameters (:func:`cnnstep.nn.summary.summary_text`); also returned."""
        self._require_built()
        return summary_text(self)

    # ------------------------------------------------------------------ computation

    def prepare_input(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if not self.built:
            self.build(x.shape[1:])
        if tuple(x.shape[1:]) != self.input_shape:
            expected = ", ".join(map(str, self.input_shape or ()))
            raise ValueError(f"x must have shape (m, {expected}), got {x.shape}")
        return x

    def run_order(self) -> list[Layer]:
        """The layers in the order they are run.

        ``ReLU`` followed by ``MaxPool2D`` runs as pool, then ReLU. The two commute exactly
        (``max(relu(z)) == relu(max(z))``, and the gradients agree too), but pooling first applies
        ReLU to a quarter of the values and hands max pooling distinct pre-activation values
        instead of the many zeros ReLU makes, which are ties that slow its backward pass.
        """
        order = list(self.layers)
        for i in range(len(order) - 1):
            if type(order[i]) is ReLU and type(order[i + 1]) is MaxPool2D:
                order[i], order[i + 1] = order[i + 1], order[i]
        return order

    def replica(self) -> Sequential:
        """A model that shares this one's parameter and state arrays but keeps its own caches
        and gradients, so that several threads can each run forward/backward on part of a batch.

        A replica's training-mode forward records its layers' :meth:`statistics` without
        updating the shared state: the caller sums the parts' statistics and calls
        :meth:`update_state` on the model once per step.
        """
        clone = copy.copy(self)
        clone.layers = [copy.copy(layer) for layer in self.layers]
        for layer in clone.layers:
            layer.grads = {}
        for layer in walk(clone.layers):
            layer.defer_state = True
        clone._order = clone.run_order()
        return clone

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Logits of shape (m, n_classes) for a batch ``x`` of shape (m, *input_shape)."""
        x = self.prepare_input(x)
        for layer in self._order:
            x = layer.forward(x, training)
        return x

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate ``dout`` (gradient w.r.t. the logits); fills each layer's ``grads``.

        Returns the gradient w.r.t. the model's input, or ``None`` when ``need_input_grad`` is
        false (training): then the layers before the first one with parameters are not run
        backward at all, and that one skips its input gradient.
        """
        return run_backward(self._order, dout, need_input_grad)

    def train_step(self, x: np.ndarray, y: np.ndarray,
                   optimizer: Any) -> tuple[float, np.ndarray]:
        """One gradient step on a batch; returns the loss and the logits (before the step)."""
        logits = self.forward(x, training=True)
        loss, dlogits, _ = classification_loss(logits, y)
        if np.isfinite(loss):
            self.backward(dlogits, need_input_grad=False)
            optimizer.step(self.parameters(), self.gradients())
        return loss, logits

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, shape (m, n_classes) (two columns for a binary classifier:
        ``1 - sigmoid(logit)``, ``sigmoid(logit)``).

        Computed in chunks of at most ``batch_size`` inputs, on as many threads as the
        ``threads`` setting says, with the fastest kernels that apply
        (:mod:`cnnstep.nn.inference`); the same numbers whatever the ``threads`` setting.
        """
        x = self.prepare_input(x)
        if not x.shape[0]:
            return np.zeros((0, self.n_classes or 0), dtype=self.dtype)
        return probabilities(outputs(self, x, batch_size))

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted class indices, shape (m,)."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    @overload
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = ...,
                 return_predictions: Literal[False] = ...) -> dict: ...

    @overload
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = ..., *,
                 return_predictions: Literal[True]) -> tuple[dict, np.ndarray]: ...

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
                 return_predictions: bool = False) -> dict | tuple[dict, np.ndarray]:
        """``{"loss": mean cross-entropy, "accuracy": fraction correct}`` on ``(x, y)`` (binary
        cross-entropy for a one-output model); the loss is summed ``batch_size`` rows at a
        time, the outputs computed as :meth:`predict_proba` computes them.

        With ``return_predictions=True``, also the predicted classes (m,) from the same pass
        over ``x``, the ones the accuracy counts: ``(metrics, y_pred)``. They are
        :meth:`predict`'s, but for rows whose largest outputs differ by less than rounding
        makes of their probabilities.
        """
        metrics, y_pred = scores(self, self.prepare_input(x), y, batch_size)
        return (metrics, y_pred) if return_predictions else metrics

    #: What :meth:`fit` calls, or its name (:mod:`cnnstep.nn.trainer` says why a name).
    trainer: str | Callable[..., list[dict]] = DEFAULT_TRAINER

    def fit(self, x: np.ndarray, y: np.ndarray, *,
            trainer: str | Callable[..., list[dict]] | None = None,
            **kwargs: Any) -> list[dict]:
        """Train on ``(x, y)``; returns one dict of metrics per epoch.

        ``model.fit(x, y, ...)`` is ``cnnstep.train.fit(model, x, y, ...)``, which documents
        every keyword (``epochs`` (a number or ``"auto"``), ``validation_data``, ``resume``, ...);
        ``trainer`` replaces :attr:`trainer` for this call.
        """
        # read through the class, so that a function set there is not bound to the model
        chosen = trainer if trainer is not None else vars(self).get("trainer",
                                                                     type(self).trainer)
        return resolve_trainer(chosen)(self, x, y, **kwargs)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Write the model to one ``.npz`` file: architecture, weights, class names, input shape.

        Parameters
        ----------
        path : str or Path
            Destination; written atomically.
        metadata : dict, optional
            JSON-able extra information (e.g. the data set it was trained on).
        """
        self._require_built()
        write_model_file(path, self.get_config(), self.named_arrays(), metadata)


def save_model(model: Sequential, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``model`` to ``path`` (.npz); the same as ``model.save(path, metadata)``."""
    model.save(path, metadata=metadata)


def model_from_arrays(arrays: dict[str, np.ndarray], path: Path) -> tuple[Sequential, dict]:
    """The model stored in a model file's arrays, and its metadata."""
    header = model_header(arrays, path)
    try:
        layers = [layer_from_config(spec) for spec in header["layers"]]
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise DataError(f"{path}: invalid architecture ({exc})") from exc
    itemsize = np.dtype(header.get("dtype", "float32")).itemsize
    check_architecture(layers, tuple(header["input_shape"]), itemsize, path)
    try:
        model = Sequential.from_config(header)
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"{path}: invalid architecture ({exc})") from exc
    copy_weights(model.named_arrays(), arrays, path)
    names, n_classes = model.class_names, model.n_classes
    if names is not None and n_classes is not None and len(names) != n_classes:
        raise DataError(
            f"{path}: class_names has {len(names)} entries but the model tells {n_classes} "
            "classes apart"
        )
    return model, header.get("metadata") or {}


def load_model(path: str | Path, *, with_metadata: bool = False) -> Any:
    """Read a model written by :meth:`Sequential.save` (never unpickles anything).

    Parameters
    ----------
    path : str or Path
    with_metadata : bool, default False
        Also return the metadata dict.

    Returns
    -------
    Sequential, or (Sequential, dict) with ``with_metadata``

    Raises
    ------
    DataError
        If the file is missing, not a model file, or its weights do not fit its architecture.
    """
    path = Path(path)
    model, metadata = model_from_arrays(read_npz(path), path)
    return (model, metadata) if with_metadata else model
