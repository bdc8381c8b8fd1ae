"""Shapes, hyperparameters and padding shared by the fast ops and the reference loops.

Everything that turns ``hparameters`` and array shapes into numbers lives here, with the input
checks, so the fast path (:mod:`cnnstep.conv`, :mod:`cnnstep.pool`) and the loops
(:mod:`cnnstep.reference`) agree on every size and raise the same errors.

Padding is always resolved to ``((top, bottom), (left, right))``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Pair = tuple[int, int]
Pad2D = tuple[Pair, Pair]

_AXES = ("height", "width")


# ----------------------------------------------------------------------------- arrays


def compute_dtype(func: str, **arrays: Any) -> np.dtype[Any]:
    """The floating dtype an op computes in: float32 stays float32, float64 stays float64.

    Integers and booleans are computed in float64, float16 in float32. Anything else
    (complex, object, strings) is refused with a ``TypeError`` naming the argument.
    """
    dtypes = []
    for name, value in arrays.items():
        dt = np.asarray(value).dtype
        if dt.kind not in "biuf":
            raise TypeError(
                f"{func}: {name} must hold real numbers (float32, float64 or integers), "
                f"got dtype {dt}"
            )
        dtypes.append(dt)
    dt = np.result_type(*dtypes)
    if dt == np.float32 or dt == np.float64:
        return dt
    if dt.kind == "f" and dt.itemsize < 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_array(value: Any, name: str, func: str, ndim: int | None = None) -> np.ndarray:
    """``np.asarray(value)``, refusing non-numeric data and (optionally) the wrong rank."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{func}: {name} must be a NumPy array, got {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{func}: {name} must hold real numbers (float32, float64 or integers), "
            f"got dtype {arr.dtype}"
        )
    if ndim is not None and arr.ndim != ndim:
        expected = {4: "(m, n_H, n_W, n_C)", 2: "(n_H, n_W)", 3: "(f, f, n_C_prev)"}.get(
            ndim, f"{ndim} dimensions"
        )
        raise ValueError(
            f"{func}: {name} must have {ndim} dimensions {expected}, "
            f"got shape {arr.shape} ({arr.ndim} dimensions)"
        )
    return arr


# ----------------------------------------------------------------------------- scalars


def _int(value: Any, name: str, func: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{func}: {name} must be an integer, got {value!r}")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {number}")
    return number


def to_pair(value: Any, name: str, func: str, minimum: int = 1) -> Pair:
    """An int or a pair of ints (height, width), each ``>= minimum``."""
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise ValueError(
                f"{func}: {name} must be an int or a pair (height, width), got {value!r}"
            )
        return (
            _int(value[0], f"{name}[0]", func, minimum),
            _int(value[1], f"{name}[1]", func, minimum),
        )
    v = _int(value, name, func, minimum)
    return (v, v)


def explicit_pad(pad: Any, name: str, func: str) -> Pad2D:
    """Resolve an explicit padding: int, (pad_h, pad_w) or ((top, bottom), (left, right))."""
    if isinstance(pad, (tuple, list, np.ndarray)) and len(pad) == 2 and all(
        isinstance(p, (tuple, list, np.ndarray)) for p in pad
    ):
        (t, bt), (lt, r) = (to_pair(p, name, func, minimum=0) for p in pad)
        return ((t, bt), (lt, r))
    if isinstance(pad, str):
        raise ValueError(
            f"{func}: {name} must be an int, a pair or ((top, bottom), (left, right)) here, "
            f"got {pad!r}"
        )
    ph, pw = to_pair(pad, name, func, minimum=0)
    return ((ph, ph), (pw, pw))


