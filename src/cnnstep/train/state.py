"""What a run is made of: its settings (:class:`TrainConfig`), its progress (:class:`TrainState`)
and what the callbacks see of it (:class:`Run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnstep.nn.schedules import get_schedule
from cnnstep.train.runners import check_parallel


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
        their random draws stay in a fixed order (:mod:`cnnstep.train.parallel`). Results
        depend on the thread count only through rounding.
    parallel : {"auto", "threads", "processes"}
        Where the parts of a batch beyond the first run: threads of this process, or worker
        processes, which the GIL does not slow down (:func:`cnnstep.train.runners.make_runner`;
        ``"auto"``: processes for runs of 10 steps or more). Both give the same numbers.
    """

    epochs: int = 10
    batch_size: int = 64
    schedule: str = "cosine"
    augment_shift: int = 0
    lr: float | None = None
    threads: int = 1
    parallel: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        get_schedule(self.schedule)
        if self.augment_shift < 0:
            raise ValueError(f"augment_shift must be >= 0, got {self.augment_shift}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        check_parallel(self.parallel)


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


@dataclass
class Run:
    """What the callbacks see of a run in progress."""

    model: Any
    optimizer: Any
    config: TrainConfig
    state: TrainState
    n_batches: int
    base_lr: float
    stop_requested: bool = False

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.n_batches
