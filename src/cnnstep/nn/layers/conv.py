"""Convolution layers: :class:`Conv2D`, on the kernels :mod:`cnnstep.backends` chooses for
each pass (NumPy's, the same as :func:`cnnstep.ops.conv_forward` and its gradients, or a native
library's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.backends import ConvContext, conv2d_backward, conv2d_forward
from cnnstep.nn.initializers import he_normal, zeros
from cnnstep.nn.layers.base import (
    Layer,
    Shape,
    as_padding,
    as_pair,
    fmt_pair,
    positive_int,
    register_layer,
    to_json,
)
from cnnstep.ops.shapes import conv_output_shape


@register_layer
class Conv2D(Layer):
    """2-D convolution (cross-correlation) over NHWC inputs, with bias, no activation.

    Parameters
    ----------
    filters : int
        Number of output channels ``n_C``.
    kernel_size : int or (f_h, f_w), default 3
    stride : int or (s_h, s_w), default 1
    padding : int, pair, ((top, bottom), (left, right)), "same" or "valid", default "same"
    dilation : int or (d_h, d_w), default 1

    Attributes
    ----------
    params : {"W": ndarray of shape (f_h, f_w, n_C_prev, n_C), "b": ndarray of shape (1, 1, 1, n_C)}
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: Any = "same",
        dilation: int | tuple[int, int] = 1,
    ) -> None:
        super().__init__()
        self.filters = positive_int(filters, "Conv2D: filters")
        self.kernel_size = as_pair(kernel_size, "Conv2D: kernel_size")
        self.stride = as_pair(stride, "Conv2D: stride")
        self.padding = as_padding(padding, "Conv2D")
        self.dilation = as_pair(dilation, "Conv2D: dilation")
        self.hparameters = {"stride": self.stride, "pad": self.padding, "dilation": self.dilation}
        self._cache: ConvContext | None = None
        self._spare: ConvContext | None = None  # a finished pass: its buffers may be refilled

    def __copy__(self) -> Conv2D:
        # A copy (a thread's replica) shares the parameters but never the spare buffers.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._spare = None
        return clone

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any = np.float32) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(
                f"Conv2D needs inputs of shape (n_H, n_W, n_C), got {tuple(input_shape)}"
            )
        f_h, f_w = self.kernel_size
        n_C_prev = int(input_shape[2])
        self.params = {
            "W": he_normal((f_h, f_w, n_C_prev, self.filters), f_h * f_w * n_C_prev, rng, dtype),
            "b": zeros((1, 1, 1, self.filters), dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        return super().build(input_shape, rng, dtype)

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        return conv_output_shape(input_shape, self.params["W"].shape, self.hparameters, "Conv2D")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # The buffers of the last step's pass are filled again; they belong to the new context
        # until its backward pass is done with them.
        spare = None
        if training:
            spare, self._spare = self._spare, None
        self._cache = None
        Z, self._cache = conv2d_forward(x, self.params["W"], self.params["b"], self.hparameters,
                                        training=training, reuse=spare)
        return Z

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        ctx = self.need_cache(self._cache)
        dA_prev, self.grads["W"], self.grads["b"] = conv2d_backward(dout, ctx, need_input_grad)
        self._spare = ctx  # the next training forward may fill its buffers again
        return dA_prev

    def describe(self) -> str:
        extra = "".join([
            f", stride {fmt_pair(self.stride)}" if self.stride != (1, 1) else "",
            f", dilation {fmt_pair(self.dilation)}" if self.dilation != (1, 1) else "",
        ])
        return f"Conv2D({self.filters}, {fmt_pair(self.kernel_size)}, {self.padding}{extra})"

    def get_config(self) -> dict:
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": to_json(self.padding),
            "dilation": list(self.dilation),
        }
