"""Ops on several threads (``cnnstep.ops.set_num_threads``): the batch split in parts gives the
results of one thread (convolutions up to float rounding: each part is a product of fewer rows,
on a BLAS held to one thread; pooling exactly), small ops stay whole, and nothing splits twice."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from rounding import assert_equal_up_to_rounding, conv_abs_sums, conv_terms

from cnnstep.ops import (
    conv_backward,
    conv_forward,
    get_num_threads,
    pool_backward,
    pool_forward,
    set_num_threads,
)
from cnnstep.ops.kernels import threads as op_threads


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads per op, and every op big enough to split (the thresholds at 0)."""
    monkeypatch.setitem(op_threads.MIN_WORK, "conv", 0)
    monkeypatch.setitem(op_threads.MIN_WORK, "pool", 0)
    before = get_num_threads()
    set_num_threads(2)
    yield
    set_num_threads(before)


def _parts_seen(monkeypatch) -> list[int]:
    """Record the number of parts each split op runs."""
    seen: list[int] = []
    real = op_threads.run_parts

    def counting(fn, parts):
        seen.append(len(parts))
        return real(fn, parts)

    for module in ("conv", "conv_grads", "pool"):
        monkeypatch.setattr(f"cnnstep.ops.kernels.{module}.run_parts", counting)
    return seen


@pytest.mark.parametrize("n_C_prev, stride, pad", [(3, 1, 2), (16, 1, "same"), (8, 2, 1)])
def test_a_split_convolution_equals_one_thread(two_threads, monkeypatch, n_C_prev, stride, pad):
    rng = np.random.default_rng(n_C_prev)
    A = rng.standard_normal((5, 9, 8, n_C_prev)).astype(np.float32)
    W = rng.standard_normal((3, 3, n_C_prev, 4)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, 4)).astype(np.float32)
    hp = {"stride": stride, "pad": pad}
    seen = _parts_seen(monkeypatch)
    Z, cache = conv_forward(A, W, b, hp)
    dZ = rng.standard_normal(Z.shape).astype(np.float32)
    split = conv_backward(dZ, cache)
    assert seen == [2, 2]
    set_num_threads(1)
    Z1, cache1 = conv_forward(A, W, b, hp)
    whole = conv_backward(dZ, cache1)
    # BLAS rounds a row differently in a product of fewer rows and with another thread count
    n = conv_terms(A, W, dZ)
    assert_equal_up_to_rounding(Z, Z1, conv_abs_sums(A, W, b, hp), n)
    for got, want, abs_sums in zip(split, whole, conv_abs_sums(A, W, b, hp, dZ)):
        assert_equal_up_to_rounding(got, want, abs_sums, n)


@pytest.mark.parametrize("mode", ["max", "average"])
def test_a_split_pooling_equals_one_thread(two_threads, monkeypatch, mode):
    rng = np.random.default_rng(7)
    A = rng.integers(0, 3, (5, 8, 8, 3)).astype(np.float64)  # ties included
    hp = {"f": 3, "stride": 2, "pad": 1}
    seen = _parts_seen(monkeypatch)
    out, cache = pool_forward(A, hp, mode)
    dA = rng.standard_normal(out.shape)
    split = pool_backward(dA, cache, mode)
    assert seen == [2, 2]
    set_num_threads(1)
    np.testing.assert_array_equal(out, pool_forward(A, hp, mode)[0])
    np.testing.assert_array_equal(split, pool_backward(dA, cache, mode))


def test_small_ops_one_example_and_parts_inside_a_part_stay_whole(monkeypatch):
    set_num_threads(2)
    try:
        seen = _parts_seen(monkeypatch)
        A = np.ones((4, 5, 5, 2))
        W = np.ones((3, 3, 2, 2))
        conv_forward(A, W, np.zeros((1, 1, 1, 2)), {"stride": 1, "pad": 1})  # small: whole
        monkeypatch.setitem(op_threads.MIN_WORK, "conv", 0)
        conv_forward(A[:1], W, np.zeros((1, 1, 1, 2)), {"stride": 1, "pad": 1})  # m = 1
        with op_threads.serial():  # a training thread's part of a batch
            conv_forward(A, W, np.zeros((1, 1, 1, 2)), {"stride": 1, "pad": 1})
        assert seen == []
    finally:
        set_num_threads(1)


def test_an_error_in_a_part_reaches_the_caller_and_the_pool_survives(two_threads):
    def part(s: slice) -> int:
        if s.start == 0:
            raise ValueError("first part")
        return threading.get_ident()

    with pytest.raises(ValueError, match="first part"):
        op_threads.run_parts(part, [slice(0, 1), slice(1, 2)])
    assert len(op_threads.run_parts(lambda s: s.start, [slice(0, 1), slice(1, 2)])) == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="n: expected a positive number of threads"):
        set_num_threads(bad)
