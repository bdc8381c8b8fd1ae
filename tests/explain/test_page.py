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


def _decoded(page):
    import base64
    import io

    return [Image.open(io.BytesIO(base64.b64decode(src)))
            for src in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_a_colour_input_is_one_colour_image_and_a_binary_model_shows_two_classes():
    model = build_architecture("happy", (16, 16, 3), 2, seed=0, class_names=["sad", "happy"])
    image = np.zeros((16, 16, 3), np.float32)
    image[..., 0] = 1.0  # pure red
    image[8:, :, 2] = 0.5
    page = model_page(model, image)
    first = _decoded(page)[0]
    assert first.mode == "RGB"
    pixels = np.asarray(first)
    assert tuple(pixels[0, 0]) == (255, 0, 0) and tuple(pixels[-1, -1]) == (255, 0, 128)
    # one image for the input, then the 32 maps of each map-shaped layer
    assert page.count('alt="input"') == 1 and 'alt="map' not in page.split("<h2>0.")[0]
    probs = model.predict_proba(image[None])[0]
    shown = re.findall(r"<td>(sad|happy)</td><td>([-0-9.]*)</td><td>([0-9.]+)</td>", page)
    assert {name: float(p) for name, _, p in shown} == pytest.approx(
        {"sad": probs[0], "happy": probs[1]}, abs=1e-3)
    assert ">sigmoid<" in page


def test_a_colour_input_outside_0_1_keeps_its_channel_balance():
    model = build_architecture("default", (8, 8, 3), 2, seed=0)
    image = np.full((8, 8, 3), -2.0, np.float32)
    image[..., 1] = 2.0
    pixels = np.asarray(_decoded(model_page(model, image))[0])
    assert tuple(pixels[0, 0]) == (0, 255, 0)
