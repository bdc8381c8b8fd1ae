"""Where each pass ran and why: what :func:`cnnstep.backends.status` reports.

Every pass the dispatch runs notes its backend here, with the reason when it is not the native
one (``"numpy: oneDNN runs float32 only"``), keyed by the pass and its shapes; the latest
:data:`KEEP` distinct passes are kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

#: Distinct passes remembered (the latest).
KEEP = 64

_passes: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_lock = threading.Lock()


def note(key: tuple[Any, ...], where: str) -> None:
    """Note that the pass ``key`` ran on ``where`` (``"onednn"`` or ``"numpy: <why>"``)."""
    with _lock:
        if _passes.get(key) != where:
            _passes[key] = where
        _passes.move_to_end(key)
        if len(_passes) > KEEP:
            _passes.popitem(last=False)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def describe(key: tuple[Any, ...]) -> str:
    """``"conv forward 64x28x28x1 -> 16, 3x3 stride 1x1 float32"`` for a key of :func:`note`."""
    what, x_shape, geom, dtype, *rest = key
    out = f" -> {rest[0]}" if rest else ""
    # the dtype is kept as is: its name costs 10 microseconds, paid only here
    name = getattr(dtype, "name", dtype)
    if geom is None:  # a pass noted before its geometry was worked out
        return f"{what} {_shape(x_shape)}{out} {name}"
    (f_h, f_w), (s_h, s_w) = geom.kernel, geom.stride
    return f"{what} {_shape(x_shape)}{out}, {f_h}x{f_w} stride {s_h}x{s_w} {name}"


def describe_refused(key: tuple[Any, ...]) -> str:
    """``"conv backward weights 64x28x28x1 3x3x1x16 3x3 stride 1x1"`` for a key of
    :data:`cnnstep.backends.onednn.primitives.REFUSED`."""
    words = [str(key[0])]
    for part in key[1:]:
        if isinstance(part, tuple):
            words.append(_shape(part))
        elif hasattr(part, "kernel") and hasattr(part, "stride"):
            words.append(f"{part.kernel[0]}x{part.kernel[1]} stride "
                         f"{part.stride[0]}x{part.stride[1]}")
    return " ".join(words)


def passes() -> dict[str, str]:
    """Each noted pass, described, with where it ran (oldest first)."""
    with _lock:
        items = list(_passes.items())
    return {describe(key): where for key, where in items}


def forget() -> None:
    """Forget every noted pass (for tests)."""
    with _lock:
        _passes.clear()
