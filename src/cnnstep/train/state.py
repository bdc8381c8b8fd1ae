"""What a run is made of: its settings (:class:`TrainConfig`), its progress (:class:`TrainState`)
and what the callbacks see of it (:class:`Run`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from cnnstep.nn.layers.base import positive_int
from cnnstep.nn.schedules import get_schedule
from cnnstep.train.runners import check_parallel

#: Settings a resumed run may change; the others shape the run and must stay as they were.
CHANGEABLE_ON_RESUME = ("epochs", "lr", "threads", "parallel", "time_limit")


def _number(name: str, value: Any, low: float, high: float = math.inf,
            allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
          and low < float(value) < high)
    if not ok:
        raise ValueError(f"{name} must be a number in ({low:g}, {high:g}), got {value!r}")


@dataclass
class TrainConfig:
    """Settings of a training run.

    Attributes
    ----------
    epochs : int
        Total number of epochs of the run (a resumed run stops at this count too); with
        ``patience``, the most it runs.
    batch_size : int
    schedule : {"cosine", "constant"}
        ``cosine`` decays the learning rate from ``lr`` to 0 over the whole run.
    augment_shift : int
        Shift each training image by a random offset in ``[-shift, shift]`` pixels per axis.
    augment_flip : bool
        Mirror each training image left to right with probability 1/2 (after the shift).
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
    patience : int, optional
        Stop when the validation accuracy has not improved for this many epochs, and keep the
        weights of the best epoch (:class:`~cnnstep.train.callbacks.EarlyStopping`); the
        learning rate is halved after ``patience // 2`` epochs without improvement
        (:class:`~cnnstep.train.callbacks.ReduceLROnPlateau`). None: run every epoch.
    smoothing : int
        Judge each epoch for ``patience`` by the mean validation accuracy of the last
        ``smoothing`` epochs (:func:`cnnstep.train.callbacks.smoothed`); 1: by its own.
    time_limit : float, optional
        Seconds of training after which the run stops at the end of the epoch
        (:class:`~cnnstep.train.callbacks.TimeLimit`). None: no limit.
    validation_split : float, optional
        The fraction of the training data held out (stratified, always the same examples for
        the same labels) to validate on when no validation data is given.
    """

    epochs: int = 10
    batch_size: int = 64
    schedule: str = "cosine"
    augment_shift: int = 0
    augment_flip: bool = False
    lr: float | None = None
    threads: int = 1
    parallel: str = "auto"
    patience: int | None = None
    smoothing: int = 1
    time_limit: float | None = None
    validation_split: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "threads", "smoothing"):
            positive_int(getattr(self, name), name)
        if self.patience is not None:
            positive_int(self.patience, "patience")
        if not isinstance(self.schedule, str):
            raise ValueError(f"schedule must be a name, got {self.schedule!r}")
        get_schedule(self.schedule)
        if (isinstance(self.augment_shift, bool)
                or not isinstance(self.augment_shift, (int, np.integer))
                or self.augment_shift < 0):
            raise ValueError(f"augment_shift must be an integer >= 0, got {self.augment_shift!r}")
        if not isinstance(self.augment_flip, (bool, np.bool_)):
            raise ValueError(f"augment_flip must be True or False, got {self.augment_flip!r}")
        self.augment_flip = bool(self.augment_flip)
        _number("lr", self.lr, 0.0)
        _number("time_limit", self.time_limit, 0.0)
        _number("validation_split", self.validation_split, 0.0, 1.0)
        check_parallel(self.parallel)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> TrainConfig:
        """The config stored by :meth:`to_json`; ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"the run's settings must be a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown run settings {', '.join(unknown)}")
        return cls(**data)

    def resumed_with(self, given: dict) -> TrainConfig:
        """This (stored) config with ``given`` changes for a resumed run.

        Only :data:`CHANGEABLE_ON_RESUME` may differ; a ValueError names the first other
        setting that does.
        """
        stored = self.to_json()
        for key, value in given.items():
            if key not in stored:
                raise ValueError(f"unknown run setting {key}")
            if key not in CHANGEABLE_ON_RESUME and value != stored[key]:
                raise ValueError(f"{key}={value!r} differs from the checkpoint's "
                                 f"{stored[key]!r}; it cannot change when a run is resumed")
        return TrainConfig(**{**stored, **given})


#: TrainState's JSON fields, in the order they are stored.
STATE_FIELDS = ("epoch", "batch", "step", "history", "loss_sum", "correct", "seen", "seconds",
                "lr_scale", "extra", "stopped")


@dataclass
class TrainState:
    """Progress of a run: completed epochs, position in the current epoch, metrics so far.

    ``extra`` (JSON) and ``arrays`` hold what callbacks keep between epochs (the best epoch
    and its weights of :class:`~cnnstep.train.callbacks.EarlyStopping`), so that a resumed run
    continues them; ``stopped`` says why a run ended before its last epoch.
    """

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch (0: it has not started)
    step: int = 0  # batches done in the whole run
    history: list[dict] = field(default_factory=list)
    loss_sum: float = 0.0  # of the current epoch, so far
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    lr_scale: float = 1.0  # ReduceLROnPlateau's factor on the scheduled learning rate
    extra: dict = field(default_factory=dict)
    stopped: str | None = None
    perm: np.ndarray | None = None  # shuffling order of the current epoch
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in STATE_FIELDS}

    @classmethod
    def from_json(cls, data: dict, arrays: dict[str, np.ndarray] | None = None) -> TrainState:
        """The state stored by :meth:`to_json` with its arrays (``perm`` and the callbacks'),
        checked beforehand by :func:`cnnstep.train.checkpoint.check_progress`."""
        arrays = dict(arrays or {})
        perm = arrays.pop("perm", None)
        state = cls(**{k: data[k] for k in STATE_FIELDS if k in data})
        state.perm = perm if state.batch else None
        state.arrays = arrays
        return state

    @property
    def train_seconds(self) -> float:
        """Seconds of training so far, the epoch in progress included."""
        return sum(float(h.get("seconds", 0.0)) for h in self.history) + self.seconds


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
    #: set by the loop when the run ended normally (not interrupted, no error)
    completed: bool = False

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.n_batches
