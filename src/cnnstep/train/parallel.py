"""Threads: a batch split between threads, and the limits on NumPy's own BLAS threads.

NumPy releases the GIL inside its array operations, so the parts of a batch run in parallel in
threads that share the model's parameters. Meanwhile NumPy's BLAS is kept on one thread
(:func:`blas_threads`): multi-threaded BLAS gains little on these small products, and its
spinning threads make every step many times slower when other programs use the CPU. Both
``Sequential.fit`` and ``cnnstep train`` get these settings from here.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import numpy as np

from cnnstep.nn.losses import classification_loss
from cnnstep.ops.kernels.threads import blas_one_thread, serial


def machine_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system says, else
    ``os.cpu_count()``): the most threads a count read from a file is allowed."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads a run uses when none is asked for: the CPUs this process may use, at most 4."""
    return min(4, machine_cpus())


def blas_threads(n: int) -> contextlib.AbstractContextManager[Any]:
    """Limit NumPy's BLAS to ``n`` threads inside a ``with`` block (if threadpoolctl is there).

    Without the ``threads`` extra (threadpoolctl) this does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the threads extra
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def split_rows(m: int, n: int) -> list[tuple[int, int]]:
    """``m`` rows as at most ``n`` nearly equal, non-empty runs ``(start, stop)``, in order."""
    bounds = np.linspace(0, m, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def part_step(model: Any, x: np.ndarray, y: np.ndarray, m: int) -> tuple[float, np.ndarray]:
    # np.errstate is per thread: quiet overflow here too, as train() does in the main thread
    # A part of a batch is one thread's work: its ops do not split again (ops.threads).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), serial():
        logits = model.forward(x, training=True)
        loss, dlogits, _ = classification_loss(logits, y)
        if math.isfinite(loss):
            dlogits *= dlogits.dtype.type(len(y) / m)  # this part's share of the batch mean
            model.backward(dlogits, need_input_grad=False)
    return loss, logits


class DataParallel:
    """Runs each training step as ``n`` parts of the batch in ``n`` threads.

    Each thread has a :meth:`~cnnstep.nn.model.Sequential.replica` of the model (shared parameters,
    own caches and gradients); the parts' gradients are summed and one optimizer step is taken.
    The parts' batch statistics (batch normalisation) are summed too and update the model's
    running statistics once, as the whole batch would.
    """

    def __init__(self, model: Any, n: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.model = model
        self.replicas = [model.replica() for _ in range(n)]
        self.pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="cnnstep-train")

    def train_step(self, x: np.ndarray, y: np.ndarray,
                   optimizer: Any) -> tuple[float, np.ndarray]:
        m = len(y)
        parts = split_rows(m, len(self.replicas))
        # BLAS on one thread, as in worker processes: the same numbers either way
        with blas_one_thread():
            futures = [self.pool.submit(part_step, r, x[a:b], y[a:b], m)
                       for r, (a, b) in zip(self.replicas[1:], parts[1:])]
            a, b = parts[0]
            results = [part_step(self.replicas[0], x[a:b], y[a:b], m)]
            results += [f.result() for f in futures]
        loss = sum(part_loss * (b - a) for (part_loss, _), (a, b) in zip(results, parts)) / m
        logits = np.concatenate([r[1] for r in results])
        used = self.replicas[:len(parts)]
        self.model.update_state([sum(s) for s in zip(*(r.statistics() for r in used))])
        if math.isfinite(loss):
            grads = [sum(g) for g in zip(*(r.gradients() for r in used))]
            optimizer.step(self.model.parameters(), grads)
        return loss, logits

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict:
        parts = split_rows(len(y), len(self.replicas))
        with blas_one_thread():
            futures = [self.pool.submit(r.evaluate, x[a:b], y[a:b])
                       for r, (a, b) in zip(self.replicas[1:], parts[1:])]
            a, b = parts[0]
            results = [self.replicas[0].evaluate(x[a:b], y[a:b])]
            results += [f.result() for f in futures]
        m = len(y)
        return {k: sum(r[k] * (b - a) for r, (a, b) in zip(results, parts)) / m
                for k in ("loss", "accuracy")}

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class Serial:
    """Runs each training step on the whole batch in the calling thread."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def train_step(self, x: np.ndarray, y: np.ndarray,
                   optimizer: Any) -> tuple[float, np.ndarray]:
        loss, logits = self.model.train_step(x, y, optimizer)
        return float(loss), logits

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict:
        return dict(self.model.evaluate(x, y))

    def close(self) -> None:
        pass
