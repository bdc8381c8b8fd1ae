"""``cnnstep.train.fit`` (``Sequential.fit``): epochs="auto", early stopping with the best
weights kept, the time limit, checkpoints and exact resume, and how a model finds its trainer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from models import small_model, toy_data

from cnnstep import Adam, Sequential
from cnnstep.nn.trainer import resolve_trainer
from cnnstep.train import History, fit, loop
from cnnstep.train.callbacks import Callback, EarlyStopping, ReduceLROnPlateau, TimeLimit
from cnnstep.train.fit import (
    AUTO_MAX_EPOCHS,
    AUTO_PATIENCE,
    auto_config,
    auto_patience,
    auto_smoothing,
    split_validation,
)
from cnnstep.train.loop import TrainingInterruptedError


def _model(seed=0):
    return small_model(seed=seed, dropout=False)


def test_records_name_validation_metrics_val():
    x, y = toy_data(m=48)
    history = _model().fit(x, y, epochs=2, batch_size=16, threads=1, validation_data=(x, y))
    assert isinstance(history, History) and len(history) == 2
    for record in history:
        assert {"val_loss", "val_accuracy", "train_accuracy", "loss", "lr"} <= set(record)
        assert "test_accuracy" not in record
        assert 0.0 <= record["val_accuracy"] <= 1.0 and record["val_loss"] > 0


def test_auto_holds_out_part_of_the_training_data_and_keeps_the_best_epoch():
    x, y = toy_data(m=80)
    y = np.where(np.random.default_rng(0).random(80) < 0.25, 1 - y, y)  # some labels wrong
    model = _model(seed=1)
    history = model.fit(x, y, epochs="auto", patience=2, batch_size=16, threads=1,
                        optimizer=Adam(0.05))
    assert history.stopped == "no better validation accuracy for 2 epochs"
    assert len(history) < AUTO_MAX_EPOCHS
    best = history.best_epoch
    assert best == len(history) - 2  # two epochs without improvement after the best
    # the model holds the best epoch's weights: it scores what that epoch scored on the
    # held-out part (threads=1: the same arithmetic as during training)
    _, _, x_val, y_val = split_validation(x, y, 0.15)
    assert len(y_val) == 12
    assert model.evaluate(x_val, y_val)["loss"] == pytest.approx(history[best - 1]["val_loss"],
                                                                rel=1e-6)


def test_a_better_epoch_is_a_higher_accuracy_or_the_same_at_a_lower_loss():
    from cnnstep.train.callbacks import is_better

    best = {"val_accuracy": 0.5, "val_loss": 1.0}
    assert is_better({"val_accuracy": 0.6, "val_loss": 9.0}, best)
    assert is_better({"val_accuracy": 0.5, "val_loss": 0.9}, best)
    assert not is_better({"val_accuracy": 0.5, "val_loss": 0.995}, best)  # too little
    assert not is_better({"val_accuracy": 0.4, "val_loss": 0.1}, best)
    assert is_better({"val_accuracy": 0.0, "val_loss": 5.0}, None)


def test_auto_defaults_and_bounds():
    x, y = toy_data(m=40)
    history = _model().fit(x, y, epochs="auto", time_limit=1e-9, batch_size=16, threads=1)
    # the time limit ends the run after its first epoch, whatever the machine's speed
    assert len(history) == 1 and "time limit" in history.stopped
    assert AUTO_PATIENCE >= 5 and AUTO_MAX_EPOCHS >= 50
    assert auto_patience(1000, 32) == AUTO_PATIENCE  # 32 batches: 12 epochs are 384 steps
    assert auto_patience(177, 32) == 50  # 6 batches: 300 steps are 50 epochs


def test_a_small_validation_part_is_judged_over_several_epochs():
    from cnnstep.train.callbacks import smoothed

    history = [{"val_accuracy": a, "val_loss": 1.0 - a} for a in (0.5, 0.9, 0.6, 0.7)]
    assert smoothed(history, history[-1], 1) is history[-1]
    mean = smoothed(history, history[-1], 3)
    assert mean["val_accuracy"] == pytest.approx((0.9 + 0.6 + 0.7) / 3)
    assert mean["val_loss"] == pytest.approx(1 - (0.9 + 0.6 + 0.7) / 3)
    assert smoothed(history[:1], history[0], 3)["val_accuracy"] == 0.5  # fewer at the start
    # enough epochs to hold 150 validation images, at most 5 and half the patience
    assert auto_smoothing(32, 50) == 5 and auto_smoothing(162, 12) == 1
    assert auto_smoothing(60, 12) == 3 and auto_smoothing(10, 4) == 2 and auto_smoothing(5, 1) == 1
    assert auto_config({"epochs": "auto"}, None, 209).smoothing == 5  # 32 held out
    assert auto_config({"epochs": "auto"}, None, 1080).smoothing == 1  # 162 held out
    assert auto_config({"epochs": 5}, None, 209).smoothing == 1
    with pytest.raises(ValueError, match="smoothing"):
        EarlyStopping(3, smoothing=0)
    with pytest.raises(ValueError, match="patience must be a positive int, got True"):
        EarlyStopping(True)
    stopper = EarlyStopping(np.int64(3), smoothing=np.int64(2))  # NumPy's ints, as from a grid
    assert stopper.smoothing == 2 and type(stopper.smoothing) is int


def test_early_stopping_keeps_the_last_epoch_of_the_best_stretch():
    x, y = toy_data(m=80)
    y = np.where(np.random.default_rng(0).random(80) < 0.25, 1 - y, y)
    model = _model(seed=1)
    history = model.fit(x, y, epochs="auto", patience=4, smoothing=3, batch_size=16, threads=1,
                        optimizer=Adam(0.05))
    assert history.stopped == "no better validation accuracy (mean of 3 epochs) for 4 epochs"
    accs = [h["val_accuracy"] for h in history]
    means = [np.mean(accs[max(0, k - 2):k + 1]) for k in range(len(accs))]
    best = history.best_epoch
    assert best == len(history) - 4
    assert means[best - 1] == pytest.approx(max(means[:best]))


def test_early_stopping_needs_validation():
    x, y = toy_data(m=32)
    with pytest.raises(ValueError, match="validation"):
        _model().fit(x, y, epochs=2, batch_size=16, threads=1, callbacks=[EarlyStopping(1)])


@pytest.mark.parametrize("bad, match", [
    ({"epochs": "forever"}, "epochs"), ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch"),
    ({"patience": 0}, "patience"), ({"time_limit": -1.0}, "time_limit"),
    ({"validation_split": 1.5}, "validation_split"), ({"epochs": True}, "epochs"),
])
def test_bad_settings_name_the_argument(bad, match):
    x, y = toy_data(m=32)
    with pytest.raises(ValueError, match=match):
        _model().fit(x, y, threads=1, **bad)


def test_callbacks_refuse_bad_arguments():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(2, factor=1.5)
    with pytest.raises(ValueError, match="seconds"):
        TimeLimit(0)


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, run, loss):
        if run.state.step == self.step:
            run.stop_requested = True


# mid-epoch and at an epoch's end, with early stopping and the learning-rate halving running
@pytest.mark.parametrize("stop_at", [7, 12])
def test_checkpoint_and_resume_give_the_uninterrupted_run(tmp_path, stop_at):
    x, y = toy_data(m=60)
    kwargs = dict(epochs=8, patience=3, batch_size=10, augment_shift=1, threads=1)
    ref_model = _model(seed=5)
    ref = ref_model.fit(x, y, optimizer=Adam(0.05), **kwargs)

    ckpt = tmp_path / "c.npz"
    with pytest.raises(TrainingInterruptedError):
        _model(seed=5).fit(x, y, optimizer=Adam(0.05), checkpoint=ckpt,
                           callbacks=[_StopAt(stop_at)], **kwargs)
    resumed_model = _model(seed=99)  # other initial weights: the checkpoint's replace them
    resumed = resumed_model.fit(x, y, resume=ckpt, checkpoint=ckpt, epochs=8, threads=1)
    assert [h["epoch"] for h in resumed] == [h["epoch"] for h in ref]
    assert [h["val_accuracy"] for h in resumed] == [h["val_accuracy"] for h in ref]
    assert (resumed.stopped, resumed.best_epoch) == (ref.stopped, ref.best_epoch)
    for a, b in zip(ref_model.parameters(), resumed_model.parameters()):
        assert np.array_equal(a, b)


def test_flips_give_the_same_numbers_from_the_same_seed():
    """Same seed, same data, same settings: the same history and weights, flips included; a
    flip changes what is learnt (they are applied), another seed gives other numbers."""
    x, y = toy_data(m=60)
    kwargs = dict(epochs=3, batch_size=10, augment_shift=1, threads=1,
                  validation_data=(x[:20], y[:20]))
    runs = []
    for seed, flip in [(4, True), (4, True), (4, False), (5, True)]:
        model = _model(seed=seed)
        history = model.fit(x, y, optimizer=Adam(0.05), augment_flip=flip, **kwargs)
        runs.append(([h["loss"] for h in history], model.parameters()))
    (loss_a, params_a), (loss_b, params_b) = runs[0], runs[1]
    assert loss_a == loss_b
    assert all(np.array_equal(a, b) for a, b in zip(params_a, params_b))
    for other_loss, _ in runs[2:]:
        assert other_loss != loss_a


def test_augmentation_touches_only_the_training_batches(monkeypatch):
    """Every training image goes through the augmentation once per epoch, no validation image
    does: the validation loss recorded after the last epoch is the plain evaluation's."""
    x, y = toy_data(m=60)
    x_val, y_val = toy_data(m=17, seed=3)
    seen: list[int] = []
    real = loop.augment

    def spy(xb, config, rng):
        seen.append(len(xb))
        return real(xb, config, rng)

    monkeypatch.setattr(loop, "augment", spy)
    model = _model(seed=2)
    history = model.fit(x, y, epochs=2, batch_size=16, augment_shift=1, augment_flip=True,
                        threads=1, validation_data=(x_val, y_val))
    assert sum(seen) == 2 * 60 and max(seen) == 16
    assert model.evaluate(x_val, y_val)["loss"] == pytest.approx(history[-1]["val_loss"],
                                                                rel=1e-6)
    # epochs="auto": the part held out of (x, y) is not augmented either
    seen.clear()
    _model(seed=2).fit(x, y, epochs=2, patience=5, batch_size=16, augment_flip=True, threads=1)
    assert sum(seen) == 2 * (60 - 9)  # 15 % of 60 held out


