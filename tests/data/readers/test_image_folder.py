"""cnnstep.data.readers.image_folder: image folders.

Small files written by the tests, and every way they can break.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from formats_helpers import (
    check_dataset,
    refused,
    write_idx_folder,
    write_image_folder,
)

from cnnstep.data.formats import DataWarning, load_path


def test_image_folder_grayscale_split(tmp_path):
    root = write_image_folder(tmp_path / "photos", classes=("cat", "dog", "owl"), per_class=5)
    ds = load_path(root, test_fraction=0.2)
    check_dataset(ds, n_C=1)
    assert ds.class_names == ["cat", "dog", "owl"]
    assert ds.x_train.shape == (12, 8, 8, 1) and ds.x_test.shape == (3, 8, 8, 1)
    # The dog images are brighter: labels really follow the folders.
    assert ds.x_train[ds.y_train == 1].mean() > ds.x_train[ds.y_train == 0].mean()


def test_image_folder_colour_if_any_image_is_colour(tmp_path):
    root = write_image_folder(tmp_path / "p", classes=("a",), per_class=4)
    write_image_folder(tmp_path / "p", classes=("b",), per_class=4, mode="RGB", suffix=".jpg")
    ds = load_path(root)
    check_dataset(ds, n_C=3)


def test_image_folder_train_test_layout(tmp_path):
    write_image_folder(tmp_path / "d" / "train", per_class=4)
    write_image_folder(tmp_path / "d" / "test", per_class=2)
    ds = load_path(tmp_path / "d")
    assert ds.x_train.shape[0] == 8 and ds.x_test.shape[0] == 4
    assert ds.class_names == ["cat", "dog"]


def test_image_folder_train_only_is_split(tmp_path):
    write_image_folder(tmp_path / "d" / "train", per_class=5)
    ds = load_path(tmp_path / "d", test_fraction=0.4)
    assert ds.x_train.shape[0] == 6 and ds.x_test.shape[0] == 4


def test_image_folder_test_path(tmp_path):
    train = write_image_folder(tmp_path / "tr", per_class=3)
    test = write_image_folder(tmp_path / "te", classes=("dog",), per_class=2)
    ds = load_path(train, test_path=test)
    assert ds.x_test.shape[0] == 2 and set(ds.y_test.tolist()) == {1}


def test_image_folder_resize_and_most_common_size(tmp_path):
    root = write_image_folder(tmp_path / "p", per_class=3, size=(8, 8))
    write_image_folder(tmp_path / "p", classes=("cat",), per_class=1, size=(5, 7), suffix=".bmp")
    with pytest.warns(DataWarning, match="resized to the most common, 8x8"):
        ds = load_path(root, test_fraction=0.3)
    assert ds.input_shape == (8, 8, 1)
    ds = load_path(root, image_size=(4, 6), test_fraction=0.3)
    assert ds.input_shape == (4, 6, 1)
    check_dataset(ds)


def test_image_folder_skips_non_images_with_warning(tmp_path):
    root = write_image_folder(tmp_path / "p", per_class=3)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("about")
    (root / "dog" / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(DataWarning, match="skipped 2 entries that are not an image") as record:
        ds = load_path(root, test_fraction=0.34)
    assert "notes.txt" in str(record[0].message)
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 6


def test_image_folder_gray_palette_gif_is_grayscale(tmp_path):
    from PIL import Image

    for c, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(3):
            img = Image.fromarray(np.full((5, 5), 40 + 100 * c + i, np.uint8), mode="L")
            img.convert("P").save(tmp_path / name / f"{i}.gif")
    ds = load_path(tmp_path, test_fraction=0.34)
    check_dataset(ds, n_C=1)


def test_image_folder_numeric_class_names_sort_as_numbers(tmp_path):
    root = write_image_folder(tmp_path / "p", classes=("2", "10", "1"), per_class=2)
    ds = load_path(root, test_fraction=0.5)
    assert ds.class_names == ["1", "2", "10"]


def test_image_folder_empty(tmp_path):
    (tmp_path / "nothing").mkdir()
    refused("nothing: empty folder", tmp_path / "nothing")


def test_image_folder_without_images(tmp_path):
    (tmp_path / "d" / "cat").mkdir(parents=True)
    (tmp_path / "d" / "cat" / "a.txt").write_text("x")
    with pytest.warns(DataWarning):
        refused("d: no images found", tmp_path / "d")


def test_image_folder_images_not_in_class_folders(tmp_path):
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "loose.png")
    with pytest.warns(DataWarning, match="loose.png"):
        refused("1 images lie directly in the folder; put each class's images in a sub", tmp_path)


def test_image_folder_hint_for_idx_one_level_down(tmp_path):
    write_idx_folder(tmp_path / "MNIST" / "raw")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        refused("IDX files are one folder further down", tmp_path / "MNIST")


def test_image_folder_corrupt_image(tmp_path):
    root = write_image_folder(tmp_path / "p", per_class=3)
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is no png")
    msg = refused("broken.png: not a readable image", root)
    assert str(bad) in msg


def test_image_folder_truncated_image(tmp_path):
    root = write_image_folder(tmp_path / "p", per_class=3, size=(32, 32), mode="RGB")
    f = root / "cat" / "cat_1.png"
    f.write_bytes(f.read_bytes()[:-60])
    refused("cat_1.png: not a readable image", root)


def test_image_folder_test_class_not_in_training(tmp_path):
    write_image_folder(tmp_path / "d" / "train", per_class=2)
    write_image_folder(tmp_path / "d" / "test", classes=("cat", "zebra"), per_class=1)
    refused(r"test class 'zebra' is not one of the training classes \(cat, dog\)", tmp_path / "d")


def test_image_folder_too_few_to_split(tmp_path):
    root = write_image_folder(tmp_path / "p", per_class=1)
    refused("too few images", root)


def test_image_folder_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "p", per_class=2)
    monkeypatch.setattr("cnnstep.data.readers.image_folder.available_memory", lambda: 1000)
    refused(r"4 images of 8x8x1 need 0.0 GiB as float32, more than half .*--image-size", root)


def test_image_folder_large_images_warn(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "p", per_class=2)
    monkeypatch.setattr("cnnstep.data.readers.image_folder.LARGE_SIDE", 4)
    with pytest.warns(DataWarning, match="images are 8x8; training at that size is slow"):
        load_path(root, test_fraction=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_path(root, test_fraction=0.5, image_size=(8, 8))

