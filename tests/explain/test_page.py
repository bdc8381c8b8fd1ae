"""``cnnstep explain MODEL IMAGE``: the image through every layer, one self-contained page."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnstep.cli.main import main
from cnnstep.explain.page import MAX_MAPS, model_page
from cnnstep.nn.architectures import build_architecture

Image = pytest.importorskip("PIL.Image", reason="needs Pillow (the explain extra)")


def _model():
    return build_architecture("default", (12, 12, 1), 3, seed=0, class_names=["a", "b", "c"])


def test_page_shows_every_layer_its_maps_and_the_softmax():
    model = _model()
    image = np.random.default_rng(0).random((12, 12, 1)).astype(np.float32)
    page = model_page(model, image)
    assert page.startswith("<!DOCTYPE html>") and "http" not in page  # nothing fetched
    for i, layer in enumerate(model.layers):
        assert f"<h2>{i}. {layer.describe()}" in page
    # input 1 map, conv 16 + relu 16 + pool 16, conv 32 + relu 32 + pool 32
    assert page.count('src="data:image/png;base64,') == 1 + 3 * 16 + 3 * min(32, MAX_MAPS)
    probs = model.predict_proba(image[None])[0]
    shown = [float(v) for v in re.findall(r"<td>[abc]</td><td>[-0-9.]+</td><td>([0-9.]+)</td>",
                                          page)]
    assert sorted(shown, reverse=True) == pytest.approx(sorted(probs, reverse=True), abs=1e-3)
    with pytest.raises(ValueError, match="input shape"):
        model_page(model, image[:6])


def test_cli_model_page_and_its_errors(tmp_path, capsys):
    path = tmp_path / "m.npz"
    _model().save(path)
    png = tmp_path / "digit.png"
    Image.fromarray(np.uint8(np.random.default_rng(1).random((20, 16)) * 255)).save(png)
    out = tmp_path / "page.html"
    assert main(["explain", str(path), str(png), "--out", str(out)]) == 0
    assert out.read_text().count("<h2>") == 1 + 8
    assert main(["explain", str(path), str(png), "--out", str(tmp_path / "p.txt")]) == 2
    assert main(["explain", str(path), "--out", str(out)]) == 2
    assert main(["explain", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 3 and "Traceback" not in err
