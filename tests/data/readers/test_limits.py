"""What a data file declares is checked before it is allocated, and labels make sense.

Issue 14: stray labels, one class, overflowing IDX headers, npz members that inflate past the
budget or are not ``.npy``, HDF5 data stored elsewhere, flat image folders, decompression bombs.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile

import numpy as np
import pytest
from formats_helpers import (
    digits,
    peak_bytes,
    refused,
    write_h5,
    write_idx_file,
    write_idx_folder,
    write_image_folder,
    write_npz,
)

import cnnstep
from cnnstep.data.formats import DataWarning, load_path


@pytest.fixture
def small_budget():
    cnnstep.set_memory_budget("1M")
    yield 1 << 20
    cnnstep.set_memory_budget(None)


# ---------------------------------------------------------------------------------------------
# Labels and class counts


def test_one_stray_idx_label_is_named_with_its_place(tmp_path):
    x, y = digits(12, n_classes=3)
    y[7] = 200
    write_idx_file(tmp_path / "train-images-idx3-ubyte", x)
    write_idx_file(tmp_path / "train-labels-idx1-ubyte", y)
    refused(r"train-labels-idx1-ubyte: label 200 at index 7, but label 3 never occurs", tmp_path)


def test_npz_huge_label_without_class_names_is_refused_quickly(tmp_path):
    y = np.arange(12) % 3
    y[5] = 10**6
    refused(r"n.npz:y_train: label 1000000 at index 5", write_npz(tmp_path / "n.npz", y_train=y))


def test_label_beyond_int64_is_refused(tmp_path):
    y = (np.arange(12) % 3).astype(np.float64)
    y[2] = 3e30
    refused("too large to be a class index", write_npz(tmp_path / "n.npz", y_train=y))


def test_test_label_not_in_training_classes(tmp_path):
    y_test = np.zeros(6, np.int64)
    y_test[4] = 3
    path = write_npz(tmp_path / "n.npz", y_test=y_test, y_train=np.arange(12) % 3)
    refused(r"n.npz:y_test: label 3 at index 4 is outside the 3 classes", path)


def test_one_class_is_an_error(tmp_path):
    path = write_npz(tmp_path / "n.npz", y_train=np.zeros(12, np.int64), test=False)
    refused("only one class .* at least two", path)
    write_image_folder(tmp_path / "one", classes=("cat",), per_class=4)
    refused("only one class \\(cat\\)", tmp_path / "one")


def test_class_names_set_the_count(tmp_path):
    names = np.array(["a", "b", "c", "d"])
    ds = load_path(write_npz(tmp_path / "n.npz", class_names=names), test_fraction=0.5)
    assert ds.n_classes == 4  # label 3 never occurs, the names still count


# ---------------------------------------------------------------------------------------------
# IDX headers


def test_idx_dimensions_overflowing_int64_are_refused(tmp_path):
    # 4 dims of 2**16: the product overflows int64 to 0 in NumPy; a 20-byte file
    head = bytes([0, 0, 0x08, 4]) + (65536).to_bytes(4, "big") * 4
    (tmp_path / "train-images-idx3-ubyte").write_bytes(head)
    write_idx_file(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    refused("IDX header .* more than the memory budget", tmp_path)


# A bomb inflates to 64 MiB. tracemalloc counts what every thread of the test worker allocates
# meanwhile (an earlier test's threads too), so "not inflated" is a peak far below the bomb, not
# a peak below the 1 MiB budget.
BOMB = 64 << 20
NOT_INFLATED = BOMB // 8


def test_idx_gzip_bomb_is_refused_before_inflating(tmp_path, small_budget):
    data = bytes([0, 0, 0x08, 3]) + np.array([16384, 64, 64], ">u4").tobytes() + bytes(BOMB)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(data)
    write_idx_file(tmp_path / "train-labels-idx1-ubyte", np.zeros(16384, np.uint8))
    peak = peak_bytes(lambda: pytest.raises(cnnstep.errors.DataError, load_path, tmp_path))
    assert peak < NOT_INFLATED


def test_idx_gzip_with_more_data_than_declared(tmp_path):
    folder = write_idx_folder(tmp_path / "m", m_train=6, m_test=0, gz=True)
    f = folder / "train-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes()) + bytes(100)))
    refused("data goes on past the size in its header", folder)


# ---------------------------------------------------------------------------------------------
# npz members


def test_npz_member_that_is_not_npy(tmp_path):
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train", b"raw bytes")
        buf = io.BytesIO()
        np.save(buf, np.zeros(3, np.int64))
        z.writestr("y_train.npy", buf.getvalue())
    refused("z.npz:x_train: not an .npy array", path)


def test_npz_header_declaring_huge_array(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    path = write_npz(tmp_path / "h.npz")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("x_train.npy", buf.getvalue())  # shadows the first one on read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refused(r"x_train.npy: declares 3.6 TiB, more than the memory budget", path)


def test_npz_member_inflating_past_budget_is_not_inflated(tmp_path, small_budget):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x_train=np.zeros((16384, 64, 64), np.uint8),
                        y_train=np.zeros(16384))
    assert path.stat().st_size < small_budget
    peak = peak_bytes(lambda: pytest.raises(cnnstep.errors.DataError, load_path, path))
    assert peak < NOT_INFLATED


def test_npz_unused_members_are_not_read(tmp_path, small_budget):
    path = write_npz(tmp_path / "n.npz", extra=np.zeros(8 << 20, np.uint8))  # 8 MiB > budget
    assert load_path(path).n_classes == 3


def test_budget_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTEP_MAX_MEMORY", "1K")
    refused("more than the memory budget of 1.0 KiB", write_npz(tmp_path / "n.npz", m=200))


# ---------------------------------------------------------------------------------------------
# HDF5: only data stored inside the file


@pytest.fixture
def other_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    other = tmp_path / "secret.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.zeros((12, 8, 8, 3), np.uint8))
    return h5py, other


def test_hdf5_external_link_refused(tmp_path, other_h5):
    h5py, other = other_h5
    path = write_h5(tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f["train_set_x"]
        f["train_set_x"] = h5py.ExternalLink(str(other), "/data")
    refused("train_set_x is a link to another file", path)


def test_hdf5_soft_link_to_external_link_refused(tmp_path, other_h5):
    h5py, other = other_h5
    path = write_h5(tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f["train_set_x"]
        f["hop"] = h5py.ExternalLink(str(other), "/data")
        f["train_set_x"] = h5py.SoftLink("/hop")
    refused("train_set_x leads to another file", path)


def test_hdf5_external_storage_refused(tmp_path, other_h5):
    h5py, _ = other_h5
    raw = tmp_path / "passwords.txt"
    raw.write_bytes(b"secret" * 20)
    path = write_h5(tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f["list_classes"]
        f.create_dataset("list_classes", shape=(2,), dtype="S6", external=[(str(raw), 0, 12)])
    refused("list_classes keeps its data in other files", path)


def test_hdf5_virtual_dataset_refused(tmp_path, other_h5):
    h5py, other = other_h5
    path = write_h5(tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f["train_set_x"]
        layout = h5py.VirtualLayout(shape=(12, 8, 8, 3), dtype="u1")
        layout[:] = h5py.VirtualSource(str(other), "data", shape=(12, 8, 8, 3))
        f.create_virtual_dataset("train_set_x", layout)
    refused("train_set_x keeps its data in other files", path)


def test_hdf5_unwritten_chunks_declaring_gigabytes(tmp_path, small_budget):
    h5py = pytest.importorskip("h5py")
    path = write_h5(tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f["train_set_x"]
        f.create_dataset("train_set_x", shape=(12, 4096, 4096, 3), dtype="u1", chunks=True)
    assert path.stat().st_size < 100_000
    refused("train_set_x: declares .* more than the memory budget", path)


# ---------------------------------------------------------------------------------------------
# Images


def test_flat_image_folder_says_to_make_class_folders(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("L", (4, 4)).save(tmp_path / f"{i}.png")
    with pytest.warns(DataWarning):
        refused("3 images lie directly in the folder; put each class's images in a sub", tmp_path)


def test_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    from PIL import Image

    root = write_image_folder(tmp_path / "p", per_class=3, size=(16, 16))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 16x16 = 256 > 2 * 50: a "bomb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refused("not a readable image .*decompression bomb", root)
