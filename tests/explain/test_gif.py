"""A GIF's frame count equals its trace's steps."""

import numpy as np
import pytest

from cnnstep import explain

Image = pytest.importorskip("PIL.Image", reason="Pillow (the explain extra) not installed")


def test_gif_has_one_frame_per_step(tmp_path):
    from cnnstep.explain.gif import save_gif

    A = np.random.default_rng(0).standard_normal((1, 5, 4, 2))
    trace = explain.conv_forward(A, np.ones((3, 2, 2, 2)), np.zeros((1, 1, 1, 2)),
                                 {"stride": (2, 1), "pad": "same"})
    path = tmp_path / "conv.gif"
    save_gif(trace, str(path))
    with Image.open(path) as im:
        assert im.n_frames == len(trace.steps) == 3 * 4 * 2
