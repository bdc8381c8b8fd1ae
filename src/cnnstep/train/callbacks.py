"""Callbacks: what happens around the training loop, kept out of it.

The loop (:func:`cnnstep.train.loop.train`) calls each callback's hooks in order:
``on_train_begin(run)``, then per epoch ``on_epoch_begin(run)``, per batch ``on_batch_begin(run)``
and ``on_batch_end(run, loss)``, ``on_epoch_end(run, record)``; ``on_interrupt(run)`` on Ctrl-C
and ``on_train_end(run)`` always, last. ``run`` is the :class:`~cnnstep.train.state.Run` (model,
optimizer, config, state). A callback stops the run by raising (:class:`NonFiniteLoss` raises
:class:`NonFiniteLossError`), by setting ``run.stop_requested`` (an interruption, checked after
every batch) or by setting ``run.state.stopped`` to the reason (the run ends normally after the
epoch: :class:`EarlyStopping`, :class:`TimeLimit`). What a callback keeps between epochs
lives in ``run.state.extra`` and ``run.state.arrays``, so that it is saved in checkpoints.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from cnnstep.errors import UserError
from cnnstep.nn.layers.base import positive_int
from cnnstep.nn.schedules import get_schedule
from cnnstep.train.state import Run, TrainState


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, run: Run) -> None:
        """Before the first batch (of a fresh or a resumed run)."""

    def on_epoch_begin(self, run: Run) -> None:
        """Before the first batch of an epoch (``run.state.batch`` may be > 0 on resume)."""

    def on_batch_begin(self, run: Run) -> None:
        """Before each training step."""

    def on_batch_end(self, run: Run, loss: float) -> None:
        """After each training step; ``loss`` is the batch's mean loss."""

    def on_epoch_end(self, run: Run, record: dict) -> None:
        """After an epoch; ``record`` is what was appended to ``run.state.history``."""

    def on_interrupt(self, run: Run) -> None:
        """On Ctrl-C, after the current batch."""

    def on_train_end(self, run: Run) -> None:
        """Last, however the run ends."""


class LearningRateSchedule(Callback):
    """Sets the optimizer's learning rate before every step from a named schedule.

    Parameters
    ----------
    schedule : str
        A name of :data:`cnnstep.nn.schedules.SCHEDULES` (``"cosine"``, ``"constant"``).
    base_lr : float, optional
        The optimizer's own ``lr`` when omitted.
    """

    def __init__(self, schedule: str, base_lr: float | None = None) -> None:
        self.fn = get_schedule(schedule)
        self.base_lr = base_lr

    def on_train_begin(self, run: Run) -> None:
        if self.base_lr is None:
            self.base_lr = run.optimizer.lr

    def on_batch_begin(self, run: Run) -> None:
        assert self.base_lr is not None
        run.optimizer.lr = self.fn(self.base_lr, run.state.step,
                                   run.total_steps) * run.state.lr_scale


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite, or grew by orders of magnitude past its first value."""

    def __init__(self, loss: float, epoch: int, batch: int, n_batches: int, lr: float,
                 reason: str = "") -> None:
        self.loss, self.epoch, self.batch, self.lr = loss, epoch, batch, lr
        #: a tenth of ``lr``, rounded to one significant digit
        self.suggested_lr = _lower(lr)
        #: what happened and where, without the remedy
        self.what = (f"{reason or f'the loss became {loss}'} in epoch {epoch} "
                     f"(batch {batch}/{n_batches}); training stopped")
        super().__init__(f"{self.what}. Lower the learning rate (it is {lr:g}; try "
                         f"{self.suggested_lr:g})")


def _lower(lr: float) -> float:
    """A tenth of ``lr``, rounded to one significant digit (``1e6`` -> ``1e5``)."""
    return float(f"{lr / 10:.0e}")


class NonFiniteLoss(Callback):
    """Stops the run when a batch's loss is NaN or infinite, or grows past ``factor`` times the
    first batch's loss (a diverging run); the weights keep their last finite values, and no
    checkpoint is written for the failed epoch.

    Parameters
    ----------
    factor : float, default 1e4
        How far above the first loss counts as diverging.
    """

    def __init__(self, factor: float = 1e4) -> None:
        self.factor = factor
        self.first: float | None = None

    def on_batch_end(self, run: Run, loss: float) -> None:
        state = run.state
        if not math.isfinite(loss):
            raise NonFiniteLossError(loss, state.epoch + 1, state.batch, run.n_batches,
                                     run.base_lr)
        if self.first is None:
            self.first = max(loss, 1e-3)
        elif loss > self.factor * self.first:
            raise NonFiniteLossError(
                loss, state.epoch + 1, state.batch, run.n_batches, run.base_lr,
                reason=f"the loss grew from {self.first:.3g} to {loss:.3g}")


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr (only on a terminal; nothing without tqdm)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_epoch_begin(self, run: Run) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        # disable=None: no bar when stderr is not a terminal (logs, CI)
        self.bar = tqdm(total=run.n_batches, initial=run.state.batch,
                        desc=f"epoch {run.state.epoch + 1}/{run.config.epochs}", unit="batch",
                        leave=False, disable=None, file=sys.stderr, dynamic_ncols=True)

    def on_batch_end(self, run: Run, loss: float) -> None:
        if self.bar is None:
            return
        st = run.state
        self.bar.update(1)
        if st.batch % 8 == 1 or st.batch == run.n_batches:
            self.bar.set_postfix(loss=f"{st.loss_sum / st.seen:.4f}",
                                 acc=f"{st.correct / st.seen:.3f}", refresh=False)

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self._close()

    def on_train_end(self, run: Run) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_epoch(record: dict, epochs: int) -> str:
    """One summary line for an epoch's metrics (``val_accuracy``; ``test_accuracy`` in records
    written before it was named so)."""
    val = record.get("val_accuracy", record.get("test_accuracy"))
    val_part = f"  val acc {val:.2%}" if val is not None else ""
    return (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['loss']:.4f}  "
            f"train acc {record['train_accuracy']:.2%}{val_part}  {record['seconds']:.1f} s")


class EpochLog(Callback):
    """Passes one summary line per epoch to ``log`` (``print`` by default)."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.log(format_epoch(record, run.config.epochs))


