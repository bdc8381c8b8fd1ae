"""Worker processes: the same numbers as threads, and a run that survives a worker's end."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import numpy as np
import pytest
from models import small_model as _small_model
from models import toy_data as _toy_data

from cnnstep import Adam, Dense, Flatten, Sequential
from cnnstep.train.parallel import DataParallel, Serial
from cnnstep.train.pool import WorkerPool
from cnnstep.train.processes import ProcessParallel, worker_settings
from cnnstep.train.runners import PROCESS_MIN_STEPS, make_runner
from cnnstep.train.state import TrainConfig
from cnnstep.train.worker import Layout

pytestmark = pytest.mark.skipif(os.name != "posix", reason="worker processes need POSIX")


@contextlib.contextmanager
def _runners(n=2, dtype=np.float32):
    """Twin models with a thread runner and a process runner; both closed afterwards."""
    threads, dp, procs, pp = _pair(n, dtype)
    try:
        yield threads, dp, procs, pp
    finally:
        dp.close()
        pp.close()


def _pair(n=2, dtype=np.float32):
    threads = _small_model(seed=5, dropout=False)
    procs = _small_model(seed=5, dropout=False)
    if dtype != np.float32:
        threads = type(threads)(threads.layers, (8, 8, 1), seed=5, dtype=dtype)
        procs = type(procs)([type(layer)(**layer.get_config()) for layer in procs.layers],
                            (8, 8, 1), seed=5, dtype=dtype)
    runner = make_runner(procs, n, parallel="processes", batch_size=24)
    assert isinstance(runner, ProcessParallel)
    assert runner.ready(wait=True), "the workers did not start"
    return threads, DataParallel(threads, n), procs, runner


@pytest.mark.parametrize("n, dtype", [(2, np.float32), (3, np.float32), (2, np.float64)])
def test_processes_give_the_numbers_of_threads(n, dtype):
    x, y = _toy_data(m=96)
    opt_t, opt_p = Adam(0.01), Adam(0.01)
    with _runners(n, dtype) as (threads, dp, procs, pp):
        for step in range(4):
            rows = slice(step * 24, step * 24 + (23 if step == 3 else 24))  # a short last batch
            loss_t, logits_t = dp.train_step(x[rows], y[rows], opt_t)
            loss_p, logits_p = pp.train_step(x[rows], y[rows], opt_p)
            assert loss_p == loss_t
            assert logits_p.dtype == logits_t.dtype and np.array_equal(logits_p, logits_t)
            for a, b in zip(threads.parameters(), procs.parameters()):
                assert np.array_equal(a, b)
        assert pp.state == "ready"  # no step fell back to threads
        ev_t, ev_p = dp.evaluate(x, y), pp.evaluate(x, y)
        assert ev_p["accuracy"] == ev_t["accuracy"]
        assert ev_p["loss"] == pytest.approx(ev_t["loss"], rel=1e-6)


def test_workers_stop_with_the_run_that_started_them():
    _, dp, _, pp = _pair()
    dp.close()
    procs = [w.proc for w in pp.workers]
    pp.close()  # a fit() ends: nothing it started is left
    assert pp.workers == [] and all(p.poll() is not None for p in procs)


def test_a_pool_keeps_workers_for_the_next_run_of_the_same_model_until_closed():
    x, y = _toy_data(m=24)
    procs_model = _small_model(seed=5, dropout=False)
    with WorkerPool() as pool:
        first_run = make_runner(procs_model, 2, parallel="processes", batch_size=24,
                                workers=pool)
        assert first_run.ready(wait=True)
        first = [w.proc for w in first_run.workers]
        first_run.close()  # the run ends: its workers wait in the pool
        assert pool.processes() == first and all(p.poll() is None for p in first)
        again = make_runner(procs_model, 2, parallel="processes", batch_size=24, workers=pool)
        try:
            assert [w.proc for w in again.workers] == first and again.ready()
            again.train_step(x, y, Adam(0.01))
        finally:
            again.close()
        other = make_runner(Sequential([Flatten(), Dense(2)], (8, 8, 1)), 2,
                            parallel="processes", batch_size=24, workers=pool)
        try:  # another model: the kept workers stop
            assert all(p.poll() is not None for p in first)
            assert other.ready(wait=True)
            later = [w.proc for w in other.workers]
        finally:
            other.close()
        assert pool.processes() == later
    assert all(p.poll() is not None for p in later)  # the pool closed with the block


def test_a_worker_ignores_ctrl_c():
    """Ctrl-C is the main process's to handle (checkpoint): a worker is out of the terminal's
    reach in a session of its own, and ignores a SIGINT sent to it all the same."""
    x, y = _toy_data(m=24)
    with _runners() as (_, _, _, pp):
        proc = pp.workers[0].proc
        assert os.getsid(proc.pid) != os.getsid(0)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.2)
        assert proc.poll() is None
        pp.train_step(x, y, Adam(0.01))
        assert pp.state == "ready"


def test_a_worker_that_dies_leaves_the_run_on_threads_with_the_same_numbers():
    x, y = _toy_data(m=48)
    opt_t, opt_p = Adam(0.01), Adam(0.01)
    with _runners() as (threads, dp, procs, pp):
        dp.train_step(x[:24], y[:24], opt_t)
        pp.train_step(x[:24], y[:24], opt_p)
        proc = pp.workers[0].proc
        proc.kill()
        proc.wait()
        match = r"worker process \(exit code -9\).*going on with threads"
        with pytest.warns(RuntimeWarning, match=match):
            loss_p, _ = pp.train_step(x[24:], y[24:], opt_p)
        loss_t, _ = dp.train_step(x[24:], y[24:], opt_t)
        assert pp.state == "threads" and loss_p == loss_t
        for a, b in zip(threads.parameters(), procs.parameters()):
            assert np.array_equal(a, b)
        assert pp.evaluate(x, y) == dp.evaluate(x, y)


def test_workers_that_cannot_start_leave_the_run_on_threads(monkeypatch, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no python here' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    x, y = _toy_data(m=24)
    model = _small_model(seed=5, dropout=False)
    # the fake may be gone before the setup is written (the warning comes at once) or after
    with pytest.warns(RuntimeWarning, match=r"exit code 3.*no python here"):
        runner = make_runner(model, 2, parallel="processes", batch_size=24)
        assert not runner.ready(wait=True)
    try:
        loss, logits = runner.train_step(x, y, Adam(0.01))
        assert np.isfinite(loss) and logits.shape == (24, 3)
    finally:
        runner.close()


def test_steps_run_on_threads_until_the_workers_are_up():
    x, y = _toy_data(m=24)
    threads, dp, procs, _ = _pair()
    dp.close()
    pp = ProcessParallel(procs, 2, 12)
    try:
        assert pp.state == "starting"  # nothing waited for the workers
        ref = DataParallel(threads, 2)
        assert pp.train_step(x, y, Adam(0.01))[0] == ref.train_step(x, y, Adam(0.01))[0]
        ref.close()
    finally:
        pp.close()


def test_make_runner_choices():
    model = _small_model(dropout=False)
    cases = [
        (dict(threads=1, parallel="processes"), Serial),
        (dict(threads=2, parallel="threads", steps=10**6), DataParallel),
        (dict(threads=2, steps=PROCESS_MIN_STEPS - 1), DataParallel),
        (dict(threads=2, steps=PROCESS_MIN_STEPS), ProcessParallel),
    ]
    for kwargs, kind in cases:
        runner = make_runner(model, **kwargs)
        try:
            assert type(runner) is kind, kwargs
        finally:
            runner.close()
    dropout = make_runner(_small_model(dropout=True), 2, parallel="processes")
    assert type(dropout) is Serial  # its draws must stay in order
    with pytest.raises(ValueError, match="parallel must be one of auto, threads, processes"):
        make_runner(model, 2, parallel="fork")
    with pytest.raises(ValueError, match="parallel must be one of"):
        TrainConfig(parallel="gpu")


def test_fit_on_processes_matches_fit_on_threads():
    x, y = _toy_data(m=60)
    histories, params = [], []
    for parallel in ("threads", "processes"):
        model = _small_model(seed=2, dropout=False)
        history = model.fit(x, y, epochs=2, batch_size=16, threads=2, parallel=parallel,
                            validation_data=(x, y), augment_shift=1)
        histories.append([(h["loss"], h["train_accuracy"], h["val_accuracy"])
                          for h in history])
        params.append(model.parameters())
    assert histories[0] == histories[1]
    for a, b in zip(*params):
        assert np.array_equal(a, b)


def test_layout_places_every_array_apart():
    layout = Layout(((3, 3, 1, 4), (1, 1, 1, 4), (16, 3)), (8, 8, 1), 3, 5, "float64")
    buf = bytearray(layout.nbytes)
    views = layout.views(buf)
    for i, arr in enumerate(views.values()):
        arr[...] = i + 1
    for i, (name, arr) in enumerate(views.items()):
        assert np.all(arr == i + 1), name
    assert [p.shape for p in layout.split_params(views["params"])] == [
        (3, 3, 1, 4), (1, 1, 1, 4), (16, 3)]
    assert Layout.from_json(layout.to_json()) == layout


def test_an_idle_worker_exits_by_itself_and_is_not_reused(monkeypatch):
    import cnnstep.train.processes as processes

    monkeypatch.setattr(processes, "IDLE_TIMEOUT", 0.5)
    x, y = _toy_data(m=24)
    procs = _small_model(seed=5, dropout=False)
    with WorkerPool() as pool:
        pp = make_runner(procs, 2, parallel="processes", batch_size=24, workers=pool)
        assert pp.ready(wait=True)
        first = pp.workers[0].proc
        pp.close()
        first.wait(timeout=10)  # no command within 0.5 s: it ends
        monkeypatch.setattr(processes, "IDLE_TIMEOUT", 300.0)
        again = make_runner(procs, 2, parallel="processes", batch_size=24, workers=pool)
        try:
            assert again.workers[0].proc is not first
            assert again.ready(wait=True)
            again.train_step(x, y, Adam(0.01))
        finally:
            again.close()


def test_every_setting_reaches_the_workers():
    """Settings reach a worker through one function (``worker_settings``, all of
    ``get_config()``), applied there by ``set_config``: the worker says what it applied."""
    from cnnstep.config import config_context, get_config

    assert worker_settings() == get_config()
    # a value other than the default for each setting (a new one must be added here)
    others = {"threads": 3, "workspace_budget": 16384, "memory_budget": 5 << 20,
              "backend": "numpy" if get_config()["backend"] == "auto" else "auto"}
    assert set(others) == set(get_config())
    with config_context(**others):
        _, dp, _, pp = _pair()
        try:
            assert [w.settings for w in pp.workers] == [get_config()]
            assert get_config() == {**get_config(), **others}
        finally:
            dp.close()
            pp.close()


def test_auto_leaves_models_with_layers_from_elsewhere_on_threads():
    from cnnstep.nn.layers.core import ReLU

    class MyReLU(ReLU):  # defined here: a worker could not rebuild it by name
        pass

    model = Sequential([Flatten(), MyReLU(), Dense(2)], (8, 8, 1))
    runner = make_runner(model, 2, steps=10**6)
    try:
        assert type(runner) is DataParallel
    finally:
        runner.close()


def _children() -> set[int]:
    pids: set[int] = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            pids.update(int(p) for p in f.read().split())
    return pids


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task"), reason="reads /proc")
def test_a_returned_fit_leaves_no_process_behind():
    x, y = _toy_data(m=48)
    before = _children()
    model = _small_model(seed=1, dropout=False)
    model.fit(x, y, epochs=2, batch_size=16, threads=2, parallel="processes")
    assert _children() - before == set()


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task"), reason="reads /proc")
def test_fits_inside_a_pool_block_share_their_workers_until_it_ends():
    x, y = _toy_data(m=48)
    before = _children()
    model = _small_model(seed=1, dropout=False)
    with WorkerPool() as pool:
        seen = []
        for _ in range(3):  # as a grid search's fits of one model
            model.fit(x, y, epochs=1, batch_size=16, threads=2, parallel="processes")
            seen.append({p.pid for p in pool.processes()})
        assert seen[0] and seen[0] == seen[1] == seen[2]  # started once, kept between fits
        assert _children() - before == seen[0]
    assert _children() - before == set()


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task"), reason="reads /proc")
@pytest.mark.parametrize("keep", ["process-wide", "a pool"])
def test_a_fit_asked_to_keep_its_workers_keeps_them_for_the_next(keep):
    from cnnstep.train.pool import close_idle_workers

    x, y = _toy_data(m=48)
    before = _children()
    model = _small_model(seed=1, dropout=False)
    pool = WorkerPool() if keep == "a pool" else None
    keep_workers = pool if pool is not None else True
    try:
        model.fit(x, y, epochs=1, batch_size=16, threads=2, parallel="processes",
                  keep_workers=keep_workers)
        kept = _children() - before
        assert kept  # asked for: alive after fit returned
        model.fit(x, y, epochs=1, batch_size=16, threads=2, parallel="processes",
                  keep_workers=keep_workers)
        assert _children() - before == kept  # the same ones, not started again
    finally:
        pool.close() if pool is not None else close_idle_workers()
    assert _children() - before == set()
    with pytest.raises(TypeError, match="keep_workers: expected True, False or a WorkerPool"):
        model.fit(x, y, epochs=1, keep_workers="yes")
