"""cnnstep's settings for this process, in one place: threads, budgets and the backend.

Modelled on scikit-learn's ``get_config`` / ``set_config`` / ``config_context``::

    import cnnstep.config as cfg

    cfg.set_config(threads=2)                    # each op may use 2 threads from now on
    with cfg.config_context(backend="numpy"):    # NumPy's kernels only, inside the block
        model.predict(x)
    cfg.get_config()["workspace_budget"]         # 134217728

The settings (each checked here, with a ``ValueError`` naming it otherwise):

``threads``
    How many threads one op (a convolution or pooling, forward or backward) may split its batch
    between; default 1 (:mod:`cnnstep.ops.kernels.threads`).
``workspace_budget``
    Bytes of scratch memory one op may use at once; default 128 MiB; ``None`` restores it
    (:mod:`cnnstep.ops.kernels.workspace`).
``memory_budget``
    The most bytes one array read from a file may declare before cnnstep refuses to allocate it;
    ``None``: the ``CNNSTEP_MAX_MEMORY`` environment variable, else 4 GiB or half the machine's
    memory (:mod:`cnnstep.budget`). A size string (``"8G"``) or a number of bytes.
``backend``
    ``"auto"``: the layers use a native kernel (oneDNN, the ``onednn`` extra) where it applies,
    NumPy's elsewhere; ``"numpy"``: NumPy's only. Default ``"auto"``, or ``"numpy"`` when the
    environment variable ``CNNSTEP_ONEDNN`` is ``0`` (:mod:`cnnstep.backends`).

Unlike scikit-learn's (per thread), these settings are the process's: an op splits its batch
between threads that must all see the caller's budget, and a training run's threads and worker
processes must all compute alike. The worker processes of a run get every setting from
:func:`get_config`, applied there by :func:`set_config` (:mod:`cnnstep.train.processes`), so a
new setting added here reaches them with no other change.

The older setters stay, as thin wrappers of :func:`set_config`: ``cnnstep.ops.set_num_threads``,
``cnnstep.set_workspace_budget`` and ``cnnstep.workspace_budget``, ``cnnstep.set_memory_budget``,
``cnnstep.ops.onednn.set_enabled``.

Top-level module: importable from every folder. It imports only :mod:`cnnstep.errors`.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from cnnstep.errors import UserError

__all__ = ["BACKENDS", "DEFAULT_WORKSPACE_BUDGET", "config_context", "get_config", "parse_size",
           "set_config", "setting"]

#: What ``backend`` may be.
BACKENDS = ("auto", "numpy")
#: ``workspace_budget``'s default: 128 MiB.
DEFAULT_WORKSPACE_BUDGET = 128 * 2**20


def _default_backend() -> str:
    return "numpy" if os.environ.get("CNNSTEP_ONEDNN", "1") == "0" else "auto"


_settings: dict[str, Any] = {
    "threads": 1,
    "workspace_budget": DEFAULT_WORKSPACE_BUDGET,
    "memory_budget": None,
    "backend": _default_backend(),
}
_lock = threading.Lock()


class _SizeError(UserError, ValueError):
    """A size that does not parse (both a user error and a ValueError)."""


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int, name: str = "memory budget") -> int:
    """Bytes in ``text``: an integer, or a number with a unit K, M, G or T (powers of 1024).

    Parameters
    ----------
    text : str or int
        ``"4G"``, ``"512MiB"``, ``"1000000"`` or an int.
    name : str
        What the value is, for the error message.

    Returns
    -------
    int
        A positive number of bytes.

    Raises
    ------
    UserError
        (a ``ValueError`` too) when ``text`` is not a positive size.
    """
    if isinstance(text, bool):
        raise _SizeError(f"{name} must be a size such as 4G or 512M, got {text!r}")
    if isinstance(text, numbers.Integral):
        value = int(text)
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise _SizeError(f"{name} must be a size such as 4G or 512M, got {text!r}")
        value = int(float(match[1]) * _UNITS[match[2].upper()])
    if value <= 0:
        raise _SizeError(f"{name} must be positive, got {text!r}")
    return value


def _threads(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"threads: expected a positive number of threads, got {value!r}")
    return int(value)


def _workspace(value: Any) -> int:
    if value is None:
        return DEFAULT_WORKSPACE_BUDGET
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"workspace_budget: expected a positive number of bytes, got {value!r}")
    return int(value)


def _memory(value: Any) -> int | None:
    return None if value is None else parse_size(value, "memory_budget")


def _backend(value: Any) -> str:
    if not isinstance(value, str) or value not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(map(repr, BACKENDS))}, "
                         f"got {value!r}")
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "threads": _threads,
    "workspace_budget": _workspace,
    "memory_budget": _memory,
    "backend": _backend,
}


def get_config() -> dict[str, Any]:
    """The settings now, as a new dict (changing it changes nothing; see :func:`set_config`).

    Returns
    -------
    dict
        ``threads`` (int), ``workspace_budget`` (int, bytes), ``memory_budget`` (int bytes, or
        None: the environment or the default), ``backend`` (``"auto"`` or ``"numpy"``).
    """
    with _lock:
        return dict(_settings)


def setting(name: str) -> Any:
    """One setting's value (what the ops read on every call: no copy of the whole dict)."""
    return _settings[name]


def set_config(**settings: Any) -> None:
    """Change some settings for this whole process (see the module's docstring for each).

    Parameters
    ----------
    **settings
        ``threads``, ``workspace_budget``, ``memory_budget``, ``backend``; those not given keep
        their values. All are checked before any changes, so a bad one changes nothing.

    Raises
    ------
    TypeError
        For a name that is not a setting.
    ValueError
        For a value a setting cannot take, naming the setting.
    """
    unknown = sorted(set(settings) - set(_CHECKS))
    if unknown:
        raise TypeError(f"set_config: no setting named {', '.join(map(repr, unknown))}; the "
                        f"settings are {', '.join(_CHECKS)}")
    checked = {name: _CHECKS[name](value) for name, value in settings.items()}
    with _lock:
        _settings.update(checked)


@contextlib.contextmanager
def config_context(**settings: Any) -> Iterator[None]:
    """Change some settings inside a ``with`` block; they get their earlier values back after it.

    ``with config_context(threads=2, workspace_budget=64 * 2**20): ...``. The settings are the
    process's (see the module's docstring): other threads see them too while the block runs.
    """
    before = get_config()
    set_config(**settings)
    try:
        yield
    finally:
        set_config(**{name: before[name] for name in settings})