def resolve_pad(
    pad: Any, in_hw: Pair, extent_hw: Pair, stride: Pair, name: str, func: str
) -> Pad2D:
    """Padding for an input of size ``in_hw`` and windows spanning ``extent_hw`` cells.

    ``"valid"`` is no padding. ``"same"`` follows TensorFlow: the output has ``ceil(n / stride)``
    cells and the total padding ``max((n_out - 1) * stride + extent - n, 0)`` is split with the
    smaller half on top/left.
    """
    if isinstance(pad, str):
        mode = pad.lower()
        if mode == "valid":
            return ((0, 0), (0, 0))
        if mode == "same":
            sides = []
            for n, extent, s in zip(in_hw, extent_hw, stride):
                n_out = -(-n // s)
                total = max((n_out - 1) * s + extent - n, 0)
                sides.append((total // 2, total - total // 2))
            return (sides[0], sides[1])
        raise ValueError(
            f"{func}: {name} must be an int, a pair, ((top, bottom), (left, right)), "
            f"'same' or 'valid', got {pad!r}"
        )
    return explicit_pad(pad, name, func)


def out_size(n: int, extent: int, pad: Pair, stride: int) -> int:
    """``floor((n + pad_before + pad_after - extent) / stride) + 1``."""
    return (n + pad[0] + pad[1] - extent) // stride + 1


def unpack_cache(cache: Any, names: tuple[str, ...], producer: str,
                 func: str) -> tuple[Any, ...]:
    """Check that ``cache`` is the tuple ``producer`` returned, with fields ``names``."""
    if not isinstance(cache, tuple) or len(cache) != len(names):
        got = type(cache).__name__
        if isinstance(cache, (tuple, list)):
            got += f" of length {len(cache)}"
        raise TypeError(
            f"{func}: cache must be the tuple ({', '.join(names)}) returned by {producer}, "
            f"got {got}"
        )
    return cache


# ----------------------------------------------------------------------------- hparameters


def _check_hparameters(
    hparameters: Any, func: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> Mapping[str, Any]:
    if not isinstance(hparameters, Mapping):
        raise TypeError(
            f"{func}: hparameters must be a dict with keys {list(required)}, "
            f"got {type(hparameters).__name__}"
        )
    missing = [k for k in required if k not in hparameters]
    if missing:
        raise ValueError(
            f"{func}: hparameters is missing {', '.join(repr(k) for k in missing)}; "
            f"expected keys {list(required)} (optional: {list(optional)}), "
            f"got {sorted(hparameters)}"
        )
    unknown = [k for k in hparameters if k not in required + optional]
    if unknown:
        raise ValueError(
            f"{func}: unknown key(s) {', '.join(repr(k) for k in unknown)} in hparameters; "
            f"expected keys {list(required)} (optional: {list(optional)})"
        )
    return hparameters


@dataclass(frozen=True)
class WindowGeometry:
    """Where the windows of a convolution or pooling lie on a padded input.

    Attributes
    ----------
    kernel : (f_h, f_w)
        Taps per window along height and width.
    stride : (s_h, s_w)
    dilation : (d_h, d_w)
        Distance between neighbouring taps (1 = contiguous).
    pad : ((top, bottom), (left, right))
    in_hw : (n_H_prev, n_W_prev)
    out_hw : (n_H, n_W)
    """

    kernel: Pair
    stride: Pair
    dilation: Pair
    pad: Pad2D
    in_hw: Pair
    out_hw: Pair

    @property
    def extent(self) -> Pair:
        """Cells spanned by one window: ``(f - 1) * dilation + 1`` per axis."""
        return tuple((f - 1) * d + 1 for f, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]

    @property
    def has_pad(self) -> bool:
        return any(any(p) for p in self.pad)


def _window_geometry(
    func: str,
    input_name: str,
    in_hw: Pair,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    pad: Any,
) -> WindowGeometry:
    extent = tuple((f - 1) * d + 1 for f, d in zip(kernel, dilation))
    pads = resolve_pad(pad, in_hw, extent, stride, "hparameters['pad']", func)  # type: ignore[arg-type]
    out = []
    for axis, n, e, p, f, d, s in zip(_AXES, in_hw, extent, pads, kernel, dilation, stride):
        if n + p[0] + p[1] < e:
            span = f"{f}" if d == 1 else f"{e} ({f} taps, dilation {d})"
            raise ValueError(
                f"{func}: the window does not fit: window {axis} {span} is larger than the "
                f"padded {input_name} {axis} {n + p[0] + p[1]} ({n} + pad {p[0]}+{p[1]})"
            )
        out.append(out_size(n, e, p, s))
    return WindowGeometry(kernel, stride, dilation, pads, in_hw, (out[0], out[1]))


def conv_geometry(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Any,
                  func: str = "conv_forward") -> WindowGeometry:
    """Check a convolution's arguments and work out its geometry.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    b : ndarray of shape (1, 1, 1, n_C)
    hparameters : dict
        ``"stride"`` and ``"pad"`` (required), ``"dilation"`` (optional, default 1).
    """
    _check_hparameters(hparameters, func, ("stride", "pad"), ("dilation",))
    if A_prev.ndim != 4:
        raise ValueError(
            f"{func}: A_prev must have 4 dimensions (m, n_H_prev, n_W_prev, n_C_prev), "
            f"got shape {A_prev.shape}"
        )
    if W.ndim != 4:
        raise ValueError(
            f"{func}: W must have 4 dimensions (f_h, f_w, n_C_prev, n_C), got shape {W.shape}"
        )
    if W.shape[2] != A_prev.shape[3]:
        raise ValueError(
            f"{func}: channel mismatch: W of shape {W.shape} expects n_C_prev = {W.shape[2]} "
            f"input channels, but A_prev of shape {A_prev.shape} has {A_prev.shape[3]}"
        )
    if 0 in W.shape[:2] or W.shape[3] == 0:
        raise ValueError(
            f"{func}: W must have a non-empty kernel and n_C >= 1, got shape {W.shape}"
        )
    n_C = W.shape[3]
    if b.size != n_C or (b.ndim == 4 and b.shape != (1, 1, 1, n_C)):
        raise ValueError(
            f"{func}: b must have shape (1, 1, 1, {n_C}) (one bias per filter of W {W.shape}), "
            f"got shape {b.shape}"
        )
    stride = to_pair(hparameters["stride"], "hparameters['stride']", func)
    dilation = to_pair(hparameters.get("dilation", 1), "hparameters['dilation']", func)
    kernel = (int(W.shape[0]), int(W.shape[1]))
    in_hw = (int(A_prev.shape[1]), int(A_prev.shape[2]))
    return _window_geometry(func, "A_prev", in_hw, kernel, stride, dilation, hparameters["pad"])


def pool_geometry(
    A_prev: np.ndarray, hparameters: Any, func: str = "pool_forward"
) -> WindowGeometry:
    """Check a pooling's arguments and work out its geometry.

    Parameters
    ----------
    A_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C)
    hparameters : dict
        ``"f"`` and ``"stride"`` (required), ``"pad"`` (optional, default 0). Each padding side
        must be smaller than the window, so every window holds at least one real cell.
    """
    _check_hparameters(hparameters, func, ("f", "stride"), ("pad",))
    if A_prev.ndim != 4:
        raise ValueError(
            f"{func}: A_prev must have 4 dimensions (m, n_H_prev, n_W_prev, n_C), "
            f"got shape {A_prev.shape}"
        )
    kernel = to_pair(hparameters["f"], "hparameters['f']", func)
    stride = to_pair(hparameters["stride"], "hparameters['stride']", func)
    in_hw = (int(A_prev.shape[1]), int(A_prev.shape[2]))
    pad = hparameters.get("pad", 0)
    geom = _window_geometry(func, "A_prev", in_hw, kernel, stride, (1, 1), pad)
    for axis, f, p in zip(_AXES, kernel, geom.pad):
        if max(p) >= f:
            raise ValueError(
                f"{func}: pooling pad must be smaller than the window on every side, so that "
                f"each window holds a real cell; got pad {p} for a window {axis} of {f}"
            )
    return geom


def pool_counts(geom: WindowGeometry) -> np.ndarray:
    """Number of real (unpadded) cells in each pooling window.

    Returns
    -------
    ndarray of shape (n_H, n_W), int64
    """
    counts = []
    for n, f, s, p, n_out in zip(geom.in_hw, geom.kernel, geom.stride, geom.pad, geom.out_hw):
        start = np.arange(n_out) * s  # window starts, padded coordinates
        counts.append(np.minimum(start + f, p[0] + n) - np.maximum(start, p[0]))
    return np.outer(counts[0], counts[1])
