"""Reading image files."""

from __future__ import annotations

import os

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


def test_only_the_four_formats_are_decoded(tmp_path):
    """A file that Pillow would hand to Ghostscript (PostScript, EPS) is never decoded, whatever
    its name says."""
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    (tmp_path / "x.png").write_bytes(eps)
    for read in (load_image, image_size):
        with pytest.raises(DataError, match=r"x.png: not a readable image \(not a PNG, JPEG"):
            read(tmp_path / "x.png")


@pytest.mark.parametrize("size", [None, (16, 16)])
def test_a_16_bit_png_is_scaled_not_clipped(tmp_path, size):
    four = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
    levels = four.repeat(16, 0).repeat(16, 1)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    x = load_image(tmp_path / "deep.png", size=size)
    assert x.shape == ((32, 32, 1) if size is None else (16, 16, 1))
    if size is None:
        np.testing.assert_allclose(x[..., 0], levels / 65535, rtol=1e-6)
    else:  # halved: the middle of each quarter keeps its level (not all white)
        np.testing.assert_allclose(x[4::8, 4::8, 0], four / 65535, rtol=1e-5, atol=1e-6)
    rgb = load_image(tmp_path / "deep.png", channels=3, size=size)
    assert rgb.shape[2] == 3 and np.array_equal(rgb[..., 0], x[..., 0])


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for read in (load_image, image_size):
        with pytest.raises(DataError, match=r"pipe.png: not a regular file \(a FIFO\)"):
            read(fifo)
