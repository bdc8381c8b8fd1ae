"""Convolution layers: :class:`Conv2D`, on :func:`cnnstep.ops.conv.conv_forward` and its
gradients (there is one NumPy implementation of each op in cnnstep), or on oneDNN's kernels where
the ``onednn`` extra applies (:mod:`cnnstep.ops.onednn`)."""

from __future__ import annotations

from typing import Any

import numpy as np

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
from cnnstep.ops.conv import conv_forward, conv_forward_windows
from cnnstep.ops.conv_grads import DW_FROM_DZ_MIN_CHANNELS, conv_grads
from cnnstep.ops.onednn import conv_forward_dnnl, conv_grads_dnnl
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
        self._cache: Any = None
        self._spare: np.ndarray | None = None  # a window matrix to fill again (see forward)

    def __copy__(self) -> Conv2D:
        # A copy (a thread's replica) shares the parameters but never the spare buffer.
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
        W, b = self.params["W"], self.params["b"]
        # oneDNN's kernels where they apply (the onednn extra, float32), else the NumPy ops
        Z = conv_forward_dnnl(x, W, b, self.hparameters)
        if not training:
            self._cache = None
            return conv_forward(x, W, b, self.hparameters)[0] if Z is None else Z
        if Z is not None:
            self._cache = ((x, W, b, self.hparameters), None)
            return Z
        if W.shape[2] < DW_FROM_DZ_MIN_CHANNELS:
            # Few input channels: the backward pass builds dW from window copies of x, so the
            # forward's copies are kept for it (small here: few channels per window).
            # The buffer of the last step is filled again; it belongs to this cache until
            # backward is done with it.
            spare, self._spare, self._cache = self._spare, None, None
            Z, cache, windows = conv_forward_windows(x, W, b, self.hparameters, out=spare)
        else:
            Z, cache = conv_forward(x, W, b, self.hparameters)
            windows = None
        self._cache = (cache, windows)
        return Z

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        cache, windows = self.need_cache(self._cache)
        # without the input gradient (a first layer in training): the dearest of the three
        grads = None if windows is not None else conv_grads_dnnl(dout, cache, need_input_grad)
        if grads is None:
            grads = conv_grads(dout, cache, need_input_grad, windows)
        dA_prev, self.grads["W"], self.grads["b"] = grads
        self._spare = windows  # the next training forward may fill it again
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
