"""Backends: which kernels run each pass of the layers, NumPy's or a native library's.

Lives here: ``dispatch`` (the one API the layers call: :func:`conv2d_forward`,
:func:`conv2d_backward`, :func:`pool2d_forward`, :func:`pool2d_backward`; it decides per pass
and falls back to NumPy), ``numpy`` (NumPy's kernels of :mod:`cnnstep.ops.kernels` as the
layers use them), ``record`` (where each pass ran and why) and ``onednn/`` (oneDNN's
convolution and max pooling through ctypes, the optional ``onednn`` extra, version-checked).

:func:`status` says what is in use and why; the ``backend`` setting of :mod:`cnnstep.config`
chooses (``"auto"`` or ``"numpy"``).

May import: this folder, :mod:`cnnstep.ops` and the top-level modules (``config``, ``errors``).
NumPy always; oneDNN's shared library only when a pass first asks for it.
"""

from __future__ import annotations

from typing import Any

from cnnstep.backends import onednn, record
from cnnstep.backends.dispatch import (
    ConvContext,
    PoolContext,
    conv2d_backward,
    conv2d_forward,
    pool2d_backward,
    pool2d_forward,
)
from cnnstep.backends.onednn import library, primitives
from cnnstep.config import setting

__all__ = [
    "ConvContext",
    "PoolContext",
    "conv2d_backward",
    "conv2d_forward",
    "pool2d_backward",
    "pool2d_forward",
    "status",
    "summary",
]


def status() -> dict[str, Any]:
    """What runs the layers' passes, and why.

    Returns
    -------
    dict
        ``backend``: the setting (``"auto"`` or ``"numpy"``); ``onednn``: ``"oneDNN 3.2.0
        (libgomp.so.1)"`` when it is loaded and usable, else why not (not installed, a refused
        version or threading runtime, an engine that failed), ``"not loaded yet"`` before a pass
        asked for it; ``notes``: anything else worth knowing (a forked child on one thread);
        ``refused``: the geometries oneDNN refused, with why; ``passes``: each recent pass
        (described by its shapes) with where it ran: ``"onednn"`` or ``"numpy: <why>"``.
    """
    loaded = library.was_asked()
    fork = primitives.fork_note()
    return {
        "backend": setting("backend"),
        "onednn": onednn.describe() if loaded else "not loaded yet",
        "notes": [fork] if fork else [],
        "refused": {record.describe_refused(k): why for k, why in primitives.REFUSED.items()},
        "passes": record.passes(),
    }


def summary() -> str:
    """One phrase for a command's first line: ``"oneDNN kernels"`` when they are in use,
    ``"NumPy kernels: <why>"`` when oneDNN was wanted and failed (a refused version,
    a library that does not load, an engine that failed), ``""`` otherwise (the setting is
    ``"numpy"``, or the extra is not installed). Loads the library if it was not yet."""
    if setting("backend") != "auto":
        return ""
    made = library.engine()
    if not isinstance(made, str):
        fork = primitives.fork_note()
        return "oneDNN kernels" + (" (one thread: forked after an OpenMP team)" if fork else "")
    if not library.candidates():
        return ""
    return f"NumPy kernels: {made}"
