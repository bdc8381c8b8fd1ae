"""The padded pooling the Keras export builds from unpadded poolings over crops
(:func:`cnnstep.interop.layout.pool_segments`) is cnnstep's padded pooling, for any size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnstep.interop.layout import pool_segments
from cnnstep.ops.functional import pool_forward


@st.composite
def geometries(draw):
    kernel = draw(st.integers(1, 6))
    stride = draw(st.integers(1, 5))
    pads = (draw(st.integers(0, kernel - 1)), draw(st.integers(0, kernel - 1)))
    n = draw(st.integers(max(1, kernel - sum(pads)), 30))
    return n, kernel, stride, pads


@given(geometries(), st.sampled_from(["max", "average"]), st.integers(0, 2**32 - 1))
def test_segments_pool_what_cnnstep_pools(geometry, mode, seed):
    n, kernel, stride, pads = geometry
    x = -1 - np.random.default_rng(seed).random(n)  # all negative: a padded 0 would win a max
    reduce = np.max if mode == "max" else np.mean
    pieces = []
    for seg in pool_segments(n, kernel, stride, pads):
        crop = x[seg.start:seg.start + seg.length]
        assert seg.kernel <= seg.length and (seg.length - seg.kernel) // seg.stride + 1 == seg.n_out
        pieces += [reduce(crop[j * seg.stride:j * seg.stride + seg.kernel])
                   for j in range(seg.n_out)]
    expected, _ = pool_forward(x.reshape(1, n, 1, 1),
                               {"f": (kernel, 1), "stride": (stride, 1),
                                "pad": (pads, (0, 0))}, mode=mode)
    np.testing.assert_allclose(pieces, expected.reshape(-1), rtol=1e-12)


def test_whole_windows_are_one_segment():
    (seg,) = pool_segments(28, 2, 2, (0, 0))
    assert seg == (0, 28, 2, 2, 14)
    top, middle, bottom = pool_segments(28, 8, 8, (2, 2))  # "same": 4 windows, 2 clipped
    assert (top.start, top.kernel, top.n_out) == (0, 6, 1)
    assert (middle.start, middle.length, middle.kernel, middle.n_out) == (6, 16, 8, 2)
    assert (bottom.start, bottom.kernel) == (22, 6)


def test_a_window_of_padding_only_is_refused():
    with pytest.raises(ValueError, match="holds no real cell"):
        pool_segments(2, 3, 1, (3, 0))
