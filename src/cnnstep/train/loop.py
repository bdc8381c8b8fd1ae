"""The training loop: mini-batches, learning-rate schedule, augmentation, Ctrl-C and resume.

:func:`train` runs epochs of shuffled mini-batches and keeps its progress in a
:class:`TrainState`. The state (with the model, the optimizer and the model's random generator)
is everything needed to continue: a run interrupted after any batch and resumed from a checkpoint
gives the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnstep.errors import UserError
from cnnstep.nn.losses import softmax_cross_entropy
from cnnstep.nn.optimizers import cosine_lr

SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Settings of a training run.

    Attributes
    ----------
    epochs : int
        Total number of epochs of the run (a resumed run stops at this count too).
    batch_size : int
    schedule : {"cosine", "constant"}
        ``cosine`` decays the learning rate from ``lr`` to 0 over the whole run.
    augment_shift : int
        Shift each training image by a random offset in ``[-shift, shift]`` pixels per axis.
    lr : float, optional
        Base learning rate; the optimizer's own ``lr`` when omitted.
    threads : int
        Split every batch between this many threads (NumPy releases the GIL inside its array
        operations, so the parts run in parallel). Models with dropout use one thread, so that
        their random draws stay in a fixed order. Results depend on the thread count only
        through rounding.
    """

    epochs: int = 10
    batch_size: int = 64
    schedule: str = "cosine"
    augment_shift: int = 0
    lr: float | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.augment_shift < 0:
            raise ValueError(f"augment_shift must be >= 0, got {self.augment_shift}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


@dataclass
class TrainState:
    """Progress of a run: completed epochs, position in the current epoch, metrics so far."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch (0: it has not started)
    step: int = 0  # batches done in the whole run
    history: list[dict] = field(default_factory=list)
    loss_sum: float = 0.0  # of the current epoch, so far
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    perm: np.ndarray | None = None  # shuffling order of the current epoch

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in
                ("epoch", "batch", "step", "history", "loss_sum", "correct", "seen", "seconds")}

    @classmethod
    def from_json(cls, data: dict, perm: np.ndarray | None = None) -> TrainState:
        state = cls(**{k: data[k] for k in
                       ("epoch", "batch", "step", "history", "loss_sum", "correct", "seen",
                        "seconds")})
        state.perm = perm if state.batch else None
        return state


class TrainingInterruptedError(KeyboardInterrupt):
    """Raised by :func:`train` after Ctrl-C, once the checkpoint (if any) is written.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C keeps doing so; ``state`` holds the
    progress up to the last complete batch.
    """

    def __init__(self, state: TrainState) -> None:
        super().__init__(f"training interrupted in epoch {state.epoch + 1}")
        self.state = state


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite: the learning rate is usually too high."""

    def __init__(self, loss: float, epoch: int, batch: int, n_batches: int, lr: float) -> None:
        self.loss, self.epoch, self.batch, self.lr = loss, epoch, batch, lr
        super().__init__(
            f"the loss became {loss} in epoch {epoch} (batch {batch}/{n_batches}); training "
            f"stopped. Lower the learning rate (it is {lr:g}; try --lr {lr / 10:g})"
        )


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


def _part_step(model, x: np.ndarray, y: np.ndarray, m: int) -> tuple[float, np.ndarray]:
    # np.errstate is per thread: quiet overflow here too, as train() does in the main thread
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logits = model.forward(x, training=True)
        loss, dlogits, _ = softmax_cross_entropy(logits, y)
        if math.isfinite(loss):
            dlogits *= dlogits.dtype.type(len(y) / m)  # this part's share of the batch mean
            model.backward(dlogits, need_input_grad=False)
    return loss, logits


class _DataParallel:
    """Runs each training step as ``n`` parts of the batch in ``n`` threads.

    Each thread has a :meth:`~cnnstep.model.Sequential.replica` of the model (shared parameters,
    own caches and gradients); the parts' gradients are summed and one optimizer step is taken.
    """

    def __init__(self, model, n: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.model = model
        self.replicas = [model.replica() for _ in range(n)]
        self.pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="cnnstep-train")

    def _split(self, m: int) -> list[tuple[int, int]]:
        bounds = np.linspace(0, m, len(self.replicas) + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def train_step(self, x, y, optimizer) -> tuple[float, np.ndarray]:
        m = len(y)
        parts = self._split(m)
        futures = [self.pool.submit(_part_step, r, x[a:b], y[a:b], m)
                   for r, (a, b) in zip(self.replicas[1:], parts[1:])]
        a, b = parts[0]
        results = [_part_step(self.replicas[0], x[a:b], y[a:b], m)]
        results += [f.result() for f in futures]
        loss = sum(part_loss * (b - a) for (part_loss, _), (a, b) in zip(results, parts)) / m
        logits = np.concatenate([r[1] for r in results])
        if math.isfinite(loss):
            used = self.replicas[:len(parts)]
            grads = [sum(g) for g in zip(*(r.gradients() for r in used))]
            optimizer.step(self.model.parameters(), grads)
        return loss, logits

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict:
        parts = self._split(len(y))
        futures = [self.pool.submit(r.evaluate, x[a:b], y[a:b])
                   for r, (a, b) in zip(self.replicas[1:], parts[1:])]
        a, b = parts[0]
        results = [self.replicas[0].evaluate(x[a:b], y[a:b])] + [f.result() for f in futures]
        m = len(y)
        return {k: sum(r[k] * (b - a) for r, (a, b) in zip(results, parts)) / m
                for k in ("loss", "accuracy")}

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class _Serial:
    def __init__(self, model) -> None:
        self.model = model

    def train_step(self, x, y, optimizer):
        return self.model.train_step(x, y, optimizer)

    def evaluate(self, x, y):
        return self.model.evaluate(x, y)

    def close(self) -> None:
        pass


def make_runner(model, threads: int = 1):
    """An object with ``train_step(x, y, optimizer) -> (loss, logits)``, ``evaluate(x, y)`` and
    ``close()`` that splits batches between ``threads`` threads (one thread for models with
    dropout, whose random draws must stay in order)."""
    if threads > 1 and not any(layer.serial_training for layer in model.layers):
        return _DataParallel(model, threads)
    return _Serial(model)


class _StopRequest:
    """Turns the first Ctrl-C into a flag checked between batches (so no step is cut in half);
    a second Ctrl-C interrupts at once."""

    def __init__(self, enabled: bool) -> None:
        self.requested = False
        self._old = None
        self.enabled = enabled and threading.current_thread() is threading.main_thread()

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopRequest:
        if self.enabled:
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._old)


def _progress_bar(progress: bool, total: int, initial: int, desc: str):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    # disable=None: no bar when stderr is not a terminal (logs, CI)
    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False,
                disable=None, file=sys.stderr, dynamic_ncols=True)


