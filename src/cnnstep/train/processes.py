"""A batch split between worker processes: the parallel runner that the GIL cannot slow down.

Threads (:class:`~cnnstep.train.parallel.DataParallel`) share one interpreter, and every NumPy
call that returns to Python waits for the GIL. A training step of a small convolutional network
is a few hundred such calls per part, so two threads of it run about 1.2x faster than one, not
2x (measured: a half batch of the default model takes 6.6 ms alone and 8.2-10 ms next to another
thread doing the same, but no longer next to a thread doing only BLAS). Worker processes have an
interpreter each.

:class:`ProcessParallel` runs the first part of each batch in the calling process and each other
part in a worker (:mod:`cnnstep.train.worker`, a fresh ``python -c``, so no user script is
run again). They share one memory mapping per worker (a ``memfd``, or an unlinked temporary
file): the parameters and state are copied in before each step, the worker's gradients, batch
statistics, logits and loss are read out after it; commands and replies are a few bytes on the
worker's stdin and stdout. The sum of the gradients, the update of the running statistics and the
optimizer step happen here, in the same order as with threads, so both give the same numbers.

A worker that cannot start, or stops, is not an error for the run: the runner goes on with
threads from that step on (with a warning), and the step is done again in this process. Only a
worker's ``MemoryError`` is raised here as one.

Every setting of :mod:`cnnstep.config` reaches the workers in one go: :func:`worker_settings`
(``get_config()``) is sent in the setup frame and applied there by ``set_config``, and the same
dict is part of what a kept worker must match to be used again.

No worker outlives the run that started it, unless the caller asks: a
:class:`~cnnstep.train.pool.WorkerPool` given to the run keeps them for the next run of the same
model (:mod:`cnnstep.train.pool`; :func:`close_idle_workers` stops those of the process-wide
pool).
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import select
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.config import get_config
from cnnstep.ops.kernels.threads import blas_one_thread
from cnnstep.train.parallel import DataParallel, part_step, split_rows
from cnnstep.train.pool import WorkerPool, close_idle_workers
from cnnstep.train.worker import EVALUATE, FAILED, HEADER, LENGTH, REPLY, STEP, STOP, Layout

#: What a worker runs: ``-c`` rather than ``-m``, as the module is already imported as a part of
#: the package (runpy would warn), and never the user's ``__main__`` (as multiprocessing would).
WORKER_MAIN = "from cnnstep.train.worker import main; main()"
#: Seconds an idle worker waits for its next command before it exits by itself.
IDLE_TIMEOUT = 300.0
#: Seconds a worker may take to start (import NumPy and cnnstep, build the model).
START_TIMEOUT = 60.0


class WorkerError(RuntimeError):
    """A worker process failed to start, stopped, or failed a command."""


def worker_settings() -> dict[str, Any]:
    """What a worker process applies before its first step: every setting of
    :mod:`cnnstep.config` (``get_config()``, JSON-able), so that it computes as this process
    does. The one function through which settings reach workers."""
    return get_config()


def _shared_file(nbytes: int) -> int:
    """A file descriptor of ``nbytes`` of zeroed memory that no path names."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("cnnstep-worker", 0)
    else:  # pragma: no cover - POSIX without memfd (macOS)
        fd, path = tempfile.mkstemp(prefix="cnnstep-worker-")
        os.unlink(path)
    try:
        os.ftruncate(fd, nbytes)
    except OSError:
        os.close(fd)
        raise
    return fd


