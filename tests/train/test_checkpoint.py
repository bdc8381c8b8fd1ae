"""The checkpoint file: round trip, and its schema against edited files (each a one-line
DataError naming the field, never a traceback, never a run that silently does something else);
thread counts read from it are capped at the machine's CPUs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from models import small_model, toy_data

from cnnstep import Adam
from cnnstep.errors import DataError
from cnnstep.train import checkpoint as ckpt_module
from cnnstep.train.callbacks import Callback
from cnnstep.train.checkpoint import load_checkpoint, save_checkpoint
from cnnstep.train.loop import TrainingInterruptedError
from cnnstep.train.state import TrainConfig, TrainState


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, run, loss):
        if run.state.step == self.step:
            run.stop_requested = True


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of an auto run (early stopping state, best weights) stopped mid-epoch."""
    path = tmp_path_factory.mktemp("ck") / "c.npz"
    x, y = toy_data(m=60)
    with pytest.raises(TrainingInterruptedError):
        small_model(seed=1, dropout=False).fit(
            x, y, epochs=6, patience=3, batch_size=10, threads=1, optimizer=Adam(0.01),
            checkpoint=path, callbacks=[_StopAt(8)])
    return path


def _read(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return json.loads(str(arrays["__checkpoint__"][()])), arrays


def _write(path, header, arrays):
    arrays = dict(arrays)
    arrays["__checkpoint__"] = np.array(json.dumps(header))
    np.savez(path, **arrays)


def test_round_trip_restores_everything(saved):
    ck = load_checkpoint(saved)
    assert (ck.state.epoch, ck.state.batch, ck.state.step) == (1, 2, 8)
    assert ck.m == 51 and ck.config.patience == 3 and ck.config.validation_split == 0.15
    assert ck.state.perm is not None and sorted(ck.state.perm) == list(range(51))
    assert set(ck.state.extra) == {"early_stopping", "reduce_lr"}
    assert {k.split("/")[0] for k in ck.state.arrays} == {"best"}
    assert ck.optimizer.t == 8 and isinstance(ck.optimizer, Adam)
    assert ck.notes == []


def test_saving_what_was_loaded_gives_the_same_file_content(saved, tmp_path):
    ck = load_checkpoint(saved)
    again = tmp_path / "again.npz"
    save_checkpoint(again, ck.model, ck.optimizer, ck.config, ck.state, ck.m)
    (h1, a1), (h2, a2) = _read(saved), _read(again)
    assert h1 == h2 and set(a1) == set(a2)
    for k in a1:
        assert np.array_equal(a1[k], a2[k]), k


def _set(path, value):
    def edit(header, arrays):
        node = header
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


def _array(name, fn):
    def edit(header, arrays):
        arrays[name] = fn(arrays[name]) if name in arrays else fn(None)
        if arrays[name] is None:
            del arrays[name]
    return edit


_DELETE = object()
P = ("progress",)

TAMPERED = {
    "perm out of range": (_array("state/perm", lambda p: p + 100), "permutation"),
    "perm of floats": (_array("state/perm", lambda p: p.astype(float)), "integers"),
    "perm too short": (_array("state/perm", lambda p: p[:-1]), "entries for 51"),
    "perm repeats": (_array("state/perm", lambda p: np.zeros_like(p)), "permutation"),
    "perm missing": (_array("state/perm", lambda p: None), "missing"),
    "perm 2-D": (_array("state/perm", lambda p: p[None]), "1-D"),
    "string epoch": (_set(P + ("epoch",), "1"), "progress.epoch"),
    "negative epoch": (_set(P + ("epoch",), -1), "progress.epoch"),
    "bool epoch": (_set(P + ("epoch",), True), "progress.epoch"),
    "epoch past the run": (_set(P + ("epoch",), 99), "progress.epoch"),
    "history not a list": (_set(P + ("history",), {"a": 1}), "history must be a list"),
    "history too short": (_set(P + ("history",), []), "history must be a list of 1"),
    "record not a mapping": (_set(P + ("history", 0), 3), "history[0]"),
    "NaN loss in history": (_set(P + ("history", 0, "loss"), float("nan")), "history[0].loss"),
    "accuracy above 1": (_set(P + ("history", 0, "train_accuracy"), 2.0), "train_accuracy"),
    "zero batch size": (_set(("config", "batch_size"), 0), "batch_size"),
    "string batch size": (_set(("config", "batch_size"), "10"), "batch_size"),
    "unknown schedule": (_set(("config", "schedule"), "step"), "schedule"),
    "unknown setting": (_set(("config", "speed"), 1), "unknown run settings"),
    "zero threads": (_set(("config", "threads"), 0), "threads"),
    "batch past the epoch": (_set(P + ("batch",), 50), "progress.batch"),
    "step disagrees": (_set(P + ("step",), 3), "progress.step"),
    "more correct than seen": (_set(P + ("correct",), 10**6), "progress.correct"),
    "infinite seconds": (_set(P + ("seconds",), float("inf")), "progress.seconds"),
    "zero lr scale": (_set(P + ("lr_scale",), 0.0), "lr_scale"),
    "unknown extra": (_set(P + ("extra", "mine"), {}), "extra.mine"),
    "bad wait": (_set(P + ("extra", "early_stopping", "wait"), "x"), "wait"),
    "stopped not text": (_set(P + ("stopped",), 5), "stopped"),
    "unknown progress field": (_set(P + ("speed",), 1), "unknown fields"),
    "bad generator state": (_set(("rng", "state", "state"), "x"), "rng is not a valid"),
    "other generator": (_set(("rng", "bit_generator"), "MT19937"), "PCG64"),
    "generator not a mapping": (_set(("rng",), [1, 2]), "rng"),
    "string optimizer step": (_set(("optimizer", "t"), "8"), "optimizer.t"),
    "negative optimizer step": (_set(("optimizer", "t"), -1), "optimizer.t"),
    "negative learning rate": (_set(("optimizer", "config", "lr"), -1.0), "optimizer.config.lr"),
    "unknown optimizer": (_set(("optimizer", "type"), "Lion"), "optimizer.type"),
    "unknown optimizer setting": (_set(("optimizer", "config", "x"), 1.0), "damaged"),
    "NaN optimizer slot": (_array("optimizer/m.0", lambda a: a * np.nan), "finite"),
    "optimizer slot of strings": (_array("optimizer/m.0", lambda a: np.array("x")), "finite"),
    "optimizer slot of wrong shape": (_array("optimizer/m.0", lambda a: a[:1]), "shape"),
    "best weights of wrong shape": (_array("state/best/0.W", lambda a: a[:1]), "state/best"),
    "best weights NaN": (_array("state/best/0.W", lambda a: a * np.nan), "NaN"),
    "unknown array": (_array("state/extra", lambda a: np.zeros(2)), "state/extra"),
    "string m": (_set(("m",), "51"), "m must be"),
    "m missing": (_set(("m",), _DELETE), "m must be"),
    "unknown format": (_set(("format",), 3), "format"),
    "settings not a mapping": (_set(("settings",), [1]), "settings"),
}


@pytest.mark.parametrize("name", list(TAMPERED))
def test_a_tampered_checkpoint_is_one_data_error(saved, tmp_path, name):
    edit, fragment = TAMPERED[name]
    header, arrays = _read(saved)
    edit(header, arrays)
    path = tmp_path / "t.npz"
    _write(path, header, arrays)
    with pytest.raises(DataError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and str(path) in message
    assert fragment in message, message


def test_a_header_that_is_not_an_object(saved, tmp_path):
    _, arrays = _read(saved)
    arrays["__checkpoint__"] = np.array("[1, 2]")
    np.savez(tmp_path / "t.npz", **arrays)
    with pytest.raises(DataError, match="JSON object"):
        load_checkpoint(tmp_path / "t.npz")


def test_thread_counts_from_the_file_are_capped_at_the_machine(saved, tmp_path, monkeypatch):
    header, arrays = _read(saved)
    header["config"]["threads"] = 24
    _write(tmp_path / "t.npz", header, arrays)
    monkeypatch.setattr(ckpt_module, "machine_cpus", lambda: 2)
    ck = load_checkpoint(tmp_path / "t.npz")
    assert ck.config.threads == 2
    assert ck.notes == ["the checkpoint's 24 threads capped at this machine's 2 CPUs"]


def test_machine_cpus_is_what_this_process_may_use():
    import os

    assert 1 <= ckpt_module.machine_cpus() <= (os.cpu_count() or 1)


def test_first_format_checkpoints_are_read(tmp_path):
    """Files written before the run's config had its own entry (progress and settings under
    ``state``, validation accuracy named ``test_accuracy``)."""
    model, opt = small_model(seed=2, dropout=False), Adam(0.01)
    x, y = toy_data(m=20)
    model.fit(x, y, epochs=1, batch_size=10, threads=1, optimizer=opt)
    new = tmp_path / "new.npz"
    save_checkpoint(new, model, opt, TrainConfig(epochs=3, batch_size=10), TrainState(), 20)
    header, arrays = _read(new)
    record = {"epoch": 1, "loss": 0.7, "train_accuracy": 0.5, "test_accuracy": 0.6,
              "seconds": 0.1}
    progress = {"epoch": 1, "batch": 0, "step": 2, "history": [record], "loss_sum": 0.0,
                "correct": 0, "seen": 0, "seconds": 0.0}
    settings = {"epochs": 3, "batch_size": 10, "schedule": "cosine", "augment": 1,
                "lr": 0.01, "threads": None, "arch": "default"}
    old = {"state": {"progress": progress, "settings": settings},
           "optimizer": header["optimizer"], "rng": header["rng"]}
    _write(tmp_path / "old.npz", old, arrays)
    ck = load_checkpoint(tmp_path / "old.npz")
    assert ck.m is None and ck.config.epochs == 3 and ck.config.augment_shift == 1
    assert ck.state.history[0]["val_accuracy"] == 0.6
    assert ck.settings["arch"] == "default"
