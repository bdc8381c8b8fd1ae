"""The memory budget: the most bytes one array read from a file (or built from a model file's
architecture) may declare before cnnstep refuses to allocate it.

Files say how big they are before they are read (an IDX header, an ``.npy`` header, an HDF5
shape, a zip member's uncompressed size, a layer's number of units). A few bytes can declare
terabytes, so every such size is checked here *before* allocating: a hostile or damaged file
ends in a one-line :class:`~cnnstep.errors.DataError` instead of a machine out of memory.

The default is 4 GiB, or half of the machine's physical memory when that is less (a laptop
survives it). Raise it with :func:`set_memory_budget` (the ``memory_budget`` setting of
:mod:`cnnstep.config`), the ``CNNSTEP_MAX_MEMORY`` environment variable (``"8G"``, ``"512M"``,
a number of bytes), or the CLI's ``--max-memory``.

Top-level module: importable from every folder (data, nn, train, cli).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from cnnstep.config import parse_size, set_config, setting
from cnnstep.errors import DataError

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "ENV_VAR",
    "check_bytes",
    "check_shape",
    "format_bytes",
    "memory_budget",
    "parse_size",
    "set_memory_budget",
]

ENV_VAR = "CNNSTEP_MAX_MEMORY"
_CEILING = 4 << 30
_FLOOR = 256 << 20


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - depends on the system
        return None


def _default_budget() -> int:
    physical = _physical_memory()
    if physical is None or physical <= 0:  # pragma: no cover - depends on the system
        return _CEILING
    return max(_FLOOR, min(_CEILING, physical // 2))


DEFAULT_MEMORY_BUDGET: int = _default_budget()


def set_memory_budget(n_bytes: int | str | None) -> None:
    """Set the memory budget for files read from now on (``set_config(memory_budget=...)``).

    Parameters
    ----------
    n_bytes : int, str or None
        Bytes (``8 << 30``) or a size string (``"8G"``); None goes back to the
        ``CNNSTEP_MAX_MEMORY`` environment variable or the default.
    """
    if n_bytes is not None:
        parse_size(n_bytes, "n_bytes")  # the error names this function's argument
    set_config(memory_budget=n_bytes)


def memory_budget() -> int:
    """The memory budget in bytes now: the ``memory_budget`` setting (:mod:`cnnstep.config`),
    else ``CNNSTEP_MAX_MEMORY``, else :data:`DEFAULT_MEMORY_BUDGET`."""
    chosen = setting("memory_budget")
    if chosen is not None:
        return int(chosen)
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_size(env, ENV_VAR)
    return DEFAULT_MEMORY_BUDGET


def format_bytes(n: int) -> str:
    """``n`` bytes in a readable unit (``"1.5 GiB"``)."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover - the loop always returns


def check_bytes(n_bytes: int, what: str) -> int:
    """Refuse ``n_bytes`` (declared by ``what``) when it exceeds the memory budget.

    Parameters
    ----------
    n_bytes : int
        Bytes an allocation would take, computed with Python ints (no overflow).
    what : str
        What declares them, naming the file (``"data.npz:x_train"``).

    Returns
    -------
    int
        ``n_bytes``, for chaining.

    Raises
    ------
    DataError
        When ``n_bytes`` is negative or over the budget; the message says how to raise it.
    """
    if n_bytes < 0:
        raise DataError(f"{what}: declares a negative size ({n_bytes} bytes)")
    budget = memory_budget()
    if n_bytes > budget:
        raise DataError(
            f"{what}: declares {format_bytes(n_bytes)}, more than the memory budget of "
            f"{format_bytes(budget)}; if the file is right, raise the budget with --max-memory, "
            f"{ENV_VAR} or cnnstep.set_memory_budget"
        )
    return n_bytes


def check_shape(shape: Iterable[int], itemsize: int, what: str) -> int:
    """Bytes of an array of ``shape`` and ``itemsize``, checked against the budget.

    Parameters
    ----------
    shape : iterable of int
        Declared dimensions (any size: multiplied as Python ints, so they cannot overflow).
    itemsize : int
        Bytes per element.
    what : str
        What declares the shape, naming the file.

    Returns
    -------
    int
        The number of bytes.
    """
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise DataError(f"{what}: declares a negative dimension in shape {tuple(dims)}")
    return check_bytes(math.prod(dims) * int(itemsize), what)