class Worker:
    """One worker process and its shared mapping (the main process's side)."""

    def __init__(self, config: dict, layout: Layout) -> None:
        self.layout = layout
        self.fd = _shared_file(layout.nbytes)
        try:
            self._launch(config)
        except BaseException:
            os.close(self.fd)
            raise

    def _launch(self, config: dict) -> None:
        layout = self.layout
        self.buf = mmap.mmap(self.fd, layout.nbytes)
        self.arrays = layout.views(self.buf)
        self.params = layout.split_params(self.arrays["params"])
        self.grads = layout.split_params(self.arrays["grads"])
        self.state = layout.split_params(self.arrays["state"], layout.state_shapes)
        self.stats = layout.split_params(self.arrays["stats"], layout.stat_shapes)
        # the worker's stderr, read if it fails; closed by close()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        env = dict(os.environ)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"  # one core per part, as the threads runner does with threadpoolctl
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, pass_fds=(self.fd,), env=env, close_fds=True,
            # its own session: the terminal's Ctrl-C (SIGINT to the foreground process group) is
            # for this process to handle, also while the worker is still starting
            start_new_session=True,
        )
        text = json.dumps({"fd": self.fd, "layout": layout.to_json(), "config": config,
                           "idle_timeout": IDLE_TIMEOUT,
                           # threads, block sizes and kernels, hence the rounding, as here
                           "settings": worker_settings()}).encode()
        self._send(LENGTH.pack(len(text)) + text)
        self.busy = True  # until it says it is ready
        self.settings: dict[str, Any] = {}  # as it says then

    # ------------------------------------------------------------------ commands

    def _send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except OSError as exc:
            raise WorkerError(self._why(f"cannot reach it ({exc})")) from None

    def start(self, command: int, x: np.ndarray, y: np.ndarray, total: int,
              params: list[np.ndarray], state: list[np.ndarray] | None = None) -> None:
        """Give the worker rows ``x, y`` of a batch of ``total`` rows, with these parameters
        and state."""
        rows = len(y)
        for dst, p in zip([*self.params, *self.state], [*params, *(state or [])]):
            np.copyto(dst, p)
        self.arrays["x"][:rows] = x
        self.arrays["y"][:rows] = y
        self._send(HEADER.pack(command, rows, total))
        self.busy = True

    def answered(self) -> bool:
        """Whether a reply is waiting to be read (never blocks)."""
        out = self.proc.stdout
        assert out is not None
        return bool(select.select([out], [], [], 0)[0])

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the reply to the last command; :class:`WorkerError` if it failed."""
        out = self.proc.stdout
        assert out is not None
        if timeout is not None and not select.select([out], [], [], timeout)[0]:
            raise WorkerError(self._why(f"no answer within {timeout:.0f} s"))
        head = out.read(REPLY.size)
        self.busy = False
        if len(head) < REPLY.size:
            raise WorkerError(self._why("it stopped"))
        status, length = REPLY.unpack(head)
        payload = out.read(length) if length else b""
        if status != FAILED and payload:  # the ready reply: the settings the worker applied
            self.settings = json.loads(payload)
        if status == FAILED:
            error = json.loads(payload)
            if error.get("type") == "MemoryError":
                raise MemoryError(error.get("message", ""))
            raise WorkerError(f"a training worker process failed: {error.get('type')}: "
                              f"{error.get('message')}")

    def _why(self, what: str) -> str:
        try:  # a worker that has just closed its end is about to exit: give it a moment
            code: int | None = self.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            code = None
        note = ""
        try:
            self.log.seek(0)
            lines = self.log.read().decode(errors="replace").strip().splitlines()
            note = f": {lines[-1]}" if lines else ""
        except OSError:  # pragma: no cover - the log is a private temporary file
            pass
        status = "" if code is None else f" (exit code {code})"
        return f"a training worker process{status}: {what}{note}"

    def close(self) -> None:
        """Stop the worker (politely, then by force) and release the mapping."""
        with contextlib.suppress(OSError, ValueError, WorkerError):
            if self.proc.poll() is None and not self.busy:
                self._send(HEADER.pack(STOP, 0, 0))
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.log):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self.arrays = {}
        self.params, self.grads = [], []
        with contextlib.suppress(BufferError, OSError):
            self.buf.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


class ProcessParallel:
    """Runs each training step as ``n`` parts of the batch: the first here, the others in
    ``n - 1`` worker processes (see the module's docstring).

    The workers start in the background: until every one has said it is ready, steps run on
    threads (:class:`~cnnstep.train.parallel.DataParallel`, the same numbers), so a run never
    waits for them. ``capacity`` is the most rows a worker's part may have.
    """

    def __init__(self, model: Any, n: int, capacity: int,
                 pool: WorkerPool | None = None) -> None:
        if not model.built:
            raise ValueError("ProcessParallel needs a built model")
        self.model = model
        self.n = n
        self.local = model.replica()
        self.threads = DataParallel(model, n)
        self.layout = Layout(
            tuple(tuple(p.shape) for p in model.parameters()), tuple(model.input_shape),
            int(model.output_shape[-1]), max(1, capacity), model.dtype.name,
            tuple(tuple(a.shape) for a in model.state_arrays()),
            tuple(model.statistics_shapes()),
        )
        self.workers: list[Worker] = []
        self.pool = pool
        self.deadline = time.monotonic() + START_TIMEOUT
        self.state = "starting"  # then "ready", or "threads" for good
        try:
            config = model.get_config()
            self.key = json.dumps([config, self.layout.to_json(), worker_settings()],
                                  sort_keys=True)
            self.workers = pool.take(self.key, n - 1, IDLE_TIMEOUT / 2) if pool else []
            while len(self.workers) < n - 1:
                self.workers.append(Worker(config, self.layout))
        except (OSError, WorkerError) as exc:
            self._switch_to_threads(exc)

    def ready(self, wait: bool = False) -> bool:
        """Whether the workers are up (waiting for them with ``wait``); once one has failed,
        never."""
        if self.state == "starting":
            try:
                for w in self.workers:
                    if w.busy:
                        left = max(0.0, self.deadline - time.monotonic())
                        if not wait and left > 0 and not w.answered():
                            return False
                        w.wait(left)
                self.state = "ready"
            except WorkerError as exc:
                self._switch_to_threads(exc)
        return self.state == "ready"

    def _switch_to_threads(self, error: Exception) -> None:
        warnings.warn(f"{error}; going on with threads", RuntimeWarning, stacklevel=3)
        self._close_workers()
        self.state = "threads"

    def train_step(self, x: np.ndarray, y: np.ndarray,
                   optimizer: Any) -> tuple[float, np.ndarray]:
        if not self.ready():
            return self.threads.train_step(x, y, optimizer)
        m = len(y)
        parts = split_rows(m, self.n)
        params, state = self.model.parameters(), self.model.state_arrays()
        try:
            busy = []
            for w, (a, b) in zip(self.workers, parts[1:]):
                w.start(STEP, x[a:b], y[a:b], m, params, state)
                busy.append(w)
            a, b = parts[0]
            with blas_one_thread():  # as the workers (and the threads runner) do
                loss, logits = part_step(self.local, x[a:b], y[a:b], m)
            losses, all_logits = [loss * (b - a)], [logits]
            grads = self.local.gradients() if math.isfinite(loss) else None
            stats = self.local.statistics()
            for w, (a, b) in zip(busy, parts[1:]):
                w.wait()
                part_loss = float(w.arrays["sums"][0])
                losses.append(part_loss * (b - a))
                all_logits.append(w.arrays["logits"][: b - a].copy())
                stats = [s + ws for s, ws in zip(stats, w.stats)]
                if grads is not None and math.isfinite(part_loss):
                    grads = [g + wg for g, wg in zip(grads, w.grads)]
        except WorkerError as exc:  # this step again, on threads
            self._switch_to_threads(exc)
            return self.threads.train_step(x, y, optimizer)
        self.model.update_state(stats)
        total = sum(losses) / m
        if math.isfinite(total) and grads is not None:
            optimizer.step(params, grads)
        return total, np.concatenate(all_logits)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict:
        if not self.ready():
            return self.threads.evaluate(x, y)
        x = self.model.prepare_input(x)
        y = np.asarray(y, dtype=np.int64)
        size = max(1, min(self.layout.capacity, -(-len(y) // self.n)))
        pieces = [(i, min(i + size, len(y))) for i in range(0, len(y), size)]
        params, state = self.model.parameters(), self.model.state_arrays()
        loss_sum, correct = 0.0, 0
        try:
            for r in range(0, len(pieces), self.n):
                mine, *theirs = pieces[r:r + self.n]
                for w, (a, b) in zip(self.workers, theirs):
                    w.start(EVALUATE, x[a:b], y[a:b], b - a, params, state)
                a, b = mine
                with blas_one_thread():
                    result = self.local.evaluate(x[a:b], y[a:b], batch_size=size)
                loss_sum += result["loss"] * (b - a)
                correct += round(result["accuracy"] * (b - a))
                for w in self.workers[: len(theirs)]:
                    w.wait()
                    loss_sum += float(w.arrays["sums"][0])
                    correct += int(w.arrays["sums"][1])
        except WorkerError as exc:
            self._switch_to_threads(exc)
            return self.threads.evaluate(x, y)
        m = max(len(y), 1)
        return {"loss": loss_sum / m, "accuracy": correct / m}

    def _close_workers(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []

    def close(self) -> None:
        """End the run: its workers stop, or wait in the run's :class:`WorkerPool` (if it was
        given one) for the next run of the same model."""
        # ready and idle, or still starting (their "ready" is read by the next run)
        if self.pool is not None and (self.state == "starting" or (
                self.state == "ready" and not any(w.busy for w in self.workers))):
            self.pool.keep(self.key, self.workers)
            self.workers = []
        self._close_workers()
        self.threads.close()


__all__ = ["ProcessParallel", "Worker", "WorkerError", "close_idle_workers", "worker_settings"]
