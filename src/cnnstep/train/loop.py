"""The training loop: shuffled mini-batches, augmentation and exact resume; the rest is callbacks.

:func:`train` runs epochs of shuffled mini-batches and keeps its progress in a
:class:`TrainState`. The state (with the model, the optimizer and the model's random generator)
is everything needed to continue: a run interrupted after any batch and resumed from a checkpoint
gives the same weights as a run that was never interrupted. What happens around the steps —
learning-rate schedule, divergence stop, progress bar, log lines, checkpoints, Ctrl-C — is
:mod:`cnnstep.train.callbacks`. :func:`fit` is what ``Sequential.fit`` calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnstep.nn.losses import predicted_classes
from cnnstep.train.callbacks import (
    Callback,
    EpochLog,
    LearningRateSchedule,
    NonFiniteLoss,
    ProgressBar,
)
from cnnstep.train.inputs import check_fit_inputs
from cnnstep.train.parallel import blas_threads, default_threads
from cnnstep.train.runners import make_runner
from cnnstep.train.state import Run, TrainConfig, TrainState


class TrainingInterruptedError(KeyboardInterrupt):
    """Raised by :func:`train` after Ctrl-C, once the checkpoint (if any) is written.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C keeps doing so; ``state`` holds the
    progress up to the last complete batch.
    """

    def __init__(self, state: TrainState) -> None:
        super().__init__(f"training interrupted in epoch {state.epoch + 1}")
        self.state = state


def random_shift(x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each image by a random whole-pixel offset in ``[-shift, shift]`` along both axes.

    Border pixels are repeated into the uncovered edge, which keeps a uniform background.

    Parameters
    ----------
    x : ndarray of shape (m, n_H, n_W, n_C)
    shift : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (m, n_H, n_W, n_C), a new array
    """
    if shift <= 0:
        return x
    m, n_H, n_W, _ = x.shape
    padded = np.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    offsets = rng.integers(0, 2 * shift + 1, size=(m, 2))
    out = np.empty_like(x)
    for i, (dy, dx) in enumerate(offsets):
        out[i] = padded[i, dy:dy + n_H, dx:dx + n_W]
    return out


