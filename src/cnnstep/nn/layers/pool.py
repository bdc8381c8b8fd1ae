"""Pooling layers: :class:`MaxPool2D` and :class:`AvgPool2D`, on
:func:`cnnstep.ops.pool.pool_forward` and :func:`cnnstep.ops.pool.pool_backward` (max pooling in
training: :mod:`cnnstep.ops.pool_taps`), or for max pooling on oneDNN's kernel where the
``onednn`` extra applies (:mod:`cnnstep.ops.onednn_pool`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.nn.layers.base import (
    Layer,
    Shape,
    as_padding,
    as_pair,
    fmt_pair,
    register_layer,
    to_json,
)
from cnnstep.ops.onednn_pool import max_pool_backward_dnnl, max_pool_forward_dnnl
from cnnstep.ops.pool import pool_backward_with_output, pool_forward
from cnnstep.ops.pool_taps import max_pool_backward_taps, max_pool_forward_taps
from cnnstep.ops.shapes import pool_output_shape


class Pool2D(Layer):
    """Base of the pooling layers: windows of ``pool_size`` every ``stride`` cells, reduced by
    ``mode`` (``"max"`` or ``"average"``)."""

    mode = "max"

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        padding: Any = "valid",
    ) -> None:
        super().__init__()
        self.pool_size = as_pair(pool_size, f"{self.name}: pool_size")
        self.stride = self.pool_size if stride is None else as_pair(stride, f"{self.name}: stride")
        self.padding = as_padding(padding, type(self).__name__)
        self.hparameters = {"f": self.pool_size, "stride": self.stride, "pad": self.padding}
        self._cache: Any = None

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.name} needs inputs of shape (n_H, n_W, n_C), got {tuple(input_shape)}"
            )
        return pool_output_shape(input_shape, self.hparameters, self.name)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        taps = workspace = None
        # max: oneDNN's kernel where it applies (the onednn extra, float32, no NaN)
        got = max_pool_forward_dnnl(x, self.hparameters) if self.mode == "max" else None
        if got is not None:
            (A, workspace), cache = got, (x, self.hparameters)
        elif training and self.mode == "max":
            # where it pays, the tap of each maximum, found while x is still in cache
            A, cache, taps = max_pool_forward_taps(x, self.hparameters)
        else:
            A, cache = pool_forward(x, self.hparameters, mode=self.mode)
        # and the output: max pooling's backward pass then need not find the maxima again
        self._cache = (cache, A, taps, workspace) if training else None
        return A

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        cache, A, taps, workspace = self.need_cache(self._cache)
        if not need_input_grad:
            return None
        if workspace is not None:
            dA_prev = max_pool_backward_dnnl(dout, cache, workspace)
            if dA_prev is not None:
                return dA_prev
        if taps is not None:
            return max_pool_backward_taps(dout, cache, taps)
        return pool_backward_with_output(dout, cache, A, mode=self.mode)

    def describe(self) -> str:
        stride = f", stride {fmt_pair(self.stride)}" if self.stride != self.pool_size else ""
        return f"{self.name}({fmt_pair(self.pool_size)}{stride}, {self.padding})"

    def get_config(self) -> dict:
        return {
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
            "padding": to_json(self.padding),
        }


@register_layer
class MaxPool2D(Pool2D):
    """Max pooling over ``pool_size`` windows (``stride`` defaults to ``pool_size``)."""

    mode = "max"


@register_layer
class AvgPool2D(Pool2D):
    """Average pooling over ``pool_size`` windows (``stride`` defaults to ``pool_size``)."""

    mode = "average"
