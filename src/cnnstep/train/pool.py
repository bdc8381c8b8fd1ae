"""Worker processes kept between runs, only where the caller asks for it.

A run's worker processes (:mod:`cnnstep.train.processes`) stop when the run ends: a returned
``fit`` leaves no process behind. A caller who trains the same model again and again (a grid
search, epochs one call at a time) can keep them instead, in a :class:`WorkerPool` it owns:

    with WorkerPool():                 # the runs started inside keep their workers here
        search.fit(x, y)               # (scikit-learn's GridSearchCV: five fits, one start)
    # the block's end stopped them

or gives to a run (``make_runner(..., workers=pool)``) and closes itself; or in the
process-wide :func:`kept_workers` (``make_runner(..., workers=True)``), stopped by
:func:`close_idle_workers` or at exit.

The pool handles workers through ``close()`` and ``proc`` only (``subprocess.Popen``), so this
module imports nothing of cnnstep.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any


class WorkerPool:
    """Worker processes kept from one run to the next run of the same model.

    A run given a pool (``make_runner(..., workers=pool)``) takes its workers from it when they
    fit (the same model, layout and settings) and gives them back when it ends; otherwise the
    workers a run starts stop when it ends. The pool holds the workers of the last run only;
    each exits by itself after :data:`cnnstep.train.processes.IDLE_TIMEOUT` seconds without a
    command. Close the pool when done (or use it as a context manager): its workers stop.

    Repeated short runs (a grid search, epochs one call at a time) then start their workers
    once: see ``docs/backends.md`` for what that saves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._workers: list[Any] = []
        self._since = 0.0
        self._pid = os.getpid()

    def _swap(self, key: str | None,
              workers: list[Any]) -> tuple[str | None, list[Any], float]:
        """Hold ``workers`` for ``key`` instead; what was held. In a forked child the workers
        held are its parent's (their pipes too): they are dropped, never used or stopped."""
        with self._lock:
            old = (self._key, self._workers, self._since)
            if self._pid != os.getpid():
                self._pid, old = os.getpid(), (None, [], 0.0)
            self._key, self._workers, self._since = key, list(workers), time.monotonic()
        return old

    def __enter__(self) -> WorkerPool:
        """Inside the block, runs given no pool use this one (see :func:`active_pool`)."""
        with _active_lock:
            _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _active_lock:
            if self in _active:
                _active.remove(self)
        self.close()

    def take(self, key: str, n: int, max_age: float) -> list[Any]:
        """Up to ``n`` kept workers that fit ``key`` (alive, and kept for less than
        ``max_age`` seconds: not about to exit by themselves); all others are stopped."""
        key_was, workers, since = self._swap(None, [])
        fresh = time.monotonic() - since < max_age
        taken = [w for w in workers if key_was == key and fresh and w.proc.poll() is None][:n]
        for w in workers:
            if w not in taken:
                w.close()
        return taken

    def keep(self, key: str | None, workers: list[Any]) -> None:
        """Keep ``workers`` for the next run of ``key``; those kept before stop."""
        for w in self._swap(key, workers)[1]:
            w.close()

    def processes(self) -> list[Any]:
        """The kept workers' processes (for tests and diagnostics)."""
        with self._lock:
            return [w.proc for w in self._workers] if self._pid == os.getpid() else []

    def close(self) -> None:
        """Stop every kept worker."""
        self.keep(None, [])


_kept = WorkerPool()
_active: list[WorkerPool] = []
_active_lock = threading.Lock()


def active_pool() -> WorkerPool | None:
    """The pool of the innermost ``with WorkerPool():`` block now open, or ``None``."""
    with _active_lock:
        return _active[-1] if _active else None


def kept_workers() -> WorkerPool:
    """The process-wide pool of ``make_runner(..., workers=True)``:
    closed by :func:`close_idle_workers` or at the interpreter's exit."""
    return _kept


def close_idle_workers() -> None:
    """Stop the workers :func:`kept_workers` holds."""
    _kept.close()


atexit.register(close_idle_workers)
