"""NaN and infinities through the layers' passes land where the loops put them, on NumPy's
kernels and on oneDNN's (where installed): the same cells NaN, +inf and -inf."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from onednn_helpers import onednn_on

from cnnstep import reference
from cnnstep.backends import (
    conv2d_backward,
    conv2d_forward,
    onednn,
    pool2d_backward,
    pool2d_forward,
)
from cnnstep.config import config_context

pytestmark = pytest.mark.usefixtures(onednn_on.__name__)

BACKENDS = ["numpy"] + (["auto"] if onednn.available() else [])


def assert_same_pattern(got, want):
    for f in (np.isnan, np.isposinf, np.isneginf):
        assert np.array_equal(f(got), f(want)), f.__name__


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_C_prev, stride, pad", [(1, 1, "same"), (3, 1, 1), (8, 1, "same"),
                                                   (8, 2, 1)])
@pytest.mark.parametrize("where, value", list(itertools.product(["A", "dZ", "W"],
                                                                [np.nan, np.inf, -np.inf])))
def test_a_convolution_layer_pass_gives_the_loops_pattern(backend, n_C_prev, stride, pad, where,
                                                          value):
    rng = np.random.default_rng(n_C_prev)
    A = rng.standard_normal((2, 7, 7, n_C_prev)).astype(np.float32)
    W = rng.standard_normal((3, 3, n_C_prev, 6)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, 6)).astype(np.float32)
    hp = {"stride": stride, "pad": pad}
    with np.errstate(all="ignore"), config_context(backend=backend):
        for place in [(0, 0), (3, 4), (6, 6)]:
            A_x, W_x = A.copy(), W.copy()
            if where == "A":
                A_x[0, place[0], place[1], 0] = value
            if where == "W":
                W_x[min(place[0], 2), min(place[1], 2), 0, 2] = value
            Z_ref, cache = reference.conv_forward(A_x.astype(np.float64),
                                                  W_x.astype(np.float64),
                                                  b.astype(np.float64), hp)
            dZ = rng.standard_normal(Z_ref.shape).astype(np.float32)
            if where == "dZ":
                dZ[1, min(place[0], dZ.shape[1] - 1), min(place[1], dZ.shape[2] - 1), 2] = value
            Z, ctx = conv2d_forward(A_x, W_x, b, hp, training=True)
            # weights that are not finite run on NumPy (oneDNN's input gradient multiplies
            # them with padding)
            on = "onednn" if backend == "auto" and where != "W" else "numpy"
            assert ctx is not None and ctx.backend == on
            assert_same_pattern(Z, Z_ref)
            for got, want in zip(conv2d_backward(dZ, ctx),
                                 reference.conv_backward(dZ.astype(np.float64), cache)):
                assert_same_pattern(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_pooling_layer_pass_gives_the_loops_pattern(backend, mode, value):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((2, 8, 8, 16)).astype(np.float32)
    A[0, 3, 4, 2] = value
    A[1, 0, 0, 5] = value
    hp = {"f": 3, "stride": 2, "pad": 1}
    with np.errstate(all="ignore"), config_context(backend=backend):
        want, cache = reference.pool_forward(A.astype(np.float64), hp, mode)
        out, ctx = pool2d_forward(A, hp, mode, training=True)
        assert_same_pattern(out, want)
        dA = rng.standard_normal(out.shape).astype(np.float32)
        assert_same_pattern(pool2d_backward(dA, ctx),
                            reference.pool_backward(dA.astype(np.float64), cache, mode))