class Checkpoint(Callback):
    """Calls ``save(state)`` after every epoch and on Ctrl-C, so a run can be resumed
    (:func:`cnnstep.train.checkpoint.checkpoint_saver` writes the checkpoint file)."""

    def __init__(self, save: Callable[[TrainState], None]) -> None:
        self.save = save

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.save(run.state)

    def on_interrupt(self, run: Run) -> None:
        self.save(run.state)


#: How much lower ``val_loss`` must be to count as better at the same ``val_accuracy`` (a
#: fraction of the best): a loss that creeps down on a saturated validation part is no reason
#: to go on.
MIN_LOSS_GAIN = 0.01


def is_better(record: dict, best: dict | None) -> bool:
    """Whether an epoch's validation result beats ``best``: a higher ``val_accuracy``, or the
    same with a ``val_loss`` lower by :data:`MIN_LOSS_GAIN` of it (on a small validation part
    many epochs tie on accuracy)."""
    if best is None:
        return True
    acc, best_acc = record["val_accuracy"], best["val_accuracy"]
    gain = best["val_loss"] - record["val_loss"]
    return bool(acc > best_acc or (acc == best_acc and gain > MIN_LOSS_GAIN * best["val_loss"]))


def smoothed(history: list[dict], record: dict, smoothing: int) -> dict:
    """``record`` with its ``val_accuracy`` and ``val_loss`` replaced by their means over the
    last ``smoothing`` epochs of ``history`` (which ends with ``record``; fewer at the start).

    A validation part of a few dozen images moves its accuracy by whole images from one epoch
    to the next: one lucky epoch is a poor choice of weights to keep, a good stretch of
    epochs a better one."""
    if smoothing <= 1:
        return record
    window = [h for h in history[-smoothing:] if h.get("val_accuracy") is not None]
    if not window or window[-1] is not record:
        window = [*window, record][-smoothing:]
    return {**record,
            "val_accuracy": sum(h["val_accuracy"] for h in window) / len(window),
            "val_loss": sum(h["val_loss"] for h in window) / len(window)}


