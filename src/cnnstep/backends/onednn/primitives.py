"""What the oneDNN kernels share: when they pay (:data:`MIN_WORK`), how many threads they run
on, and each thread's primitives, made once per geometry and kept.

oneDNN runs a primitive in the thread that made it, and splits its work for the OpenMP thread
count set when it was made: so each thread keeps its own primitives, one set per geometry and
thread count, least recently used dropped first (:data:`CACHE_SIZE`).

A geometry oneDNN refuses (or for which it offers only its reference implementation, far slower
than NumPy's kernels) is remembered for the whole process in :data:`REFUSED`, with why, so it
is never tried again, by this thread or another.

After ``os.fork()``: GNU OpenMP cannot start a team of threads in a child of a process whose
own team had started (the child waits for threads that were not copied). Once a oneDNN kernel
has run on more than one thread here, a forked child runs oneDNN on one thread only
(:func:`threads`), and says so in :func:`cnnstep.backends.status`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cnnstep.backends.onednn import api as dn
from cnnstep.ops.kernels.threads import op_threads

#: Geometries whose primitives each thread keeps.
CACHE_SIZE = 32
#: Below this much work (a convolution: output cells x taps x channels in and out; a pooling:
#: inputs x window taps) NumPy's kernels run: a call costs some 20 microseconds of ctypes and
#: descriptors, more than tiny ops take. The one place both kernels read it from.
MIN_WORK = 20_000

#: Geometries oneDNN refused, by key (without the thread count): why, for the whole process.
REFUSED: dict[tuple[Any, ...], str] = {}
_state = {"team": False, "forked_after_team": False}
_local = threading.local()


class RefusedError(Exception):
    """oneDNN will not run this pass (remembered in :data:`REFUSED`); NumPy's kernels will."""


def enough_work(work: int) -> bool:
    """Whether a pass of ``work`` (see :data:`MIN_WORK`) is worth a oneDNN call."""
    return work >= MIN_WORK


def threads() -> int:
    """The threads a oneDNN kernel may use here: the op's (:func:`~cnnstep.ops.kernels.threads.
    op_threads`), or 1 in a child forked after an OpenMP team started (see the docstring)."""
    n = op_threads()
    if n > 1:
        if _state["forked_after_team"]:
            return 1
        _state["team"] = True
    return n


def fork_note() -> str | None:
    """Why oneDNN runs on one thread in this process, or ``None``."""
    if _state["forked_after_team"]:
        return ("this process was forked after oneDNN had run an OpenMP team: oneDNN runs on "
                "one thread here (GNU OpenMP cannot start a team after fork)")
    return None


def _after_fork_in_child() -> None:
    if _state["team"]:
        _state["forked_after_team"] = True
    _local.__dict__.clear()  # the forking thread's primitives: made for the parent's team


os.register_at_fork(after_in_child=_after_fork_in_child)


def cached(key: tuple[Any, ...], n_threads: int, make: Callable[[dn.Api], dn.Owned],
           api: dn.Api) -> Any:
    """This thread's primitives for ``key`` and ``n_threads``, made by ``make(api)`` on first
    use and kept. :class:`RefusedError` (remembered for ``key``, whatever the thread count) where
    oneDNN refuses them or offers only its reference implementation."""
    cache: OrderedDict[Any, dn.Owned] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    full = (*key, n_threads)
    prims = cache.get(full)
    if prims is not None:
        cache.move_to_end(full)
        return prims
    api.set_threads(n_threads)  # a primitive splits its work for the count set as it is made
    prims = attempt(key, lambda: make(api))
    cache[full] = prims
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return prims


def attempt(key: tuple[Any, ...], call: Callable[[], Any]) -> Any:
    """``call()``; a oneDNN error there refuses ``key`` (remembered) and raises
    :class:`RefusedError`. A ``key`` refused before raises at once, ``call`` not called.
    ``MemoryError`` goes through: the machine's problem, not the geometry's."""
    why = REFUSED.get(key)
    if why is not None:
        raise RefusedError(why)
    try:
        return call()
    except dn.ReferenceOnlyError as exc:
        raise refuse(key, str(exc)) from None
    except dn.DnnlError as exc:
        raise refuse(key, f"oneDNN refused it: {exc}") from None


def refuse(key: tuple[Any, ...], why: str) -> RefusedError:
    """Remember that oneDNN does not run ``key`` (and why); the :class:`RefusedError` to raise."""
    REFUSED[key] = why
    return RefusedError(why)


def cached_keys() -> list[tuple[Any, ...]]:
    """The keys (with thread counts) of this thread's primitives, oldest first (for tests)."""
    cache = getattr(_local, "cache", None)
    return list(cache) if cache is not None else []


def forget() -> None:
    """Drop what was remembered: refusals, and this thread's primitives (for tests)."""
    REFUSED.clear()
    _local.__dict__.clear()
