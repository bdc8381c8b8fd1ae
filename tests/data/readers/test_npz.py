"""cnnstep.data.readers.npz: .npz archives.

Small files written by the tests, and every way they can break.
"""

from __future__ import annotations

import numpy as np
import pytest
from formats_helpers import (
    check_dataset,
    digits,
    peak_bytes,
    refused,
    write_npz,
)

from cnnstep.data.formats import load_path


def test_npz_with_test_part(tmp_path):
    ds = load_path(write_npz(tmp_path / "d.npz"))
    check_dataset(ds, n_C=1)
    assert ds.x_train.shape == (12, 6, 6, 1) and ds.x_test.shape == (6, 6, 6, 1)


def test_npz_without_test_part_class_names_float_pixels(tmp_path):
    x, y = digits(20, seed=2, channels=3)
    path = write_npz(
        tmp_path / "d.npz",
        test=False,
        x_train=x.astype(np.float64) / 255,
        y_train=y,
        class_names=np.array(["zero", "one", "two"]),
    )
    ds = load_path(path, test_fraction=0.3)
    check_dataset(ds, n_C=3)
    assert ds.class_names == ["zero", "one", "two"]
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 20


def test_npz_one_hot_labels(tmp_path):
    y = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
    ds = load_path(write_npz(tmp_path / "d.npz", y_train=y))
    np.testing.assert_array_equal(ds.y_train, np.arange(12) % 3)


def test_npz_test_path(tmp_path):
    train = write_npz(tmp_path / "train.npz", test=False)
    test = write_npz(tmp_path / "test.npz", x_train=None, y_train=None)
    ds = load_path(train, test_path=test)
    assert ds.x_test.shape[0] == 6


def test_npz_needing_pickle(tmp_path):
    path = tmp_path / "obj.npz"
    x = np.empty(3, dtype=object)
    x[:] = [np.zeros((2, 2))] * 3
    np.savez(path, x_train=x, y_train=np.zeros(3, np.int64))
    refused("obj.npz:x_train.npy: stored as Python objects and would need pickle", path)


def test_npz_truncated(tmp_path):
    path = write_npz(tmp_path / "t.npz")
    path.write_bytes(path.read_bytes()[:200])
    refused("t.npz: truncated or corrupt .npz file", path)


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"\x80\x04garbage that looks like pickle")
    refused("fake.npz: not an .npz file", path)


def test_npz_missing_keys(tmp_path):
    path = tmp_path / "k.npz"
    np.savez(path, images=np.zeros((2, 3, 3)), labels=np.zeros(2))
    refused(r"k.npz: no x_train and y_train in this .npz \(it holds: images, labels\)", path)


def test_npz_count_mismatch(tmp_path):
    path = write_npz(tmp_path / "c.npz", y_test=np.zeros(4, np.int64))
    refused("c.npz: 6 images in x_test but 4 labels in y_test", path)


def test_npz_negative_label(tmp_path):
    y = np.arange(12) % 3 - 1
    path = write_npz(tmp_path / "n.npz", y_train=y)
    refused("y_train: label -1 at index 0; labels must be class indices from 0", path)


def test_npz_label_outside_class_names(tmp_path):
    path = write_npz(tmp_path / "n.npz", class_names=np.array(["a", "b"]))
    refused("label 2 at index 2 is outside the 2 class names in class_names", path)


def test_npz_fractional_labels(tmp_path):
    refused("whole numbers", write_npz(tmp_path / "n.npz", y_train=np.linspace(0, 1, 12)))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.full((12, 4, 4), 2.5), r"float pixels must lie in \[0, 1\], found 2.5 to 2.5"),
        (np.full((12, 4, 4), np.nan), "NaN or infinite"),
        (np.full((12, 4, 4), 300, np.int32), "integer pixels must lie in 0..255"),
        (np.zeros((12, 3, 5, 5), np.uint8), "look channels-first"),
        (np.zeros((12, 5, 5, 4), np.uint8), "4 channels"),
        (np.zeros((12, 36), np.uint8), r"must have shape \(m, n_H, n_W\)"),
        (np.full((12, 6, 6), "a"), "pixels must be numbers"),
        (np.array(3.0), "a single number, expected images"),
    ],
)
def test_npz_bad_pixels(tmp_path, x, match):
    refused(match, write_npz(tmp_path / "p.npz", x_train=x))


def test_npz_split_holds_no_second_float_copy(tmp_path):
    m, size = 3000, 20
    x = np.random.default_rng(0).integers(0, 256, (m, size, size), dtype=np.uint8)
    path = write_npz(tmp_path / "a.npz", test=False, x_train=x, y_train=np.arange(m) % 10)
    result_bytes = m * size * size * 4
    peak = peak_bytes(lambda: load_path(path))
    assert peak < 1.25 * result_bytes + (2 << 20)


def test_npz_test_labels_outside_class_names(tmp_path):
    path = write_npz(
        tmp_path / "n.npz", y_train=np.arange(12) % 2, class_names=np.array(["a", "b"])
    )
    refused("n.npz:y_test: label 2 at index 2 is outside the 2 class names", path)

