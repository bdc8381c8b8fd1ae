"""Training loop: exact resume after an interruption (with shifts and flips), non-finite loss,
augmentation (whole images moved or mirrored, drawn from the model's generator), schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from models import small_model as _small_model
from models import toy_data as _toy_data

from cnnstep import Adam
from cnnstep.nn.schedules import cosine_lr
from cnnstep.train.callbacks import Callback, Checkpoint, NonFiniteLossError
from cnnstep.train.checkpoint import load_checkpoint, save_checkpoint
from cnnstep.train.loop import (
    TrainConfig,
    TrainingInterruptedError,
    augment,
    random_flip,
    random_shift,
    train,
)
from cnnstep.train.runners import make_runner


def _run(tmp_path, interrupt_at=None, resume=False, threads=1, flip=False):
    x, y = _toy_data()
    cfg = TrainConfig(epochs=3, batch_size=20, schedule="cosine", augment_shift=1,
                      augment_flip=flip, lr=0.01, threads=threads)
    ckpt = tmp_path / "ckpt.npz"
    if resume:
        ck = load_checkpoint(ckpt)
        model, opt, state = ck.model, ck.optimizer, ck.state
        assert ck.config == cfg and ck.m == len(y)
    else:
        model, opt, state = _small_model(seed=3, dropout=threads == 1), Adam(0.01), None

    def save(st):
        save_checkpoint(ckpt, model, opt, cfg, st, len(y))

    class Interrupt(Callback):
        def on_batch_end(self, run, loss):
            if interrupt_at is not None and run.state.step == interrupt_at:
                run.stop_requested = True  # what Ctrl-C does: stop after this batch

    state = train(model, opt, x, y, x, y, cfg, state=state,
                  callbacks=[Checkpoint(save), Interrupt()])
    return model, state


# mid-epoch 2, and the end of epoch 2's batches; one thread, and batches split in two threads;
# shifts only, and shifts and flips
@pytest.mark.parametrize("interrupt_at, threads, flip", [(7, 1, False), (10, 1, False),
                                                         (7, 2, False), (7, 1, True),
                                                         (10, 2, True)])
def test_interrupt_and_resume_gives_the_uninterrupted_result(tmp_path, interrupt_at, threads,
                                                             flip):
    reference, ref_state = _run(tmp_path / "a", threads=threads, flip=flip)
    with pytest.raises(TrainingInterruptedError) as info:
        _run(tmp_path / "b", interrupt_at=interrupt_at, threads=threads, flip=flip)
    assert info.value.state.step == interrupt_at
    model, state = _run(tmp_path / "b", resume=True, threads=threads, flip=flip)
    for a, b in zip(reference.parameters(), model.parameters()):
        assert np.array_equal(a, b)
    assert [h["epoch"] for h in state.history] == [1, 2, 3]
    for h, r in zip(state.history, ref_state.history):
        assert h["loss"] == pytest.approx(r["loss"], rel=1e-12)
        assert h["val_accuracy"] == r["val_accuracy"]


@pytest.mark.parametrize("threads", [2, 3])
def test_batches_split_between_threads_give_the_same_step(threads):
    x, y = _toy_data(m=21)
    serial, split = _small_model(seed=1, dropout=False), _small_model(seed=1, dropout=False)
    opt_a, opt_b = Adam(0.01), Adam(0.01)
    runner = make_runner(split, threads)
    try:
        assert len(runner.replicas) == threads
        loss_a, logits_a = serial.train_step(x, y, opt_a)
        loss_b, logits_b = runner.train_step(x, y, opt_b)
        assert loss_b == pytest.approx(loss_a, rel=1e-6)
        assert np.allclose(logits_a, logits_b, atol=1e-6)
        for a, b in zip(serial.parameters(), split.parameters()):
            assert np.allclose(a, b, atol=1e-6)
        assert runner.evaluate(x, y)["loss"] == pytest.approx(serial.evaluate(x, y)["loss"],
                                                               rel=1e-5)
    finally:
        runner.close()


def test_models_with_dropout_train_in_one_thread():
    runner = make_runner(_small_model(dropout=True), 2)
    assert not hasattr(runner, "replicas")
    runner.close()


def test_non_finite_loss_stops_and_names_the_epoch():
    x, y = _toy_data()
    x = x.copy()
    x[50] = np.nan  # reaches the loss in whichever batch holds example 50
    model = _small_model(dropout=False)
    saved = []
    with pytest.raises(NonFiniteLossError, match=r"epoch 1 .*Lower the learning rate") as info:
        train(model, Adam(0.01), x, y, None, None, TrainConfig(epochs=2, batch_size=16),
              callbacks=[Checkpoint(saved.append)])
    assert info.value.epoch == 1 and not math.isfinite(info.value.loss)
    assert saved == []  # no checkpoint of a broken state
    assert all(np.isfinite(p).all() for p in model.parameters())


def test_random_shift_moves_whole_images():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 9, 9, 1), np.float32)
    x[:, 4, 4] = 1.0
    out = random_shift(x, 2, rng)
    assert out.shape == x.shape and out.dtype == np.float32
    rows = np.nonzero(out[..., 0].reshape(50, -1) == 1)[1] // 9
    assert set(rows) <= {2, 3, 4, 5, 6} and len(set(rows)) > 1
    assert np.allclose(out.sum(axis=(1, 2, 3)), 1.0)
    assert random_shift(x, 0, rng) is x


def test_random_flip_mirrors_whole_images_about_half_of_them():
    rng = np.random.default_rng(0)
    x = rng.random((400, 5, 7, 3)).astype(np.float32)
    kept = x.copy()
    out = random_flip(x, rng)
    assert out.shape == x.shape and out.dtype == np.float32 and out is not x
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)  # each image whole, as it was or mirrored
    assert 150 < mirrored.sum() < 250
    assert np.array_equal(x, kept)  # the batch given is not changed


def test_augment_follows_the_generator_and_draws_nothing_for_what_is_off():
    x = np.random.default_rng(1).random((30, 6, 6, 1)).astype(np.float32)
    on = TrainConfig(augment_shift=1, augment_flip=True)
    a = augment(x, on, np.random.default_rng(7))
    assert np.array_equal(a, augment(x, on, np.random.default_rng(7)))  # same seed, same images
    assert not np.array_equal(a, augment(x, on, np.random.default_rng(8)))
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    assert augment(x, TrainConfig(), rng) is x and rng.bit_generator.state == before
    # flips alone draw one number per image and move nothing up or down
    flipped = augment(x, TrainConfig(augment_flip=True), np.random.default_rng(3))
    assert np.array_equal(np.sort(flipped, axis=2), np.sort(x, axis=2))


def test_augment_flip_must_be_a_bool():
    with pytest.raises(ValueError, match="augment_flip"):
        TrainConfig(augment_flip="yes")
    assert TrainConfig(augment_flip=np.bool_(True)).augment_flip is True


def test_cosine_schedule():
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0)


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
