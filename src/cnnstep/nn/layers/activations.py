"""Element-wise activations beside :class:`~cnnstep.nn.layers.core.ReLU`: :class:`Sigmoid`,
:class:`Tanh` and :class:`LeakyReLU`.

Each keeps the dtype of its input (float32 stays float32) and, in training, what its backward
pass needs: the output for the sigmoid and tanh (their derivatives are functions of it), the
sign mask for the leaky ReLU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnstep.nn.layers.base import Layer, register_layer


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, element-wise, without overflow and with full relative precision
    in both tails (``exp`` only ever sees ``-|x|``).

    Parameters
    ----------
    x : ndarray of any shape, float

    Returns
    -------
    ndarray of the shape and dtype of ``x``
    """
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(-|x|), in (0, 1]: never overflows
    r = e + 1
    np.reciprocal(r, out=r)
    # x >= 0: 1 / (1 + e^-x); x < 0: e^x / (1 + e^x), the same value, computed without e^-x;
    # the numerator is max(e, 1) = 1 where x >= 0 and max(e, 0) = e elsewhere
    out = np.maximum(e, x >= 0)
    np.multiply(out, r, out=out)
    return out.astype(x.dtype, copy=False)


@register_layer
class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, element-wise (the derivative is ``s * (1 - s)``).

    A model ending in one unit needs no ``Sigmoid`` layer: that unit is read as a binary
    classifier's logit and the loss applies the sigmoid itself (stably).
    """

    def __init__(self) -> None:
        super().__init__()
        self._out: Any = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        out = sigmoid(x)
        self._out = out if training else None
        return out

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        s = self.need_cache(self._out)
        return dout * (s * (1 - s)) if need_input_grad else None


@register_layer
class Tanh(Layer):
    """``tanh(x)``, element-wise (the derivative is ``1 - t**2``)."""

    def __init__(self) -> None:
        super().__init__()
        self._out: Any = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        out = np.tanh(x)
        self._out = out if training else None
        return out

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        t = self.need_cache(self._out)
        return dout * (1 - t * t) if need_input_grad else None


@register_layer
class LeakyReLU(Layer):
    """``x`` where ``x > 0``, ``alpha * x`` elsewhere, element-wise.

    Parameters
    ----------
    alpha : float, default 0.01
        The slope for negative inputs, a finite number >= 0 (PyTorch's ``negative_slope``, whose
        default this is; Keras's ``LeakyReLU`` defaults to 0.3). At ``x == 0`` the gradient is
        ``alpha``, as in PyTorch.
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
            raise TypeError(f"LeakyReLU: alpha must be a number, got {alpha!r}")
        if not math.isfinite(float(alpha)) or alpha < 0:
            raise ValueError(f"LeakyReLU: alpha must be a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self._slope: Any = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        alpha = x.dtype.type(self.alpha)
        if not training and self.alpha <= 1:
            self._slope = None
            return np.maximum(x, x * alpha)  # for alpha <= 1, the larger of x and alpha * x
        # the slope of each cell, 1 or alpha (arithmetic on the mask: faster than np.where)
        slope = (x > 0).astype(x.dtype)
        slope *= 1 - alpha
        slope += alpha
        self._slope = slope if training else None
        return x * slope

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        slope = self.need_cache(self._slope)
        return dout * slope if need_input_grad else None

    def get_config(self) -> dict:
        return {"alpha": self.alpha}
