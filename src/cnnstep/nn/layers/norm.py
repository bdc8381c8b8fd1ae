"""Batch normalisation: :class:`BatchNorm2D`, over the channels of NHWC maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnstep.nn.initializers import zeros
from cnnstep.nn.layers.base import Layer, Shape, register_layer

#: Rows summed in the layer's dtype before the partial sums go on in float64: short enough that
#: float32 rounding stays near float64's, long enough that the sums run at NumPy's full speed.
BLOCK_ROWS = 256


def channel_sums(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per column of ``a`` (shape ``(n, C)``), the sum of ``a`` (or of ``a * b``) in float64.

    Blocks of :data:`BLOCK_ROWS` rows are summed in ``a``'s dtype, the blocks in float64.
    """
    n, n_C = a.shape
    k = n // BLOCK_ROWS
    cut = k * BLOCK_ROWS
    if b is None:
        head = np.einsum("krc->kc", a[:cut].reshape(k, BLOCK_ROWS, n_C))
        tail = a[cut:].sum(axis=0, dtype=np.float64)
    else:
        head = np.einsum("krc,krc->kc", a[:cut].reshape(k, BLOCK_ROWS, n_C),
                         b[:cut].reshape(k, BLOCK_ROWS, n_C))
        tail = np.einsum("rc,rc->c", a[cut:].astype(np.float64), b[cut:].astype(np.float64))
    return np.asarray(head.sum(axis=0, dtype=np.float64) + tail)


def _fraction(value: Any, name: str, low: float, high: float, closed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"BatchNorm2D: {name} must be a number, got {value!r}")
    v = float(value)
    inside = low <= v <= high if closed else low < v < high
    if not math.isfinite(v) or not inside:
        where = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"BatchNorm2D: {name} must lie in {where}, got {value!r}")
    return v


@register_layer
class BatchNorm2D(Layer):
    """Batch normalisation of each channel of NHWC maps, as Keras's
    ``BatchNormalization(axis=-1, momentum, epsilon)``.

    In training, for each channel ``c`` over the ``m * n_H * n_W`` values of the batch:
    ``mean_c`` and the biased variance ``var_c`` (divided by the count, not the count - 1), and::

        y = gamma_c * (x - mean_c) / sqrt(var_c + epsilon) + beta_c
        moving_mean_c     <- momentum * moving_mean_c     + (1 - momentum) * mean_c
        moving_variance_c <- momentum * moving_variance_c + (1 - momentum) * var_c

    At inference: ``y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``.

    Parameters
    ----------
    momentum : float in [0, 1], default 0.99
        Keras's meaning: the weight of the old running statistics. PyTorch's ``BatchNorm2d``
        with ``momentum=1 - momentum`` and ``eps=epsilon`` gives the same outputs and running
        mean; its ``running_var`` moves toward the unbiased variance instead.
    epsilon : float > 0, default 1e-3
        Added to the variance (Keras's default; PyTorch's is 1e-5).

    Attributes
    ----------
    params : {"gamma": ndarray (n_C,), "beta": ndarray (n_C,)}
        Trainable scale (starts at 1) and shift (starts at 0).
    state : {"moving_mean": ndarray (n_C,), "moving_variance": ndarray (n_C,)}
        Not trainable, saved in model files; start at 0 and 1.

    Notes
    -----
    A batch split between threads or processes is normalised part by part (each part with its
    own mean and variance, as PyTorch's ``DataParallel`` and Keras's replicas do without
    synchronised batch normalisation); the running statistics are updated once per step with
    the mean and variance of the whole batch, from the parts' :meth:`statistics`.
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3) -> None:
        super().__init__()
        self.momentum = _fraction(momentum, "momentum", 0.0, 1.0, closed=True)
        self.epsilon = _fraction(epsilon, "epsilon", 0.0, math.inf, closed=False)
        self._cache: Any = None
        self._stats: list[np.ndarray] = []

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any = np.float32) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"BatchNorm2D needs inputs of shape (n_H, n_W, n_C), got "
                             f"{tuple(input_shape)}")
        n_C = int(input_shape[2])
        self.params = {"gamma": np.ones(n_C, dtype), "beta": zeros((n_C,), dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {"moving_mean": zeros((n_C,), dtype), "moving_variance": np.ones(n_C, dtype)}
        return super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        gamma, beta = self.params["gamma"], self.params["beta"]
        dt = x.dtype.type
        if not training:
            self._cache = None
            scale = gamma / np.sqrt(self.state["moving_variance"] + dt(self.epsilon))
            shift = beta - self.state["moving_mean"] * scale
            out = x * scale
            out += shift  # in place: a second large array costs as much as the arithmetic
            return out
        rows = x.reshape(-1, x.shape[-1])
        n = rows.shape[0]
        if n == 0:  # nothing to normalise, and no statistics to learn from
            self._cache = (rows, np.ones_like(gamma, dtype=x.dtype), x.shape)
            self._stats = [np.zeros((3, x.shape[-1]))]
            return x.copy()
        mean = channel_sums(rows) / n
        centered = rows - mean.astype(x.dtype)
        var = channel_sums(centered, centered) / n
        inv_std = (1 / np.sqrt(var + self.epsilon)).astype(x.dtype)
        out = centered * (gamma * inv_std)
        out += beta
        self._cache = (centered, inv_std, x.shape)
        # additive: count, sum, sum of squares (as count * (var + mean^2)), per channel
        self._stats = [np.stack([np.full_like(mean, n), n * mean, n * (var + mean * mean)])]
        if not self.defer_state:
            self.update_state(self._stats)
        return out.reshape(x.shape)

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        centered, inv_std, shape = self.need_cache(self._cache)
        g = dout.reshape(centered.shape)
        n = g.shape[0]
        dbeta = channel_sums(g)
        dgamma = channel_sums(g, centered) * inv_std
        self.grads["gamma"] = dgamma.astype(dout.dtype)
        self.grads["beta"] = dbeta.astype(dout.dtype)
        if not need_input_grad:
            return None
        # dx = gamma * inv_std / n * (n * g - dbeta - xhat * dgamma), with xhat = centered * inv_std
        k = self.params["gamma"].astype(np.float64) * inv_std
        dt = dout.dtype
        n = max(n, 1)  # an empty batch: nothing to scale
        dx = centered * (-k * inv_std * dgamma / n).astype(dt)
        dx += (-k * dbeta / n).astype(dt)
        dx += g * k.astype(dt)
        return dx.reshape(shape)

    def statistics(self) -> list[np.ndarray]:
        """``[array (3, n_C)]``: count, sum and sum of squares of each channel's values in the
        last training batch (float64)."""
        return list(self._stats)

    def statistics_shapes(self) -> list[Shape]:
        return [(3, *self.params["gamma"].shape)]

    def update_state(self, statistics: Sequence[np.ndarray]) -> None:
        (sums,) = statistics
        count = sums[0]
        if not count.all():  # an empty batch
            return
        mean = sums[1] / count
        var = np.maximum(sums[2] / count - mean * mean, 0.0)
        for key, batch in (("moving_mean", mean), ("moving_variance", var)):
            old = self.state[key]
            old[...] = self.momentum * old + (1 - self.momentum) * batch

    def describe(self) -> str:
        if (self.momentum, self.epsilon) == (0.99, 1e-3):
            return "BatchNorm2D()"
        return f"BatchNorm2D(momentum {self.momentum:g}, epsilon {self.epsilon:g})"

    def get_config(self) -> dict:
        return {"momentum": self.momentum, "epsilon": self.epsilon}
