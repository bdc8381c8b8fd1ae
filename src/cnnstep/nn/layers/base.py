"""The layer interface, its registry and the argument helpers every layer family shares.

Every layer has the same small interface:

- ``build(input_shape, rng, dtype)`` creates its parameters for inputs of shape
  ``(n_H, n_W, n_C)`` (or ``(n,)``) and returns the shape of its output (without the batch axis);
- ``forward(x, training=False)`` returns the output for a batch ``x``;
- ``backward(dout)`` returns the gradient with respect to the last training-mode input and stores
  the gradients of the parameters in ``grads`` (same keys as ``params``);
  ``backward(dout, need_input_grad=False)`` stores them but skips the input gradient (``None``);
- ``get_config()`` returns a JSON-able dict from which :func:`layer_from_config` rebuilds it.

A layer holds two kinds of arrays: ``params`` (trainable: the optimizer updates them from
``grads``) and ``state`` (not trainable, such as a normalisation layer's running statistics).
Both are saved in model files, cast by :func:`cnnstep.nn.gradcheck.gradient_check` and shared by
the thread replicas of a model. A layer whose training step draws random numbers sets
``serial_training = True``, so training keeps it on one thread.

A layer whose ``state`` follows the training batches (batch normalisation's running statistics)
records, at each training-mode forward, additive summaries of its batch (:meth:`Layer.statistics`)
and folds them into ``state`` with :meth:`Layer.update_state`. Alone it does both at once; in a
replica (``defer_state = True``, set by :meth:`cnnstep.nn.model.Sequential.replica`) it only
records, so that a batch split between threads or processes sums its parts' summaries and
updates the shared state once, as the whole batch would.

A container layer (:class:`~cnnstep.nn.layers.residual.Residual`) holds other layers in named
paths (:meth:`Layer.paths`); :func:`walk` visits them all.

Layer classes register themselves with :func:`register_layer`; model files name layers by their
registered name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from cnnstep.ops.geometry import resolve_pad

Shape = tuple[int, ...]
L = TypeVar("L", bound="type[Layer]")

#: Registered layer classes by name: what model files and ``layer_from_config`` can build.
LAYER_TYPES: dict[str, type[Layer]] = {}


def register_layer(cls: L) -> L:
    """Class decorator: make ``cls`` buildable from model files under its class name."""
    name = cls.__name__
    if name in LAYER_TYPES and LAYER_TYPES[name] is not cls:
        raise ValueError(f"a layer named {name!r} is already registered")
    LAYER_TYPES[name] = cls
    return cls


def as_pair(value: Any, name: str) -> tuple[int, int]:
    """``value`` (an int or a pair of ints, each >= 1) as ``(h, w)``; ``name`` is for errors."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return pair


def _plain_padding(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, (list, tuple)):
        return tuple(_plain_padding(v) for v in value)
    return value


def as_padding(value: Any, owner: str = "layer") -> Any:
    """``value`` as the ops take padding (JSON turns tuples into lists), checked now so that a
    layer with impossible padding is refused at construction, not at its first forward pass."""
    padding = _plain_padding(value)
    resolve_pad(padding, (1, 1), (1, 1), (1, 1), "padding", owner)  # ValueError/TypeError
    return padding


def fmt_pair(pair: tuple[int, int]) -> str:
    """``(3, 3)`` as ``"3x3"``."""
    return f"{pair[0]}x{pair[1]}"


