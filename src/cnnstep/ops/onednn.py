"""The old place of the oneDNN switch: :func:`set_enabled` stays here as a wrapper.

oneDNN's kernels now live in :mod:`cnnstep.backends.onednn` (a backend, above this room), and
whether the layers may use them is the ``backend`` setting of :mod:`cnnstep.config`. To see
what runs and why: :func:`cnnstep.backends.status`.
"""

from __future__ import annotations

from cnnstep.config import set_config

__all__ = ["set_enabled"]


def set_enabled(flag: bool) -> None:
    """Let the layers use oneDNN's kernels (``True``), or NumPy's only (``False``): the same as
    ``cnnstep.config.set_config(backend="auto" if flag else "numpy")``."""
    if not isinstance(flag, bool):
        raise TypeError(f"flag: expected True or False, got {flag!r}")
    set_config(backend="auto" if flag else "numpy")