def format_epoch(record: dict, epochs: int) -> str:
    """One summary line for an epoch's metrics."""
    test = record.get("test_accuracy")
    test_part = f"  test acc {test:.2%}" if test is not None else ""
    return (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['loss']:.4f}  "
            f"train acc {record['train_accuracy']:.2%}{test_part}  {record['seconds']:.1f} s")


def train(
    model,
    optimizer,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    config: TrainConfig,
    *,
    state: TrainState | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    checkpoint: Callable[[TrainState], None] | None = None,
    handle_sigint: bool = True,
    on_batch_end: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Train ``model`` until ``config.epochs`` epochs are complete.

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
    progress : bool
        Show a tqdm progress bar per epoch (only on a terminal).
    log : callable or None
        Receives one summary line per epoch.
    checkpoint : callable, optional
        Called with the state after every epoch and on Ctrl-C, to save it.
    handle_sigint : bool
        Make Ctrl-C stop cleanly after the current batch (main thread only).
    on_batch_end : callable, optional
        Called with the state after every batch.

    Returns
    -------
    TrainState

    Raises
    ------
    TrainingInterruptedError
        On Ctrl-C, after ``checkpoint`` has saved the state.
    NonFiniteLossError
        When a batch's loss is NaN or infinite; the weights keep their last finite values and
        ``checkpoint`` is not called, so the last good checkpoint stays.
    """
    state = state if state is not None else TrainState()
    x = np.asarray(x, dtype=model.dtype)
    y = np.asarray(y, dtype=np.int64)
    m, bs = x.shape[0], config.batch_size
    if m == 0:
        raise ValueError("no training examples")
    n_batches = math.ceil(m / bs)
    total_steps = config.epochs * n_batches
    base_lr = config.lr if config.lr is not None else optimizer.lr
    rng = model.rng
    runner = make_runner(model, config.threads)
    bar = None
    t0 = None
    # overflow in a diverging run is reported as a non-finite loss, not as warnings
    with _StopRequest(handle_sigint) as stop, np.errstate(over="ignore", invalid="ignore",
                                                          divide="ignore"):
        try:
            while state.epoch < config.epochs:
                epoch = state.epoch + 1
                if state.batch == 0 or state.perm is None:
                    state.batch, state.loss_sum, state.correct, state.seen = 0, 0.0, 0, 0
                    state.seconds = 0.0
                    state.perm = rng.permutation(m)
                bar = _progress_bar(progress, n_batches, state.batch,
                                    f"epoch {epoch}/{config.epochs}")
                t0 = time.perf_counter()
                for b in range(state.batch, n_batches):
                    idx = state.perm[b * bs:(b + 1) * bs]
                    xb = random_shift(x[idx], config.augment_shift, rng)
                    yb = y[idx]
                    if config.schedule == "cosine":
                        optimizer.lr = cosine_lr(base_lr, state.step, total_steps)
                    else:
                        optimizer.lr = base_lr
                    loss, logits = runner.train_step(xb, yb, optimizer)
                    if not math.isfinite(loss):
                        raise NonFiniteLossError(loss, epoch, b + 1, n_batches, base_lr)
                    state.loss_sum += loss * len(idx)
                    state.correct += int((logits.argmax(axis=1) == yb).sum())
                    state.seen += len(idx)
                    state.batch, state.step = b + 1, state.step + 1
                    if bar is not None:
                        bar.update(1)
                        if b % 8 == 0 or b + 1 == n_batches:
                            bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}",
                                            acc=f"{state.correct / state.seen:.3f}",
                                            refresh=False)
                    if on_batch_end is not None:
                        on_batch_end(state)
                    if stop.requested:
                        raise KeyboardInterrupt
                test_acc = None
                if x_val is not None and len(x_val):
                    test_acc = runner.evaluate(x_val, y_val)["accuracy"]
                state.seconds += time.perf_counter() - t0
                t0 = None
                if bar is not None:
                    bar.close()
                    bar = None
                record = {
                    "epoch": epoch,
                    "loss": state.loss_sum / state.seen,
                    "train_accuracy": state.correct / state.seen,
                    "test_accuracy": test_acc,
                    "seconds": state.seconds,
                }
                state.history.append(record)
                state.epoch, state.batch, state.perm = epoch, 0, None
                if log is not None:
                    log(format_epoch(record, config.epochs))
                if checkpoint is not None:
                    checkpoint(state)
                if stop.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if t0 is not None:
                state.seconds += time.perf_counter() - t0
            if bar is not None:
                bar.close()
            if checkpoint is not None:
                checkpoint(state)
            raise TrainingInterruptedError(state) from None
        except BaseException:
            if bar is not None:
                bar.close()
            raise
        finally:
            runner.close()
    return state


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
    threads: int = 1,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train ``model`` on ``(x, y)``; returns one dict of metrics per epoch.

    ``model.fit(x, y, ...)`` calls this function.

    Parameters
    ----------
    model : Sequential
    x : ndarray of shape (m, n_H, n_W, n_C)
    y : ndarray of shape (m,), int
    epochs, batch_size : int
    optimizer : Optimizer, default Adam(lr=1e-3)
    validation_data : (x_val, y_val), optional
        Evaluated after each epoch (``test_accuracy`` in the result).
    schedule : {"constant", "cosine"}
        Learning rate per step: constant, or cosine decay to 0 over the run.
    augment_shift : int
        Shift each training image by up to this many pixels at random (0: no augmentation).
    threads : int
        Split each batch between this many threads (models without dropout).
    progress : bool
        Show a progress bar per epoch (needs tqdm).
    log : callable, optional
        Called with a one-line summary after each epoch.

    Returns
    -------
    list of dict
        ``epoch``, ``loss``, ``train_accuracy``, ``test_accuracy`` (None without
        validation data), ``seconds``.
    """
    from cnnstep.nn.optimizers import Adam

    x = model.prepare_input(x)
    optimizer = optimizer if optimizer is not None else Adam(1e-3)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, schedule=schedule,
                      augment_shift=augment_shift, threads=threads)
    x_val, y_val = validation_data if validation_data is not None else (None, None)
    state = train(model, optimizer, x, y, x_val, y_val, cfg, progress=progress, log=log,
                  handle_sigint=False)
    return state.history
