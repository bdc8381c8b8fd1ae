"""How many threads one op may use: the ``threads`` setting (:mod:`cnnstep.config`), or
:func:`set_num_threads`, as ``torch.set_num_threads``.

With more than one, a large convolution or pooling (forward or backward) splits its batch into
that many parts, run side by side on a small thread pool with NumPy's BLAS held to one thread
(so that the window copies run in parallel too, not only the products, and BLAS threads do not
stall waiting for each other's cores). Small ops stay on one thread: there the cost of handing
work over is larger than the gain. The default is 1: one thread per op, as before; training
splits its batches between its own threads (``cnnstep train --threads``), and inside those the
ops never split again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from cnnstep.config import set_config, setting

T = TypeVar("T")

#: Below this much work an op is not split. Convolution (output cells x taps x channels in and
#: out), measured at 2 threads on 2 cores, fwd+bwd: 5-8 million lose a little (64x14x14x16 -> 32
#: 3x3: 7.0 -> 8.9 ms), 28 million and more gain 1.5x or more. Pooling (window taps plus
#: inputs): 1.6 million lose (64x28x28x16 2x2: 2.1 -> 2.3 ms), 2.6 million gain (3x3 stride 2:
#: 11.9 -> 7.7 ms).
MIN_WORK = {"conv": 12_000_000, "pool": 2_000_000}

_local = threading.local()
_lock = threading.Lock()
_pool: dict[str, Any] = {"executor": None, "workers": 0}


def set_num_threads(n: int) -> None:
    """Let each op use up to ``n`` threads (1: no splitting, the default); the same as
    ``cnnstep.config.set_config(threads=n)``."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n: expected a positive number of threads, got {n!r}")
    set_config(threads=int(n))


def get_num_threads() -> int:
    """The number of threads an op may use: the ``threads`` setting (see
    :func:`set_num_threads`)."""
    return int(setting("threads"))


def op_threads() -> int:
    """Threads one op may use here: 1 inside :func:`serial`, else :func:`get_num_threads`."""
    return 1 if getattr(_local, "inside", False) else get_num_threads()


@contextlib.contextmanager
def serial() -> Iterator[None]:
    """Within the block, ops in this thread do not split (a training thread's part of a batch
    is already one thread's work)."""
    before = getattr(_local, "inside", False)
    _local.inside = True
    try:
        yield
    finally:
        _local.inside = before


def batch_parts(m: int, work: float, kind: str) -> list[slice] | None:
    """Slices of the batch, one per thread, or None when the op should run whole (one thread
    allowed, already inside a part, or less work than ``MIN_WORK[kind]``)."""
    n = min(op_threads(), m)
    if n < 2 or work < MIN_WORK[kind]:
        return None
    bounds = np.linspace(0, m, n + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def run_parts(fn: Callable[[slice], T], parts: list[slice]) -> list[T]:
    """``fn`` on every part, side by side (the calling thread takes the first); the results in
    order. BLAS is held to one thread meanwhile."""
    pool = _executor(len(parts) - 1)
    with blas_one_thread():
        futures = [pool.submit(_in_part, fn, part) for part in parts[1:]]
        try:
            first = _in_part(fn, parts[0])
        finally:
            for future in futures:  # never leave a part running past the BLAS limit
                future.exception()
        return [first] + [future.result() for future in futures]


def _in_part(fn: Callable[[slice], T], part: slice) -> T:
    with serial():
        return fn(part)


def _executor(workers: int) -> ThreadPoolExecutor:
    with _lock:
        if _pool["workers"] < workers:  # grown when more threads are asked for, never shrunk
            if _pool["executor"] is not None:
                _pool["executor"].shutdown(wait=False)
            _pool["executor"] = ThreadPoolExecutor(max_workers=workers,
                                                   thread_name_prefix="cnnstep-op")
            _pool["workers"] = workers
        executor: ThreadPoolExecutor = _pool["executor"]
        return executor


def _after_fork_in_child() -> None:
    # The pool's threads were not copied into the child: a part handed to them would wait
    # forever. The child starts a pool of its own when it first splits an op.
    _pool.update(executor=None, workers=0)


os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # the `threads` extra is not installed: BLAS keeps its own count
        return None
    return ThreadpoolController()


def blas_one_thread() -> contextlib.AbstractContextManager[Any]:
    """NumPy's BLAS held to one thread inside a ``with`` block (nothing without threadpoolctl,
    the ``threads`` extra). Cheap (about 20 microseconds): the controller is made once.

    A product's last bits can depend on BLAS's thread count (OpenBLAS's Haswell kernels), so
    whatever must give the same numbers in threads and in worker processes runs under it.
    """
    controller = _controller()
    if controller is None:
        return contextlib.nullcontext()
    limit: contextlib.AbstractContextManager[Any] = controller.limit(limits=1, user_api="blas")
    return limit
