"""Skip connections: :class:`Residual`, a main path of layers plus a shortcut, added.

The arrays of the layers inside appear in the container's ``params``, ``grads`` and ``state``
under ``"<path>.<index>.<name>"`` keys (``main.0.W``, ``shortcut.1.moving_mean``): a model file,
an optimizer, a thread replica or a worker process sees them as the container's own. Those
mappings are views (:class:`PathArrays`): setting a key sets the array of the layer inside.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import numpy as np

from cnnstep.nn.layers.base import (
    Layer,
    Shape,
    layer_from_config,
    register_layer,
    run_backward,
)


class PathArrays(MutableMapping[str, np.ndarray]):
    """``params``, ``grads`` or ``state`` (``kind``) of every layer in ``owner``'s paths, under
    ``"<path>.<index>.<name>"`` keys; reading and setting go to the layer inside."""

    def __init__(self, owner: Layer, kind: str) -> None:
        self.owner = owner
        self.kind = kind

    def _where(self, key: str) -> tuple[MutableMapping[str, np.ndarray], str]:
        path, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        layers = self.owner.paths().get(path)
        if layers is None or not index.isdigit() or int(index) >= len(layers) or not name:
            raise KeyError(key)
        arrays: MutableMapping[str, np.ndarray] = getattr(layers[int(index)], self.kind)
        return arrays, name

    def __getitem__(self, key: str) -> np.ndarray:
        arrays, name = self._where(key)
        return arrays[name]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        arrays, name = self._where(key)
        if self.kind != "grads" and name not in arrays:
            raise KeyError(key)  # parameters and state are made by build, only replaced here
        arrays[name] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"the {self.kind} of a {self.owner.name} cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        for path, layers in self.owner.paths().items():
            for i, layer in enumerate(layers):
                for name in getattr(layer, self.kind):
                    yield f"{path}.{i}.{name}"

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _as_layers(value: Any, name: str) -> list[Layer]:
    """A layer, or a sequence of layers or of their configs (as a model file holds them)."""
    items = [value] if isinstance(value, (Layer, dict)) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"Residual: {name} must be a layer or a list of layers, got {value!r}")
    layers = [layer_from_config(v) if isinstance(v, dict) else v for v in items]
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"Residual: {name} must hold Layer instances, got "
                            f"{type(layer).__name__}")
    return layers


@register_layer
class Residual(Layer):
    """``main(x) + shortcut(x)``: the layers of ``layers`` applied in turn, plus the input
    through ``shortcut`` (unchanged when ``shortcut`` is None), added element-wise.

    No activation follows the sum: the course's identity and convolutional blocks (main path,
    shortcut, add, then ReLU) are a ``Residual`` followed by a ``ReLU`` layer.

    Parameters
    ----------
    layers : Layer or sequence of Layer
        The main path (at least one layer).
    shortcut : Layer, sequence of Layer or None, default None
        The shortcut path (for the convolutional block: a strided 1x1 ``Conv2D`` and a
        ``BatchNorm2D``); None or an empty list is the identity.

    Notes
    -----
    Both paths must give outputs of one shape; ``build`` says which shapes differ. The gradient
    of the input is the sum of the two paths' input gradients.
    """

    def __init__(self, layers: Any, shortcut: Any = None) -> None:
        super().__init__()
        self.main = _as_layers(layers, "layers")
        if not self.main:
            raise ValueError("Residual: layers (the main path) must hold at least one layer")
        self.shortcut = _as_layers(shortcut, "shortcut") if shortcut is not None else []
        if len({id(layer) for layer in self.main + self.shortcut}) < len(self.main +
                                                                          self.shortcut):
            raise ValueError("Residual: a layer instance may appear only once in its paths")

    # the arrays of the layers inside, seen as this layer's own (setting {} is what
    # Layer.__init__ and Sequential.replica do: it clears the layers' gradients)
    @property  # type: ignore[override]
    def params(self) -> PathArrays:
        return PathArrays(self, "params")

    @params.setter
    def params(self, value: Any) -> None:
        self._set_all("params", value)

    @property  # type: ignore[override]
    def grads(self) -> PathArrays:
        return PathArrays(self, "grads")

    @grads.setter
    def grads(self, value: Any) -> None:
        self._set_all("grads", value)

    @property  # type: ignore[override]
    def state(self) -> PathArrays:
        return PathArrays(self, "state")

    @state.setter
    def state(self, value: Any) -> None:
        self._set_all("state", value)

    def _set_all(self, kind: str, value: Any) -> None:
        if value:
            raise TypeError(f"Residual: set its {kind} one key at a time")
        if kind == "grads":  # Layer.__init__ comes here before the paths exist
            for layer in self.__dict__.get("main", []) + self.__dict__.get("shortcut", []):
                layer.grads = {}

    def paths(self) -> dict[str, list[Layer]]:
        found = {"main": self.main}
        if self.shortcut:
            found["shortcut"] = self.shortcut
        return found

    def __copy__(self) -> Residual:
        # a copy (a thread's replica) shares the parameters but has its own layers (caches)
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.main = [copy.copy(layer) for layer in self.main]
        clone.shortcut = [copy.copy(layer) for layer in self.shortcut]
        return clone

    @property
    def serial_training(self) -> bool:  # type: ignore[override]
        return any(layer.serial_training for layer in self.main + self.shortcut)

    @property
    def defer_state(self) -> bool:
        return all(layer.defer_state for layer in self.main + self.shortcut)

    @defer_state.setter
    def defer_state(self, value: bool) -> None:
        for layer in self.main + self.shortcut:
            layer.defer_state = value

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any = np.float32) -> Shape:
        shape = tuple(int(d) for d in input_shape)
        outs = []
        for name, layers in (("main", self.main), ("shortcut", self.shortcut)):
            current = shape
            for i, layer in enumerate(layers):
                try:
                    current = layer.build(current, rng, dtype)
                except ValueError as exc:
                    raise ValueError(f"{name}[{i}] {layer.describe()} on input {current}: "
                                     f"{exc}") from exc
            outs.append(current)
        self._check_outputs(outs[0], outs[1])
        self.input_shape, self.output_shape = shape, outs[0]
        return outs[0]

    def _check_outputs(self, main: Shape, short: Shape) -> None:
        if tuple(main) != tuple(short):
            what = "the shortcut" if self.shortcut else "the input (identity shortcut)"
            raise ValueError(f"Residual: the main path gives {tuple(main)} but {what} gives "
                             f"{tuple(short)}; they are added, so they must match")

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        outs = []
        for layers in (self.main, self.shortcut):
            current = tuple(input_shape)
            for layer in layers:
                current = layer.output_shape_for(current, dtype)
            outs.append(current)
        self._check_outputs(outs[0], outs[1])
        return outs[0]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        out = x
        for layer in self.main:
            out = layer.forward(out, training)
        short = x
        for layer in self.shortcut:
            short = layer.forward(short, training)
        return out + short

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        d_main = run_backward(self.main, dout, need_input_grad)
        d_short = run_backward(self.shortcut, dout, need_input_grad) if self.shortcut else dout
        if not need_input_grad:
            return None
        assert d_main is not None and d_short is not None
        return d_main + d_short

    def statistics(self) -> list[np.ndarray]:
        return [s for layer in self.main + self.shortcut for s in layer.statistics()]

    def statistics_shapes(self) -> list[Shape]:
        return [s for layer in self.main + self.shortcut for s in layer.statistics_shapes()]

    def update_state(self, statistics: Sequence[np.ndarray]) -> None:
        start = 0
        for layer in self.main + self.shortcut:
            n = len(layer.statistics_shapes())
            layer.update_state(statistics[start:start + n])
            start += n

    def describe(self) -> str:
        short = f"{len(self.shortcut)}-layer shortcut" if self.shortcut else "identity shortcut"
        return f"Residual({len(self.main)} layers, {short})"

    def get_config(self) -> dict:
        def specs(layers: list[Layer]) -> list[dict]:
            return [{"type": layer.name, "config": layer.get_config()} for layer in layers]

        return {"layers": specs(self.main), "shortcut": specs(self.shortcut) or None}
