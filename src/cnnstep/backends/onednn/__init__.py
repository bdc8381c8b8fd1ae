"""oneDNN's kernels (the ``onednn`` extra), through ctypes: convolution and max pooling for the
layers' float32 passes.

Lives here: ``api`` (the few C calls, declared with ctypes), ``library`` (finding, loading and
checking the library: version, OpenMP runtime; once per process), ``primitives`` (when a call
pays, thread counts, each thread's primitives, the geometries oneDNN refused), ``conv`` and
``pool`` (the kernels). Which pass runs here is decided by :mod:`cnnstep.backends.dispatch`.

May import: this folder and :mod:`cnnstep.ops` (the contract: geometry, thread counts).
"""

from __future__ import annotations

from cnnstep.backends.onednn import library
from cnnstep.config import set_config, setting

__all__ = ["available", "describe", "enabled", "set_enabled"]


def available() -> bool:
    """Whether the library is installed, loads, passes the checks and made its engine."""
    return not isinstance(library.engine(), str)


def describe() -> str:
    """``"oneDNN 3.2.0 (libgomp.so.1)"`` when :func:`available`, else why not."""
    loaded, made = library.load(), library.engine()
    if isinstance(made, str):
        return made
    assert not isinstance(loaded, str)
    return loaded.describe()


def enabled() -> bool:
    """Whether the layers may use oneDNN's kernels: :func:`available`, and the ``backend``
    setting is ``"auto"``."""
    return setting("backend") == "auto" and available()


def set_enabled(flag: bool) -> None:
    """Let the layers use oneDNN's kernels, or not: ``set_config(backend="auto")`` or
    ``set_config(backend="numpy")`` (:mod:`cnnstep.config`)."""
    if not isinstance(flag, bool):
        raise TypeError(f"flag: expected True or False, got {flag!r}")
    set_config(backend="auto" if flag else "numpy")
