"""Batch normalisation under the thread and process split: each part is normalised with its own
statistics, the running statistics move once per step with the whole batch's, and evaluation
in the workers uses the main process's running statistics."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep import (
    SGD,
    BatchNorm2D,
    Conv2D,
    Dense,
    GlobalAvgPool2D,
    ReLU,
    Residual,
    Sequential,
)
from cnnstep.nn.layers import walk
from cnnstep.nn.losses import classification_loss
from cnnstep.train.parallel import DataParallel, split_rows
from cnnstep.train.processes import close_idle_workers
from cnnstep.train.runners import make_runner


def _model():
    return Sequential([
        Conv2D(4, 3), BatchNorm2D(momentum=0.5), ReLU(),
        Residual([Conv2D(4, 3), BatchNorm2D(momentum=0.5)]), ReLU(),
        GlobalAvgPool2D(), Dense(3),
    ], (6, 6, 2), seed=0)


def _data(m=12, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(2.0, 1.5, (m, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, m)


def _expected_step(x, y, n, lr):
    """One SGD step by hand: each part forward/backward on its own replica (its own batch
    statistics), gradients summed; each running statistic from the mean and (biased) variance,
    in float64, of everything its layer saw in all the parts."""
    model = _model()
    parts = split_rows(len(y), n)
    grads, seen = None, {}
    for a, b in parts:
        part = model.replica()
        for i, layer in enumerate(walk(part.layers)):
            if isinstance(layer, BatchNorm2D):
                layer.forward = _recording(layer.forward, seen.setdefault(i, []))
        logits = part.forward(x[a:b], training=True)
        _, d, _ = classification_loss(logits, y[a:b])
        part.backward(d * np.float32((b - a) / len(y)), need_input_grad=False)
        g = [gi.copy() for gi in part.gradients()]
        grads = g if grads is None else [p + q for p, q in zip(grads, g)]
    state = []
    for inputs in seen.values():
        values = np.concatenate([v.reshape(-1, v.shape[-1]) for v in inputs]).astype(np.float64)
        state += [0.5 * values.mean(axis=0), 0.5 + 0.5 * values.var(axis=0)]
    new_params = [p - np.float32(lr) * g for p, g in zip(model.parameters(), grads)]
    return new_params, state


def _recording(forward, into):
    def run(x, training=False):
        into.append(x.copy())
        return forward(x, training)
    return run


@pytest.mark.parametrize("n", [2, 3])
def test_threads_normalise_per_part_and_update_the_running_statistics_once(n):
    x, y = _data()
    model = _model()
    runner = DataParallel(model, n)
    try:
        runner.train_step(x, y, SGD(0.1))
    finally:
        runner.close()
    params, state = _expected_step(x, y, n, 0.1)
    for got, want in zip(model.parameters(), params):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for got, want in zip(model.state_arrays(), state):
        # float64 sums of float32 values, stored in float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not np.array_equal(model.state_arrays()[0], 0)


def test_a_shorter_batch_counts_only_the_parts_that_ran():
    def first_layer_model():
        return Sequential([BatchNorm2D(momentum=0.5), GlobalAvgPool2D(), Dense(3)], (6, 6, 2))

    x, y = _data(13)
    model = first_layer_model()
    runner = DataParallel(model, 3)
    try:
        runner.train_step(x, y, SGD(1e-3))
        runner.train_step(x[:1], y[:1], SGD(1e-3))  # one part: the others' are last step's
    finally:
        runner.close()
    want = first_layer_model()
    want.forward(x, training=True)
    want.forward(x[:1], training=True)
    for got, ref in zip(model.state_arrays(), want.state_arrays()):
        np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_worker_processes_give_what_threads_give_and_evaluate_with_the_running_statistics():
    x, y = _data(24, seed=2)
    threads, procs = _model(), _model()
    dp = DataParallel(threads, 2)
    pp = make_runner(procs, 2, parallel="processes", batch_size=24)
    try:
        assert pp.ready(wait=True), "the workers did not start"
        assert pp.layout.state_shapes == ((4,), (4,), (4,), (4,))
        assert pp.layout.stat_shapes == ((3, 4), (3, 4))
        for _ in range(3):
            loss_p, _ = pp.train_step(x, y, SGD(0.05))
            loss_t, _ = dp.train_step(x, y, SGD(0.05))
            assert loss_p == pytest.approx(loss_t, rel=1e-6)
        for a, b in zip(procs.parameters() + procs.state_arrays(),
                        threads.parameters() + threads.state_arrays()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        result = pp.evaluate(x, y)
        want = procs.evaluate(x, y)  # one process, inference with the same running statistics
        assert result["accuracy"] == pytest.approx(want["accuracy"])
        assert result["loss"] == pytest.approx(want["loss"], rel=1e-5)
    finally:
        dp.close()
        pp.close()
        close_idle_workers()


def test_fit_with_threads_keeps_batch_normalisation_models_in_parallel():
    model = _model()
    runner = make_runner(model, 2, parallel="threads")
    try:
        assert isinstance(runner, DataParallel)
    finally:
        runner.close()
