"""cnnstep.data.readers.hdf5: course-style HDF5 files.

Small files written by the tests, and every way they can break.
"""

from __future__ import annotations

import numpy as np
from formats_helpers import (
    check_dataset,
    digits,
    refused,
    write_h5,
)

from cnnstep.data.formats import load_path


def test_hdf5_course_layout_with_separate_test_file(tmp_path):
    train = write_h5(tmp_path / "train_catvnoncat.h5", parts=("train",), m=10)
    test = write_h5(tmp_path / "test_catvnoncat.h5", parts=("test",), m=4)
    ds = load_path(train, test_path=test)
    check_dataset(ds, n_C=3)
    assert ds.x_train.shape == (10, 8, 8, 3) and ds.x_test.shape == (4, 8, 8, 3)
    assert ds.class_names == ["non-cat", "cat"]
    x, y = digits(10, n_classes=2, size=8, seed=0, channels=3)
    np.testing.assert_array_equal(ds.x_train, x.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y_train, y)


def test_hdf5_numeric_classes_labels_row_vector_and_split(tmp_path):
    classes = np.arange(6)
    y = (np.arange(24) % 6).reshape(1, 24)  # the course reshapes labels to (1, m)
    x = digits(24, n_classes=6, size=8, channels=3)[0]
    path = write_h5(
        tmp_path / "train_signs.h5", m=24, classes=classes, train_set_x=x, train_set_y=y
    )
    ds = load_path(path, test_fraction=0.25)
    check_dataset(ds, n_C=3)
    assert ds.class_names == [str(i) for i in range(6)]
    assert ds.x_test.shape[0] == 6


def test_hdf5_one_file_with_both_parts(tmp_path):
    ds = load_path(write_h5(tmp_path / "both.h5", parts=("train", "test"), m=6))
    assert ds.x_train.shape[0] == 6 and ds.x_test.shape[0] == 6


def test_hdf5_missing_dataset(tmp_path):
    import h5py

    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train_set_x", data=np.zeros((3, 4, 4, 3), np.uint8))
    refused(r"bad.h5: no train_set_y in this HDF5 file \(it holds: train_set_x\)", path)


def test_hdf5_test_file_without_test_set(tmp_path):
    train = write_h5(tmp_path / "train.h5")
    refused("train.h5: no test_set_x and test_set_y", train, test_path=train)


def test_hdf5_labels_outside_classes(tmp_path):
    y = np.array([0, 1, 2, 1, 0, 1])
    path = write_h5(tmp_path / "c.h5", m=6, train_set_y=y)
    refused(
        r"c.h5:train_set_y: label 2 at index 2 is outside the 2 class names in list_classes", path
    )


def test_hdf5_count_mismatch(tmp_path):
    path = write_h5(tmp_path / "c.h5", m=6, train_set_y=np.array([0, 1, 0, 1]))
    refused("c.h5: 6 images in train_set_x but 4 labels in train_set_y", path)


def test_hdf5_truncated(tmp_path):
    path = write_h5(tmp_path / "t.h5", m=40)
    path.write_bytes(path.read_bytes()[:3000])
    msg = refused("t.h5", path)
    assert "truncated" in msg or "not a readable HDF5 file" in msg


def test_hdf5_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("hello")
    refused("notes.h5: not a readable HDF5 file", path)


def test_hdf5_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    refused("empty.h5: not a readable HDF5 file", path)


def test_hdf5_group_instead_of_array(tmp_path):
    import h5py

    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        f.create_group("train_set_x")
        f.create_dataset("train_set_y", data=np.zeros(3, np.int64))
    refused("train_set_x is an HDF5 group", path)

