"""Optimizers that update parameter arrays in place: SGD (with momentum) and Adam.

An optimizer is given the model's parameter arrays and their gradients as two lists in the same
order, every step. Its state (momenta, step count) can be saved with :meth:`state_dict` and
restored with :meth:`load_state_dict`, so an interrupted run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

#: Registered optimizers by lower-case name: the choices of ``cnnstep train --optimizer`` and
#: what checkpoints can restore.
OPTIMIZERS: dict[str, type[Optimizer]] = {}

O = TypeVar("O", bound="type[Optimizer]")


def register_optimizer(cls: O) -> O:
    """Class decorator: register ``cls`` under its lower-cased class name."""
    OPTIMIZERS[cls.__name__.lower()] = cls
    return cls


class Optimizer:
    """Base class. ``lr`` may be changed between steps (learning-rate schedules do so)."""

    def __init__(self, lr: float) -> None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.t = 0  # number of steps taken
        self._slots: dict[str, list[np.ndarray]] = {}

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Update every array of ``params`` in place from the matching array of ``grads``."""
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} parameter arrays but {len(grads)} gradients")
        if not self._slots:
            self._init_slots(params)
        self.t += 1
        self._update(params, grads)

    def _init_slots(self, params: Sequence[np.ndarray]) -> None:
        pass

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"lr": self.lr}

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(scalars, arrays)``: JSON-able settings and step count, and the slot arrays."""
        arrays = {
            f"{name}.{i}": arr for name, slot in self._slots.items() for i, arr in enumerate(slot)
        }
        return {"type": type(self).__name__, "config": self.get_config(), "t": self.t}, arrays

    def load_state_dict(
        self, scalars: dict, arrays: dict[str, np.ndarray], params: Sequence[np.ndarray]
    ) -> None:
        """Restore what :meth:`state_dict` returned, for the parameter arrays ``params``."""
        if scalars.get("type") != type(self).__name__:
            raise ValueError(
                f"optimizer state is for {scalars.get('type')!r}, not {type(self).__name__}"
            )
        self.t = int(scalars.get("t", 0))
        self._slots = {}
        if not arrays:
            return
        self._init_slots(params)
        for name, slot in self._slots.items():
            for i, arr in enumerate(slot):
                key = f"{name}.{i}"
                if key not in arrays or arrays[key].shape != arr.shape:
                    raise ValueError(f"optimizer state {key} is missing or has the wrong shape")
                arr[...] = arrays[key]


@register_optimizer
class SGD(Optimizer):
    """Stochastic gradient descent with optional (heavy-ball or Nesterov) momentum.

    ``v = momentum * v - lr * g; p += v`` (Nesterov: ``p += momentum * v - lr * g``).

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float in [0, 1), default 0.9
    nesterov : bool, default False
    weight_decay : float, default 0
        L2 penalty added to the gradient (``g + weight_decay * p``).
    """

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)

    def _init_slots(self, params: Sequence[np.ndarray]) -> None:
        if self.momentum:
            self._slots = {"v": [np.zeros_like(p) for p in params]}

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        for k, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if not self.momentum:
                p -= self.lr * g
                continue
            v = self._slots["v"][k]
            v *= self.momentum
            v -= self.lr * g
            if self.nesterov:
                p += self.momentum * v - self.lr * g
            else:
                p += v

    def get_config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


@register_optimizer
class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias correction.

    Parameters
    ----------
    lr : float, default 0.001
    beta1, beta2 : float, default 0.9, 0.999
    eps : float, default 1e-8
    """

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {beta!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _init_slots(self, params: Sequence[np.ndarray]) -> None:
        self._slots = {"m": [np.zeros_like(p) for p in params],
                       "v": [np.zeros_like(p) for p in params]}

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        b1, b2 = self.beta1, self.beta2
        # fold both bias corrections into the step size (one scalar per step)
        step = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        eps = self.eps * math.sqrt(1.0 - b2**self.t)
        for p, g, m, v in zip(params, grads, self._slots["m"], self._slots["v"]):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            denom = np.sqrt(v)
            denom += eps
            p -= step * (m / denom)

    def get_config(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def optimizer_from_config(name: str, config: dict) -> Optimizer:
    """An optimizer from its registered name (``"sgd"``, ``"adam"``, or the class name as
    stored in checkpoints) and :meth:`Optimizer.get_config`."""
    cls = OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return cls(**config)
