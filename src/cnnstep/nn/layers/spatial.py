"""Layers that change the height and width of NHWC maps without weights:
:class:`ZeroPadding2D`, :class:`GlobalAvgPool2D` and :class:`GlobalMaxPool2D`."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.nn.layers.base import Layer, Shape, register_layer, to_json
from cnnstep.ops.geometry import explicit_pad
from cnnstep.ops.padding import crop_hw, pad_hw


def _maps(layer: Layer, input_shape: Shape) -> Shape:
    if len(input_shape) != 3:
        raise ValueError(f"{layer.name} needs inputs of shape (n_H, n_W, n_C), "
                         f"got {tuple(input_shape)}")
    return input_shape


@register_layer
class ZeroPadding2D(Layer):
    """Zeros around the height and width of each map (Keras's ``ZeroPadding2D``).

    Parameters
    ----------
    padding : int, (pad_h, pad_w) or ((top, bottom), (left, right)), default 1
        Rows and columns of zeros added; an int pads all four sides alike, a pair pads
        ``pad_h`` rows on top and bottom and ``pad_w`` columns left and right.

    Notes
    -----
    The output is ``(m, n_H + top + bottom, n_W + left + right, n_C)``; the gradient is the
    interior of the output gradient (the padding's cells are constants).
    """

    def __init__(self, padding: Any = 1) -> None:
        super().__init__()
        plain = to_json(padding) if isinstance(padding, tuple) else padding
        self.padding = explicit_pad(plain, "padding", "ZeroPadding2D")
        self._in_hw: Any = None

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        n_H, n_W, n_C = _maps(self, input_shape)
        (t, b), (left, r) = self.padding
        return (n_H + t + b, n_W + left + r, n_C)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._in_hw = x.shape[1:3] if training else None
        out = pad_hw(x, self.padding)
        return out.copy() if out is x else out  # never hand out the input itself

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        in_hw = self.need_cache(self._in_hw)
        if not need_input_grad:
            return None
        return np.ascontiguousarray(crop_hw(dout, self.padding, in_hw))

    def describe(self) -> str:
        (t, b), (left, r) = self.padding
        if t == b == left == r:
            return f"ZeroPadding2D({t})"
        return f"ZeroPadding2D(({t}, {b}), ({left}, {r}))"

    def get_config(self) -> dict:
        return {"padding": to_json(self.padding)}


@register_layer
class GlobalAvgPool2D(Layer):
    """The mean of each map: ``(m, n_H, n_W, n_C)`` to ``(m, n_C)``.

    The gradient shares each output gradient equally among the ``n_H * n_W`` cells of its map.
    """

    def __init__(self) -> None:
        super().__init__()
        self._in_shape: Any = None

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        return (_maps(self, input_shape)[2],)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._in_shape = x.shape if training else None
        m, n_C = x.shape[0], x.shape[3]
        # summed in float64: along this axis NumPy adds one row after another, and float32
        # would lose digits over a large map
        return x.reshape(m, -1, n_C).mean(axis=1, dtype=np.float64).astype(x.dtype)

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        shape = self.need_cache(self._in_shape)
        if not need_input_grad:
            return None
        share = dout / dout.dtype.type(shape[1] * shape[2])
        return np.broadcast_to(share[:, None, None, :], shape).copy()


@register_layer
class GlobalMaxPool2D(Layer):
    """The maximum of each map: ``(m, n_H, n_W, n_C)`` to ``(m, n_C)``.

    The gradient goes to the cell that holds the maximum (the first one in row-major order when
    several tie, as :func:`cnnstep.reference.create_mask_from_window` chooses).
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: Any = None

    def output_shape_for(self, input_shape: Shape, dtype: Any) -> Shape:
        return (_maps(self, input_shape)[2],)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        m, n_C = x.shape[0], x.shape[3]
        flat = x.reshape(m, -1, n_C)
        if not training:
            self._cache = None
            return flat.max(axis=1)
        where = flat.argmax(axis=1)[:, None, :]
        self._cache = (x.shape, where)
        return np.take_along_axis(flat, where, axis=1)[:, 0, :]

    def backward(self, dout: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        shape, where = self.need_cache(self._cache)
        if not need_input_grad:
            return None
        dx = np.zeros((shape[0], shape[1] * shape[2], shape[3]), dtype=dout.dtype)
        np.put_along_axis(dx, where, dout[:, None, :], axis=1)
        return dx.reshape(shape)