def test_resume_refuses_what_it_cannot_change(tmp_path):
    x, y = toy_data(m=40)
    ckpt = tmp_path / "c.npz"
    _model().fit(x, y, epochs=1, batch_size=10, threads=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="batch_size=20 differs"):
        _model().fit(x, y, epochs=2, batch_size=20, threads=1, resume=ckpt)
    with pytest.raises(ValueError, match="augment_flip=True differs"):
        _model().fit(x, y, epochs=2, augment_flip=True, threads=1, resume=ckpt)
    with pytest.raises(ValueError, match="already done 1"):
        _model().fit(x, y, epochs=1, threads=1, resume=ckpt)
    with pytest.raises(ValueError, match="40 examples, not 30"):
        _model().fit(x[:30], y[:30], epochs=2, threads=1, resume=ckpt)
    with pytest.raises(ValueError, match="another model"):
        fit(small_model(dropout=True), x, y, epochs=2, threads=1, resume=ckpt)
    assert len(_model().fit(x, y, epochs=2, threads=1, resume=ckpt)) == 2


def test_a_model_names_its_trainer_and_imports_no_training_code():
    calls = []

    def my_trainer(model, x, y, **kwargs):
        calls.append((model, kwargs))
        return ["done"]

    model = _model()
    x, y = toy_data(m=8)
    assert model.fit(x, y, trainer=my_trainer, epochs=3) == ["done"]
    assert calls == [(model, {"epochs": 3})]
    model.trainer = my_trainer
    assert model.fit(x, y) == ["done"]
    assert Sequential.trainer == "cnnstep.train:fit" and resolve_trainer(Sequential.trainer) is fit
    with pytest.raises(ValueError, match="cannot be imported"):
        resolve_trainer("cnnstep.no_such_module:fit")
    with pytest.raises(TypeError, match="module:function"):
        resolve_trainer(42)
    # nothing registers a trainer on import: importing the package and building a model loads
    # no training code
    code = ("import sys, cnnstep; from cnnstep import Sequential, Dense, Flatten; "
            "Sequential([Flatten(), Dense(2)], (2, 2, 1)); "
            "print(sorted(m for m in sys.modules if m.startswith('cnnstep.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