def to_json(value: Any) -> Any:
    """Tuples (nested too) as lists, for a layer's config."""
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1; ``name`` (such as ``"Dense: units"``) is for the error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class Layer:
    """Base class: a layer without parameters that passes its input through."""

    #: names and arrays of the trainable parameters
    params: dict[str, np.ndarray]
    #: gradients of the loss with respect to ``params``, set by ``backward``
    grads: dict[str, np.ndarray]
    #: names and arrays of the non-trainable state (saved and loaded with ``params``)
    state: dict[str, np.ndarray]
    #: True when a training step draws random numbers or updates ``state``: such a model is
    #: trained on one thread, so that its draws and updates stay in a fixed order
    serial_training: bool = False
    #: True in a replica: a training-mode forward records :meth:`statistics` but leaves
    #: ``state`` alone (the runner sums the parts' statistics and calls :meth:`update_state`)
    defer_state: bool = False

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}
        self.state = {}
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def build(self, input_shape: Shape, rng: np.random.Generator,
              dtype: Any = np.float32) -> Shape:
        """Create the parameters for inputs of ``input_shape``; return the output shape."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = self.output_shape_for(self.input_shape, dtype)
        return self.output_shape

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        """The output shape for inputs of ``input_shape`` (batch axis excluded)."""
        return input_shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Fill :attr:`grads` from ``dout`` (gradient w.r.t. the output); return the gradient
        w.r.t. the input, or ``None`` when ``need_input_grad`` is false (a model's first layer in
        training: nobody reads it, so it need not be computed)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor's arguments, JSON-able."""
        return {}

    def describe(self) -> str:
        """Short text for :meth:`cnnstep.nn.model.Sequential.summary`."""
        cfg = ", ".join(str(v) for v in self.get_config().values())
        return f"{self.name}({cfg})"

    def paths(self) -> dict[str, list[Layer]]:
        """The layers this one contains, by path name (none for a plain layer)."""
        return {}

    def statistics(self) -> list[np.ndarray]:
        """Additive float64 summaries of the last training-mode batch, one array per kind of
        ``state`` kept (empty for a layer without such state): the sums of two parts of a batch
        are the summaries of the whole batch."""
        return []

    def statistics_shapes(self) -> list[Shape]:
        """The shapes of the arrays :meth:`statistics` returns (known once built)."""
        return []

    def update_state(self, statistics: Sequence[np.ndarray]) -> None:
        """Fold summed :meth:`statistics` (of one batch, maybe from several parts) into
        ``state``, in place."""

    def need_cache(self, cache: Any) -> Any:
        """``cache`` from the last training-mode forward, or an error saying it is missing."""
        if cache is None:
            raise RuntimeError(
                f"{self.name}.backward needs a preceding forward(x, training=True)"
            )
        return cache


def walk(layers: Iterable[Layer]) -> Iterator[Layer]:
    """Each layer of ``layers`` and, after it, every layer it contains (depth first)."""
    for layer in layers:
        yield layer
        for path in layer.paths().values():
            yield from walk(path)


def run_backward(order: Sequence[Layer], dout: np.ndarray,
                 need_input_grad: bool = True) -> np.ndarray | None:
    """Back-propagate ``dout`` through ``order`` (layers run in that order, forward).

    Without ``need_input_grad`` the layers before the first one with parameters are not run
    backward at all, and that one skips its input gradient; ``None`` is returned then.
    """
    first = 0
    if not need_input_grad:
        first = next((i for i, layer in enumerate(order) if layer.params), len(order))
    for i in range(len(order) - 1, first - 1, -1):
        if i == first and not need_input_grad:
            return order[i].backward(dout, need_input_grad=False)
        grad = order[i].backward(dout)
        assert grad is not None  # asked for
        dout = grad
    return None if not need_input_grad else dout


def layer_from_config(spec: dict) -> Layer:
    """Rebuild a layer from ``{"type": name, "config": {...}}`` (as written in model files).

    Raises
    ------
    ValueError
        For an unknown layer type or invalid arguments.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(
            f"a layer must be described as {{'type': ..., 'config': ...}}, got {spec!r}"
        )
    cls = LAYER_TYPES.get(spec["type"])
    if cls is None:
        raise ValueError(
            f"unknown layer type {spec['type']!r}; known: {', '.join(sorted(LAYER_TYPES))}"
        )
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"config of layer {spec['type']} must be a dict, got {config!r}")
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"invalid config for layer {spec['type']}: {exc}") from exc
