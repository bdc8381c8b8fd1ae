"""Draw the pictures of the eight functions (docs/img/) with cnnstep's own ``explain``.

Run from the repository root: ``PYTHONPATH=src python docs/make_pictures.py [OUT_DIR]``. Each
picture is a step of a trace, computed by running the operation (``cnnstep.explain``) and drawn
by ``cnnstep.explain.gif`` (Pillow, the ``explain`` extra): the input (padded where there is
padding), the window of that step outlined in red, and the value computed there below it.
The files are committed (the README shows them too); ``tests/docs`` runs this into a temporary
folder so that it keeps working.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cnnstep import explain
from cnnstep.explain.gif import render_frames, save_gif

OUT = Path(__file__).parent / "img"


def main(out: Path = OUT) -> list[Path]:
    """Write every picture into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    A = np.round(rng.standard_normal((1, 5, 5, 1)), 1)
    W = np.round(rng.standard_normal((3, 3, 1, 1)), 1)
    b = np.zeros((1, 1, 1, 1))
    hp = {"stride": 2, "pad": 1}
    conv = explain.conv_forward(A, W, b, hp)
    dZ = np.round(rng.standard_normal(conv.output.shape), 1)
    max_pool = explain.pool_forward(A, {"f": 2, "stride": 1}, mode="max")
    dA = np.round(rng.standard_normal(max_pool.output.shape), 1)
    frames = {
        "zero_pad.png": (explain.zero_pad(A, 1), 6),
        "conv_single_step.png": (conv, 4),
        "pool.png": (max_pool, 5),
        "pool_average.png": (explain.pool_forward(A, {"f": 3, "stride": 1}, mode="average"), 4),
        "conv_backward.png": (explain.conv_backward(dZ, (A, W, b, hp)), 4),
        "pool_backward.png": (explain.pool_backward(dA, (A, {"f": 2, "stride": 1})), 5),
    }
    written = []
    for name, (trace, step) in frames.items():
        render_frames(trace)[step].save(out / name)
        written.append(out / name)
    save_gif(conv, str(out / "conv.gif"))
    (out / "conv.html").write_text(explain.render_html(conv), encoding="utf-8")
    (out / "conv.txt").write_text(explain.render_text(conv), encoding="utf-8")
    return [*written, out / "conv.gif", out / "conv.html", out / "conv.txt"]


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(path)
