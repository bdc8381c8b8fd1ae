"""A file holding only a test part, read for scoring (``allow_test_only``): every format."""

from __future__ import annotations

import numpy as np
import pytest
from formats_helpers import write_h5, write_idx_folder, write_image_folder, write_npz

from cnnstep.data.formats import load_path
from cnnstep.errors import DataError


def _test_only(kind, tmp_path):
    if kind == "hdf5":
        pytest.importorskip("h5py")
        return write_h5(tmp_path / "test.h5", parts=("test",), m=10)
    if kind == "npz":
        return write_npz(tmp_path / "test.npz", x_train=None, y_train=None)
    if kind == "idx":
        return write_idx_folder(tmp_path / "idx", m_train=0, m_test=9)
    pytest.importorskip("PIL")
    write_image_folder(tmp_path / "folder" / "test", per_class=3)
    return tmp_path / "folder"


@pytest.mark.parametrize("kind, n, n_classes", [("hdf5", 10, 2), ("npz", 6, 3), ("idx", 9, 3),
                                                ("images", 6, 2)])
def test_every_format_reads_a_test_only_file(kind, n, n_classes, tmp_path):
    path = _test_only(kind, tmp_path)
    ds = load_path(path, allow_test_only=True)
    assert len(ds.y_train) == 0 and ds.x_train.shape[1:] == ds.x_test.shape[1:]
    assert len(ds.y_test) == n and ds.n_classes == n_classes
    assert ds.x_test.dtype == np.float32 and 0.0 <= ds.x_test.min() <= ds.x_test.max() <= 1.0
    if kind != "images":  # a folder of one sub-folder "test" reads as a class named test
        with pytest.raises(DataError, match="train"):
            load_path(path)


def test_files_with_a_training_part_are_read_as_before(tmp_path):
    path = write_npz(tmp_path / "both.npz")
    a, b = load_path(path), load_path(path, allow_test_only=True)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    only_train = write_npz(tmp_path / "train.npz", test=False)
    assert len(load_path(only_train, allow_test_only=True).y_train) > 0
    empty = tmp_path / "empty.npz"
    np.savez(empty, other=np.zeros(2))
    with pytest.raises(DataError, match="x_train"):
        load_path(empty, allow_test_only=True)


def test_test_only_labels_are_checked_against_class_names(tmp_path):
    pytest.importorskip("h5py")
    path = write_h5(tmp_path / "t.h5", parts=("test",), m=4,
                    test_set_y=np.array([0, 1, 5, 1]))
    with pytest.raises(DataError, match="label 5 at index 2"):
        load_path(path, allow_test_only=True)
