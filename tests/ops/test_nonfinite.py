"""NaN and infinities land where the loops of ``cnnstep.reference`` put them, on every route of
the vectorized convolution: the same cells NaN, +inf and -inf, forward and backward.

The routes that multiply zeros the loops never multiply (the wide windows of few-channel inputs,
the correlations that give dW from dZ's windows) must not spread a NaN or turn an infinity
into NaN (inf * 0); the routes that skip padding the loops multiply must not lose a NaN."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cnnstep import reference
from cnnstep.ops import conv_backward, conv_forward, get_num_threads, set_num_threads
from cnnstep.ops.kernels import conv as conv_kernels
from cnnstep.ops.kernels import threads as op_threads
from cnnstep.ops.kernels.conv_grads import conv_grads


def pattern(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.isnan(a), np.isposinf(a), np.isneginf(a)


def assert_same_pattern(got: np.ndarray, want: np.ndarray) -> None:
    for g, w, what in zip(pattern(got), pattern(want), ("NaN", "+inf", "-inf")):
        assert np.array_equal(g, w), f"{what} at {np.argwhere(g != w)[:5].tolist()} differs"


# (channels in, stride, pad, kernel): the wide windows (<= 4 channels, a stride shorter than
# the kernel) with the planar input gradient (< 8 channels, or up to 16 in place of the
# scatter), plain windows (stride as long as the kernel), the correlation (8+ channels, stride
# 1), stride phases (kernel 4 stride 2), the scatter (3x3 stride 2, 17 channels), and a 1x1
# convolution (one product each way)
ROUTES = [(1, 1, "same", 3), (3, 1, 1, 3), (3, 2, 0, 3), (3, 3, 1, 3), (6, 1, 1, 3),
          (8, 1, "same", 3), (8, 1, "valid", 3), (8, 2, 1, 4), (8, 2, 1, 3), (17, 2, 1, 3),
          (5, 1, 0, 1)]
PLACES = [(0, 0), (3, 4), (0, 6), (6, 6)]


def _case(n_C_prev, stride, pad, f, where, value, place, dtype=np.float32):
    rng = np.random.default_rng(n_C_prev * 7 + f)
    A = rng.standard_normal((2, 7, 7, n_C_prev)).astype(dtype)
    W = rng.standard_normal((f, f, n_C_prev, 6)).astype(dtype)
    b = rng.standard_normal((1, 1, 1, 6)).astype(dtype)
    hp = {"stride": stride, "pad": pad}
    if where == "A":
        A[0, place[0], place[1], 0] = value
    if where == "W":  # a weight: every output channel 2 it reaches, and the input gradient
        W[min(place[0], f - 1), min(place[1], f - 1), 0, 2] = value
    Z_ref, cache_ref = reference.conv_forward(A.astype(np.float64), W.astype(np.float64),
                                              b.astype(np.float64), hp)
    dZ = rng.standard_normal(Z_ref.shape).astype(dtype)
    if where == "dZ":
        dZ[1, min(place[0], dZ.shape[1] - 1), min(place[1], dZ.shape[2] - 1), 2] = value
    grads_ref = reference.conv_backward(dZ.astype(np.float64), cache_ref)
    return A, W, b, hp, dZ, Z_ref, grads_ref


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("where, value", list(itertools.product(
    ["A", "dZ", "W"], [np.nan, np.inf, -np.inf])))
def test_the_functions_give_the_loops_pattern(route, where, value):
    with np.errstate(all="ignore"):
        for place in PLACES:
            A, W, b, hp, dZ, Z_ref, grads_ref = _case(*route, where, value, place)
            Z, cache = conv_forward(A, W, b, hp)
            assert_same_pattern(Z, Z_ref)
            for got, want in zip(conv_backward(dZ, cache), grads_ref):
                assert_same_pattern(got, want)


@pytest.mark.parametrize("route", [(1, 1, "same", 3), (3, 1, 1, 3), (3, 2, 1, 3)])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_kept_windows_and_first_layers_give_the_loops_pattern(route, value):
    """A layer's training pass keeps its window matrix for few channels; with a NaN or an
    infinity in the input it keeps the plain one, which the backward pass reads as such."""
    with np.errstate(all="ignore"):
        for place in PLACES:
            A, W, b, hp, dZ, Z_ref, grads_ref = _case(*route, "A", value, place)
            Z, cache, windows = conv_kernels.conv_forward_windows(A, W, b, hp)
            assert windows is not None
            assert_same_pattern(Z, Z_ref)
            dA, dW, db = conv_grads(dZ, cache, need_dA_prev=False, windows=windows)
            assert dA is None
            assert_same_pattern(dW, grads_ref[1])
            assert_same_pattern(db, grads_ref[2])
            # the same input finite: the wide layout (where it applies), refused for the other
            finite = np.nan_to_num(A, nan=0.0, posinf=0.0, neginf=0.0)
            _, cache2, wide = conv_kernels.conv_forward_windows(finite, W, b, hp)
            if wide is not None and wide.shape != windows.shape:
                with pytest.raises(ValueError, match="windows must be the window matrix"):
                    conv_grads(dZ, cache2, windows=windows[:, :-1])


def test_split_between_threads_gives_the_loops_pattern():
    before = get_num_threads()
    set_num_threads(2)
    try:
        with np.errstate(all="ignore"):
            for route in [(1, 1, "same", 3), (8, 1, "same", 3)]:
                A, W, b, hp, dZ, Z_ref, grads_ref = _case(*route, "A", np.inf, (0, 0))
                parts = op_threads.MIN_WORK["conv"]
                op_threads.MIN_WORK["conv"] = 0
                try:
                    Z, cache = conv_forward(A, W, b, hp)
                    grads = conv_backward(dZ, cache)
                finally:
                    op_threads.MIN_WORK["conv"] = parts
                assert_same_pattern(Z, Z_ref)
                for got, want in zip(grads, grads_ref):
                    assert_same_pattern(got, want)
    finally:
        set_num_threads(before)


def test_a_finite_input_keeps_the_wide_windows():
    """The check that sends non-finite inputs down the exact route leaves finite ones alone."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 9, 9, 1)).astype(np.float32)
    W = rng.standard_normal((3, 3, 1, 4)).astype(np.float32)
    b = np.zeros((1, 1, 1, 4), np.float32)
    _, _, windows = conv_kernels.conv_forward_windows(A, W, b, {"stride": 1, "pad": 1})
    assert windows is not None and windows.shape != (2 * 9 * 9, 9)  # the wide layout
    A[0, 0, 0, 0] = np.nan
    with np.errstate(all="ignore"):
        _, _, windows = conv_kernels.conv_forward_windows(A, W, b, {"stride": 1, "pad": 1})
    assert windows is not None and windows.shape == (2 * 9 * 9, 9)  # the plain one
