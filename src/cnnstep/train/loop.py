"""The training loop: shuffled mini-batches, augmentation and exact resume; the rest is callbacks.

:func:`train` runs epochs of shuffled mini-batches and keeps its progress in a
:class:`TrainState`. The state (with the model, the optimizer and the model's random generator)
is everything needed to continue: a run interrupted after any batch and resumed from a checkpoint
gives the same weights as a run that was never interrupted. What happens around the steps —
learning-rate schedule, divergence stop, early stopping, time limit, progress bar, log lines,
checkpoints, Ctrl-C — is :mod:`cnnstep.train.callbacks`. :func:`cnnstep.train.fit` (what
``Sequential.fit`` calls) sets a run up and calls :func:`train`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnstep.nn.losses import predicted_classes
from cnnstep.train.callbacks import Callback, LearningRateSchedule, NonFiniteLoss
from cnnstep.train.parallel import blas_threads
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


def random_flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror each image left to right with probability 1/2.

    For photos, where a mirrored cat is still a cat and a mirrored hand shows the same count;
    not for digits or letters (:mod:`cnnstep.train.job.recipe` decides per kind of data).

    Parameters
    ----------
    x : ndarray of shape (m, n_H, n_W, n_C)
    rng : numpy.random.Generator
        One draw per image.

    Returns
    -------
    ndarray of shape (m, n_H, n_W, n_C), a new array
    """
    flip = rng.random(x.shape[0]) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, ::-1]
    return out


def augment(x: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """A training batch as ``config`` augments it: random shifts (``augment_shift``), then
    random horizontal flips (``augment_flip``). Draws nothing from ``rng`` for what is off, so
    a run without flips draws what it drew before flips existed."""
    x = random_shift(x, config.augment_shift, rng)
    return random_flip(x, rng) if config.augment_flip else x


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
    workers: Any = None,
) -> TrainState:
    """Train ``model`` until ``config.epochs`` epochs are complete or a callback ends the run.

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
    x_val, y_val : ndarray or None
        Evaluated after every epoch (``val_loss``, ``val_accuracy``).
    config : TrainConfig
    state : TrainState, optional
        Progress to continue from (resume); a fresh run when omitted.
    callbacks : sequence of Callback
        Progress, logs, checkpoints, Ctrl-C, early stopping (:mod:`cnnstep.train.callbacks`).
    workers : WorkerPool, bool or None
        Where worker processes go at the end (``make_runner``'s): by default they stop.

    Returns
    -------
    TrainState
        ``stopped`` says why the run ended before ``config.epochs`` (None if it did not).

    Raises
    ------
    TrainingInterruptedError
        On Ctrl-C, after every callback's ``on_interrupt`` (a checkpoint is saved there).
    NonFiniteLossError
        When a batch's loss is NaN, infinite or diverging (the last finite weights are kept).
    """
    state = state if state is not None else TrainState()
    x = np.asarray(x, dtype=model.dtype)
    y = np.asarray(y, dtype=np.int64)
    if x.shape[0] == 0:
        raise ValueError("no training examples")
    base_lr = config.lr if config.lr is not None else optimizer.lr
    run = Run(model, optimizer, config, state, math.ceil(x.shape[0] / config.batch_size), base_lr)
    hooks: list[Callback] = [LearningRateSchedule(config.schedule, base_lr), NonFiniteLoss(),
                             *callbacks]
    validation = (x_val, y_val) if x_val is not None and y_val is not None and len(x_val) else None
    # overflow in a diverging run is reported as a non-finite loss, not as warnings
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        runner = make_runner(model, config.threads, parallel=config.parallel,
                             batch_size=config.batch_size, steps=config.epochs * run.n_batches,
                             workers=workers)
        clock = _Clock()
        try:
            for cb in hooks:
                cb.on_train_begin(run)
            while state.epoch < config.epochs and state.stopped is None:
                _run_epoch(run, runner, hooks, x, y, validation, clock)
            run.completed = True
        except KeyboardInterrupt:
            state.seconds += clock.lap()
            for cb in hooks:
                cb.on_interrupt(run)
            raise TrainingInterruptedError(state) from None
        finally:
            for cb in hooks:
                cb.on_train_end(run)
            runner.close()
    return state


class _Clock:
    """Seconds since the last ``start``; 0 when not started (no epoch in progress)."""

    def __init__(self) -> None:
        self.t0: float | None = None

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        """Seconds since ``start``, and stop."""
        t0, self.t0 = self.t0, None
        return 0.0 if t0 is None else time.perf_counter() - t0


def _run_epoch(run: Run, runner: Any, hooks: list[Callback], x: np.ndarray, y: np.ndarray,
               validation: tuple[np.ndarray, np.ndarray] | None, clock: _Clock) -> None:
    """One epoch (or the rest of one, on resume): its batches, its validation, its record."""
    state, config, bs = run.state, run.config, run.config.batch_size
    rng = run.model.rng
    if state.batch == 0 or state.perm is None:
        state.batch, state.loss_sum, state.correct, state.seen = 0, 0.0, 0, 0
        state.seconds = 0.0
        state.perm = rng.permutation(x.shape[0])
    for cb in hooks:
        cb.on_epoch_begin(run)
    clock.start()
    for b in range(state.batch, run.n_batches):
        idx = state.perm[b * bs:(b + 1) * bs]
        xb = augment(x[idx], config, rng)
        yb = y[idx]
        for cb in hooks:
            cb.on_batch_begin(run)
        loss, logits = runner.train_step(xb, yb, run.optimizer)
        if math.isfinite(loss):
            state.loss_sum += loss * len(idx)
            state.correct += int((predicted_classes(logits) == yb).sum())
            state.seen += len(idx)
        state.batch, state.step = b + 1, state.step + 1
        for cb in hooks:
            cb.on_batch_end(run, loss)
        if run.stop_requested:
            raise KeyboardInterrupt
    scores = runner.evaluate(*validation) if validation is not None else None
    state.seconds += clock.lap()
    record = {
        "epoch": state.epoch + 1,
        "loss": state.loss_sum / max(state.seen, 1),
        "train_accuracy": state.correct / max(state.seen, 1),
        "val_loss": scores["loss"] if scores else None,
        "val_accuracy": scores["accuracy"] if scores else None,
        "lr": float(run.optimizer.lr),
        "seconds": state.seconds,
    }
    state.history.append(record)
    state.epoch, state.batch, state.perm, state.seconds = state.epoch + 1, 0, None, 0.0
    for cb in hooks:
        cb.on_epoch_end(run, record)
    if run.stop_requested:
        raise KeyboardInterrupt