class EarlyStopping(Callback):
    """Ends the run when the validation accuracy has not improved for ``patience`` epochs and
    puts back the weights of the best epoch (:func:`is_better`), as Keras's
    ``EarlyStopping(restore_best_weights=True)``.

    With ``smoothing`` above 1 an epoch is judged by the mean validation accuracy (and loss)
    of the last ``smoothing`` epochs (:func:`smoothed`), and the best is the last epoch of
    the best stretch. Its progress (``run.state.extra["early_stopping"]``: best epoch, its
    metrics, epochs waited) and the best weights (``run.state.arrays["best/<name>"]``) are part
    of the state, so a resumed run continues them. Needs validation data.
    """

    key = "early_stopping"

    def __init__(self, patience: int = 10, restore_best_weights: bool = True,
                 smoothing: int = 1) -> None:
        positive_int(patience, "patience")
        self.patience = patience
        self.restore = restore_best_weights
        self.smoothing = positive_int(smoothing, "smoothing")

    def on_epoch_end(self, run: Run, record: dict) -> None:
        if record.get("val_accuracy") is None:
            raise ValueError("EarlyStopping needs validation data (validation_data or "
                             "validation_split)")
        record = smoothed(run.state.history, record, self.smoothing)
        kept = run.state.extra.get(self.key)
        best = kept["best"] if kept else None
        if is_better(record, best):
            best = {k: record[k] for k in ("epoch", "val_accuracy", "val_loss")}
            wait = 0
            if self.restore:
                for name, arr in run.model.named_arrays().items():
                    run.state.arrays[f"best/{name}"] = arr.copy()
        else:
            wait = (kept["wait"] if kept else 0) + 1
        run.state.extra[self.key] = {"best": best, "wait": wait}
        if wait >= self.patience:
            mean = f" (mean of {self.smoothing} epochs)" if self.smoothing > 1 else ""
            run.state.stopped = (f"no better validation accuracy{mean} for {self.patience} "
                                 "epochs")

    def on_train_end(self, run: Run) -> None:
        # interrupted or failed: the weights stay those of the last step (a resumed run
        # continues from them)
        if self.restore and run.completed:
            restore_best(run.model, run.state)


def restore_best(model: Any, state: TrainState) -> None:
    """Put back the best epoch's weights kept by :class:`EarlyStopping` (if any)."""
    for name, arr in model.named_arrays().items():
        kept = state.arrays.get(f"best/{name}")
        if kept is not None:
            arr[...] = kept


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when the validation result (as
    :func:`is_better` ranks it, :func:`smoothed` over ``smoothing`` epochs) has not improved for
    ``patience`` epochs; not below ``min_scale`` times the scheduled rate. Its scale is
    ``run.state.lr_scale``."""

    key = "reduce_lr"

    def __init__(self, patience: int = 5, factor: float = 0.5, min_scale: float = 1 / 64,
                 smoothing: int = 1) -> None:
        positive_int(patience, "patience")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must lie in (0, 1), got {factor!r}")
        self.patience, self.factor, self.min_scale = patience, factor, min_scale
        self.smoothing = positive_int(smoothing, "smoothing")

    def on_epoch_end(self, run: Run, record: dict) -> None:
        if record.get("val_accuracy") is None:
            return
        record = smoothed(run.state.history, record, self.smoothing)
        kept = run.state.extra.get(self.key, {"best": None, "wait": 0})
        if is_better(record, kept["best"]):
            kept = {"best": {k: record[k] for k in ("val_accuracy", "val_loss")}, "wait": 0}
        else:
            kept = {"best": kept["best"], "wait": kept["wait"] + 1}
            if kept["wait"] >= self.patience:
                run.state.lr_scale = max(self.min_scale, run.state.lr_scale * self.factor)
                kept["wait"] = 0
        run.state.extra[self.key] = kept


class TimeLimit(Callback):
    """Ends the run after the epoch past which another one, as long as the last, would bring
    its training time (resumed parts included) over ``seconds``."""

    def __init__(self, seconds: float) -> None:
        if not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds must be a positive number, got {seconds!r}")
        self.seconds = float(seconds)

    def on_epoch_end(self, run: Run, record: dict) -> None:
        if run.state.train_seconds + float(record["seconds"]) > self.seconds:
            run.state.stopped = f"the time limit of {self.seconds:.0f} s was reached"


class StopOnCtrlC(Callback):
    """Turns the first Ctrl-C into a stop after the current batch (no step is cut in half); a
    second Ctrl-C interrupts at once. Only in the main thread, where signals arrive."""

    def __init__(self) -> None:
        self.old: Any = None
        self.active = False

    def on_train_begin(self, run: Run) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            if run.stop_requested:
                raise KeyboardInterrupt
            run.stop_requested = True

        self.old = signal.signal(signal.SIGINT, handler)
        self.active = True

    def on_train_end(self, run: Run) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self.old)
            self.active = False
