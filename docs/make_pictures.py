"""Regenerate the README pictures of `cnnstep explain` (docs/img/): run from the repo root."""

from pathlib import Path

import numpy as np

from cnnstep import explain
from cnnstep.explain.gif import render_frames, save_gif

OUT = Path(__file__).parent / "img"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    A = np.round(rng.standard_normal((1, 5, 5, 1)), 1)
    conv = explain.conv_forward(A, np.round(rng.standard_normal((3, 3, 1, 1)), 1),
                                np.zeros((1, 1, 1, 1)), {"stride": 2, "pad": 1})
    save_gif(conv, str(OUT / "conv.gif"))
    pool = explain.pool_forward(A, {"f": 2, "stride": 1}, mode="max")
    render_frames(pool)[5].save(OUT / "pool.png")
    (OUT / "conv.html").write_text(explain.render_html(conv))
    (OUT / "conv.txt").write_text(explain.render_text(conv))


if __name__ == "__main__":
    main()
