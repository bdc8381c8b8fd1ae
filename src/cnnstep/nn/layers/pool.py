"""Pooling layers: :class:`MaxPool2D` and :class:`AvgPool2D`, on the kernels
:mod:`cnnstep.backends` chooses for each pass (NumPy's, the same as
:func:`cnnstep.ops.pool_forward` and :func:`cnnstep.ops.pool_backward`, or a native library's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.backends import PoolContext, pool2d_backward, pool2d_forward
from cnnstep.nn.layers.base import (
    Layer,
    Shape,
    as_padding,
    as_pair,
    fmt_pair,
    register_layer,
    to_json,
)
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
        self._cache: PoolContext | None = None

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.name} needs inputs of shape (n_H, n_W, n_C), got {tuple(input_shape)}"
            )
        return pool_output_shape(input_shape, self.hparameters, self.name)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        A, self._cache = pool2d_forward(x, self.hparameters, self.mode, training=training)
        return A

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        return pool2d_backward(dout, self.need_cache(self._cache), need_input_grad)

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
