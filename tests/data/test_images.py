"""Reading image files."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep.data.images import image_size, load_image
from cnnstep.errors import DataError

Image = pytest.importorskip("PIL.Image")


def test_grayscale_rgb_resize(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray).save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert x.shape == (3, 4, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], gray / 255.0)
    assert load_image(tmp_path / "g.png", channels=3).shape == (3, 4, 3)
    assert load_image(tmp_path / "g.png", size=(6, 8)).shape == (6, 8, 1)
    rgba = np.zeros((2, 2, 4), np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    assert load_image(tmp_path / "c.png").shape == (2, 2, 3)
    assert load_image(tmp_path / "c.png", channels=1).shape == (2, 2, 1)


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((2, 4, 3), np.uint8)  # 2 rows, 4 columns as stored
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "phone.jpg", exif=exif)
    assert image_size(tmp_path / "phone.jpg") == (4, 2)
    assert load_image(tmp_path / "phone.jpg").shape == (4, 2, 3)


def test_unreadable_files_are_data_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad.png: not a readable image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"missing.png: no such file"):
        image_size(tmp_path / "missing.png")
