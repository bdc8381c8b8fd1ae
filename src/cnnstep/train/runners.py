"""Which runner trains a model: one thread, threads, or worker processes.

:func:`make_runner` chooses. Each runner has ``train_step(x, y, optimizer) -> (loss, logits)``,
``evaluate(x, y) -> {"loss", "accuracy"}`` and ``close()``.
"""

from __future__ import annotations

import math
import os
from typing import Any

from cnnstep.train.parallel import DataParallel, Serial
from cnnstep.train.pool import WorkerPool, active_pool, kept_workers
from cnnstep.train.processes import ProcessParallel

#: What ``parallel`` may be.
PARALLEL_MODES = ("auto", "threads", "processes")
#: With ``parallel="auto"``, runs of at least this many steps use worker processes. They start
#: in the background (threads meanwhile), but a start costs a few tenths of a second of CPU (a
#: Python with NumPy and cnnstep), which the first steps' second thread has to share.
PROCESS_MIN_STEPS = 10
#: A worker's part holds at least this many rows, within :data:`EVAL_BYTES` of input: evaluation
#: goes in pieces of that size, and a piece of a training batch (32 rows) is slower to exchange.
EVAL_ROWS = 256
EVAL_BYTES = 8 * 2**20


def check_parallel(parallel: Any) -> str:
    """``parallel`` if it is one of :data:`PARALLEL_MODES`, else a ``ValueError``."""
    if parallel not in PARALLEL_MODES:
        raise ValueError(f"parallel must be one of {', '.join(PARALLEL_MODES)}, "
                         f"got {parallel!r}")
    return str(parallel)


def make_runner(
    model: Any, threads: int = 1, *, parallel: str = "auto", batch_size: int = 64,
    steps: int = 0, workers: WorkerPool | bool | None = None,
) -> Serial | DataParallel | ProcessParallel:
    """The runner for ``threads`` parts of each batch.

    Parameters
    ----------
    model : Sequential
        Built.
    threads : int
        Parts per batch. One part, or a model with a layer whose ``serial_training`` is set
        (dropout: its draws must stay in order), runs in the calling thread alone.
    parallel : {"auto", "threads", "processes"}
        Where the other parts run: threads of this process
        (:class:`~cnnstep.train.parallel.DataParallel`) or worker processes
        (:class:`~cnnstep.train.processes.ProcessParallel`, POSIX only). ``"auto"`` takes
        processes for a run of at least :data:`PROCESS_MIN_STEPS` ``steps`` of a model made of
        cnnstep's own layers (a worker rebuilds the model by their names). Steps run on
        threads until the processes are up, and for good (with a warning) if they cannot start
        or stop.
    batch_size : int
        The largest batch a step will get (sizes the processes' shared memory).
    steps : int
        Training steps the run will take (for ``"auto"``).
    workers : WorkerPool, bool or None
        Where worker processes are kept when the run ends. ``None`` (default): in the pool of
        an open ``with WorkerPool():`` block, else nowhere: they stop with the run
        (``close()``); ``False``: nowhere; a :class:`~cnnstep.train.pool.WorkerPool` the caller
        closes: there, for the next run of the same model that is given it; ``True``: in the
        process-wide :func:`~cnnstep.train.pool.kept_workers`.
    """
    check_parallel(parallel)
    if threads <= 1 or any(layer.serial_training for layer in model.layers):
        return Serial(model)
    # a worker rebuilds the model from its config: layers defined outside cnnstep would not be
    # registered there, so "auto" leaves such models on threads
    own_layers = all(type(layer).__module__.startswith("cnnstep.") for layer in model.layers)
    wanted = parallel == "processes" or (
        parallel == "auto" and steps >= PROCESS_MIN_STEPS and own_layers)
    if wanted and os.name == "posix" and model.built:
        example = math.prod(model.input_shape) * model.dtype.itemsize
        rows = max(-(-batch_size // threads), min(EVAL_ROWS, EVAL_BYTES // example))
        pool = (kept_workers() if workers is True else active_pool() if workers is None
                else workers or None)
        return ProcessParallel(model, threads, rows, pool)
    return DataParallel(model, threads)
