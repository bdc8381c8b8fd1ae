"""Property tests: the fast functions equal the reference loops on random small problems."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import cnnstep
import cnnstep.reference as reference
from cnnstep.ops.geometry import conv_geometry, pool_geometry

small = st.integers(1, 3)
side = st.integers(1, 7)
pair_or_int = lambda lo, hi: st.one_of(  # noqa: E731
    st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi))
)
explicit_pads = st.one_of(
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
              st.tuples(st.integers(0, 2), st.integers(0, 2))),
)
pads = st.one_of(explicit_pads, st.sampled_from(["same", "valid"]))
dtypes = st.sampled_from([np.float64, np.float32])
finite = dict(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10, width=32)


@st.composite
def conv_problems(draw):
    m, H, W_, C, n_C = draw(small), draw(side), draw(side), draw(small), draw(small)
    f_h, f_w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    hp = {"stride": draw(pair_or_int(1, 3)), "pad": draw(pads),
          "dilation": draw(pair_or_int(1, 2))}
    dtype = draw(dtypes)
    A_prev = draw(arrays(dtype, (m, H, W_, C), elements=st.floats(**finite)))
    W = draw(arrays(dtype, (f_h, f_w, C, n_C), elements=st.floats(**finite)))
    b = draw(arrays(dtype, (1, 1, 1, n_C), elements=st.floats(**finite)))
    try:
        geom = conv_geometry(A_prev, W, b, hp)
    except ValueError:
        assume(False)
    dZ = draw(arrays(dtype, (m, *geom.out_hw, n_C), elements=st.floats(**finite)))
    return A_prev, W, b, hp, dZ


def _close(a, b, dtype):
    tol = 1e-9 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 10)


@given(conv_problems())
def test_conv_fast_equals_reference(problem):
    A_prev, W, b, hp, dZ = problem
    Z, cache = cnnstep.conv_forward(A_prev, W, b, hp)
    Z_ref, cache_ref = reference.conv_forward(A_prev, W, b, hp)
    assert Z.shape == Z_ref.shape and Z.dtype == Z_ref.dtype == A_prev.dtype
    _close(Z, Z_ref, A_prev.dtype)
    for got, want in zip(cnnstep.conv_backward(dZ, cache), reference.conv_backward(dZ, cache_ref)):
        assert got.shape == want.shape and got.dtype == want.dtype
        _close(got, want, A_prev.dtype)


@st.composite
def pool_problems(draw):
    m, H, W_, C = draw(small), draw(side), draw(side), draw(small)
    f = draw(pair_or_int(1, 3))
    hp = {"f": f, "stride": draw(pair_or_int(1, 3)), "pad": draw(pads)}
    dtype = draw(dtypes)
    # Few distinct values: ties are common, which is where max pooling goes wrong.
    values = st.one_of(st.integers(-2, 2).map(float), st.floats(**finite))
    A_prev = draw(arrays(dtype, (m, H, W_, C), elements=values))
    try:
        geom = pool_geometry(A_prev, hp)
    except ValueError:
        assume(False)
    dA = draw(arrays(dtype, (m, *geom.out_hw, C), elements=st.floats(**finite)))
    return A_prev, hp, dA


@given(pool_problems(), st.sampled_from(["max", "average"]))
def test_pool_fast_equals_reference(problem, mode):
    A_prev, hp, dA = problem
    A, cache = cnnstep.pool_forward(A_prev, hp, mode=mode)
    A_ref, cache_ref = reference.pool_forward(A_prev, hp, mode=mode)
    assert A.shape == A_ref.shape and A.dtype == A_ref.dtype == A_prev.dtype
    _close(A, A_ref, A_prev.dtype)
    dA_prev = cnnstep.pool_backward(dA, cache, mode=mode)
    dA_prev_ref = reference.pool_backward(dA, cache_ref, mode=mode)
    assert dA_prev.shape == A_prev.shape and dA_prev.dtype == A_prev.dtype
    _close(dA_prev, dA_prev_ref, A_prev.dtype)
    if mode == "max":
        # Every window hands its whole gradient to exactly one cell.
        assert np.isclose(dA_prev.sum(dtype=np.float64), dA.sum(dtype=np.float64),
                          rtol=1e-4, atol=1e-3)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4)),
              elements=st.integers(-3, 3).map(float)))
def test_mask_marks_exactly_the_first_maximum(x):
    mask = cnnstep.create_mask_from_window(x)
    assert mask.sum() == 1
    np.testing.assert_array_equal(mask, reference.create_mask_from_window(x))
    first = np.flatnonzero(x.reshape(-1) == x.max())[0]
    assert mask.reshape(-1)[first]


@given(st.floats(-1e6, 1e6), st.integers(1, 5), st.integers(1, 5))
def test_distribute_value_sums_back(dz, n_H, n_W):
    a = cnnstep.distribute_value(dz, (n_H, n_W))
    assert a.shape == (n_H, n_W)
    np.testing.assert_allclose(a.sum(), dz, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(a, reference.distribute_value(dz, (n_H, n_W)))


@given(arrays(np.float64, st.tuples(small, side, side, small), elements=st.floats(**finite)),
       explicit_pads)
def test_zero_pad_fast_equals_reference(X, pad):
    np.testing.assert_array_equal(cnnstep.zero_pad(X, pad), reference.zero_pad(X, pad))


@given(arrays(np.float64, (3, 3, 2), elements=st.floats(**finite)),
       arrays(np.float64, (3, 3, 2), elements=st.floats(**finite)),
       st.floats(**finite))
def test_conv_single_step_fast_equals_reference(a, W, b):
    b = np.array(b).reshape(1, 1, 1)
    assert np.isclose(cnnstep.conv_single_step(a, W, b), reference.conv_single_step(a, W, b),
                      rtol=1e-12, atol=1e-9)
