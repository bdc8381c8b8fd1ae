"""Callbacks: what happens around the training loop, kept out of it.

The loop (:func:`cnnstep.train.loop.train`) calls each callback's hooks in order:
``on_train_begin(run)``, then per epoch ``on_epoch_begin(run)``, per batch ``on_batch_begin(run)``
and ``on_batch_end(run, loss)``, ``on_epoch_end(run, record)``; ``on_interrupt(run)`` on Ctrl-C
and ``on_train_end(run)`` always, last. ``run`` is the :class:`~cnnstep.train.state.Run` (model,
optimizer, config, state). A callback stops the run by raising (:class:`NonFiniteLoss` raises
:class:`NonFiniteLossError`) or by setting ``run.stop_requested`` (checked after every batch).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from cnnstep.errors import UserError
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
        run.optimizer.lr = self.fn(self.base_lr, run.state.step, run.total_steps)


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
    """One summary line for an epoch's metrics."""
    test = record.get("test_accuracy")
    test_part = f"  test acc {test:.2%}" if test is not None else ""
    return (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['loss']:.4f}  "
            f"train acc {record['train_accuracy']:.2%}{test_part}  {record['seconds']:.1f} s")


class EpochLog(Callback):
    """Passes one summary line per epoch to ``log`` (``print`` by default)."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.log = log

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.log(format_epoch(record, run.config.epochs))


class Checkpoint(Callback):
    """Calls ``save(state)`` after every epoch and on Ctrl-C, so a run can be resumed."""

    def __init__(self, save: Callable[[TrainState], None]) -> None:
        self.save = save

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.save(run.state)

    def on_interrupt(self, run: Run) -> None:
        self.save(run.state)


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