def train(
    model: Any,
    optimizer: Any,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    config: TrainConfig,
    *,
    state: TrainState | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainState:
    """Train ``model`` until ``config.epochs`` epochs are complete.

    The learning-rate schedule of ``config`` and the divergence stop
    (:class:`~cnnstep.train.callbacks.NonFiniteLoss`) always apply; ``callbacks`` come after
    them. NumPy's BLAS runs on one thread meanwhile (:func:`~cnnstep.train.parallel.blas_threads`);
    ``config.threads`` threads share each batch.

    Parameters
    ----------
    model : Sequential
        Built; its ``rng`` drives shuffling and augmentation.
    optimizer : Optimizer
    x, y : ndarray of shape (m, n_H, n_W, n_C), ndarray of shape (m,)
        Training data.
    x_val, y_val : ndarray or None
        Evaluated after every epoch (``test_accuracy``).
    config : TrainConfig
    state : TrainState, optional
        Progress to continue from (resume); a fresh run when omitted.
    callbacks : sequence of Callback
        Progress bar, log lines, checkpoints, Ctrl-C handling, ... (:mod:`cnnstep.train.callbacks`).

    Returns
    -------
    TrainState

    Raises
    ------
    TrainingInterruptedError
        On Ctrl-C (or a callback's ``KeyboardInterrupt``), after every callback's
        ``on_interrupt`` (:class:`~cnnstep.train.callbacks.Checkpoint` saves one there).
    NonFiniteLossError
        When a batch's loss is NaN or infinite or diverges; the weights keep their last finite
        values and no checkpoint of the failed epoch is written.
    """
    state = state if state is not None else TrainState()
    x = np.asarray(x, dtype=model.dtype)
    y = np.asarray(y, dtype=np.int64)
    m, bs = x.shape[0], config.batch_size
    if m == 0:
        raise ValueError("no training examples")
    base_lr = config.lr if config.lr is not None else optimizer.lr
    run = Run(model, optimizer, config, state, math.ceil(m / bs), base_lr)
    hooks: list[Callback] = [LearningRateSchedule(config.schedule, base_lr), NonFiniteLoss(),
                             *callbacks]
    rng = model.rng
    t0: float | None = None
    # overflow in a diverging run is reported as a non-finite loss, not as warnings
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        runner = make_runner(model, config.threads, parallel=config.parallel,
                             batch_size=bs, steps=config.epochs * run.n_batches)
        try:
            for cb in hooks:
                cb.on_train_begin(run)
            while state.epoch < config.epochs:
                if state.batch == 0 or state.perm is None:
                    state.batch, state.loss_sum, state.correct, state.seen = 0, 0.0, 0, 0
                    state.seconds = 0.0
                    state.perm = rng.permutation(m)
                for cb in hooks:
                    cb.on_epoch_begin(run)
                t0 = time.perf_counter()
                for b in range(state.batch, run.n_batches):
                    idx = state.perm[b * bs:(b + 1) * bs]
                    xb = random_shift(x[idx], config.augment_shift, rng)
                    yb = y[idx]
                    for cb in hooks:
                        cb.on_batch_begin(run)
                    loss, logits = runner.train_step(xb, yb, optimizer)
                    if math.isfinite(loss):
                        state.loss_sum += loss * len(idx)
                        state.correct += int((predicted_classes(logits) == yb).sum())
                        state.seen += len(idx)
                    state.batch, state.step = b + 1, state.step + 1
                    for cb in hooks:
                        cb.on_batch_end(run, loss)
                    if run.stop_requested:
                        raise KeyboardInterrupt
                test_acc = None
                if x_val is not None and y_val is not None and len(x_val):
                    test_acc = runner.evaluate(x_val, y_val)["accuracy"]
                state.seconds += time.perf_counter() - t0
                t0 = None
                record = {
                    "epoch": state.epoch + 1,
                    "loss": state.loss_sum / state.seen,
                    "train_accuracy": state.correct / state.seen,
                    "test_accuracy": test_acc,
                    "seconds": state.seconds,
                }
                state.history.append(record)
                state.epoch, state.batch, state.perm = state.epoch + 1, 0, None
                for cb in hooks:
                    cb.on_epoch_end(run, record)
                if run.stop_requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if t0 is not None:
                state.seconds += time.perf_counter() - t0
            for cb in hooks:
                cb.on_interrupt(run)
            raise TrainingInterruptedError(state) from None
        finally:
            for cb in hooks:
                cb.on_train_end(run)
            runner.close()
    return state


def _n_outputs(model: Any) -> int | None:
    """The number of classes a built model predicts (2 for one output); None before it is
    built."""
    shape = getattr(model, "output_shape", None)
    return max(int(shape[-1]), 2) if shape else None


def fit(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    optimizer: Any = None,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    schedule: str = "constant",
    augment_shift: int = 0,
    threads: int | None = None,
    parallel: str = "auto",
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> list[dict]:
    """Train ``model`` on ``(x, y)``; returns one dict of metrics per epoch.

    ``model.fit(x, y, ...)`` calls this function. It runs the same loop, with the same thread
    settings, as ``cnnstep train``.

    Parameters
    ----------
    model : Sequential
    x : ndarray of shape (m, n_H, n_W, n_C)
        Float pixels, no NaN; ``uint8`` is refused (divide by 255 first).
    y : ndarray of shape (m,) of int, or of shape (m, K) one-hot
        Class indices in ``0..K-1`` for a model with K outputs (checked:
        :func:`cnnstep.train.inputs.check_fit_inputs`).
    epochs, batch_size : int
    optimizer : Optimizer, default Adam(lr=1e-3)
    validation_data : (x_val, y_val), optional
        Evaluated after each epoch (``test_accuracy`` in the result).
    schedule : str
        A name of :data:`cnnstep.nn.schedules.SCHEDULES`: ``"constant"`` or ``"cosine"`` (decay
        to 0 over the run).
    augment_shift : int
        Shift each training image by up to this many pixels at random (0: no augmentation).
    threads : int, optional
        Split each batch between this many threads (models without dropout); default: the
        CPUs this process may use, at most 4 (as ``cnnstep train``).
    parallel : {"auto", "threads", "processes"}
        Where the parts beyond the first run: threads, or worker processes (faster: no GIL;
        POSIX only); ``"auto"``: processes for runs of 10 steps or more
        (:func:`cnnstep.train.runners.make_runner`).
    progress : bool
        Show a progress bar per epoch (needs tqdm; only on a terminal).
    log : callable, optional
        Called with a one-line summary after each epoch.
    callbacks : sequence of Callback
        More callbacks (:mod:`cnnstep.train.callbacks`), run after those above.

    Returns
    -------
    list of dict
        ``epoch``, ``loss``, ``train_accuracy``, ``test_accuracy`` (None without
        validation data), ``seconds``.
    """
    from cnnstep.nn.optimizers import Adam

    x, y = check_fit_inputs(x, y, None)
    x = model.prepare_input(x)  # builds an unbuilt model: its number of outputs is known now
    n_out = _n_outputs(model)
    x, y = check_fit_inputs(x, y, n_out)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        validation_data = check_fit_inputs(*validation_data, n_out, x_name="validation_data[0]",
                                           y_name="validation_data[1]")
        validation_data = (model.prepare_input(validation_data[0]), validation_data[1])
    optimizer = optimizer if optimizer is not None else Adam(1e-3)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, schedule=schedule,
                      augment_shift=augment_shift,
                      threads=default_threads() if threads is None else threads,
                      parallel=parallel)
    x_val, y_val = validation_data if validation_data is not None else (None, None)
    hooks: list[Callback] = [ProgressBar()] if progress else []
    if log is not None:
        hooks.append(EpochLog(log))
    state = train(model, optimizer, x, y, x_val, y_val, cfg, callbacks=[*hooks, *callbacks])
    return state.history
