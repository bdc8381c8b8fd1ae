"""cnnstep.data.readers.idx: IDX folders.

Small files written by the tests, and every way they can break.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from formats_helpers import (
    check_dataset,
    digits,
    idx_bytes,
    peak_bytes,
    refused,
    write_idx_file,
    write_idx_folder,
)

from cnnstep.data.formats import load_path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_plain_and_gzip(tmp_path, gz):
    folder = write_idx_folder(tmp_path / "mnist", gz=gz)
    ds = load_path(folder)
    check_dataset(ds, n_C=1)
    x, y = digits(24, seed=0)
    np.testing.assert_array_equal(ds.x_train[..., 0], x.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y_train, y)
    assert ds.x_test.shape == (9, 6, 6, 1)
    assert ds.class_names == ["0", "1", "2"]
    assert ds.name == str(folder)


def test_idx_dot_names_and_path_to_one_file(tmp_path):
    folder = write_idx_folder(tmp_path / "mnist", sep=".")
    ds = load_path(folder / "train-images.idx3-ubyte")
    check_dataset(ds, n_C=1)
    assert ds.x_train.shape == (24, 6, 6, 1)


def test_idx_other_types_and_prefix(tmp_path):
    # EMNIST-style prefix, int16 images in 0..255, int32 labels.
    x, y = digits(12, seed=3)
    write_idx_file(tmp_path / "emnist-x-train-images-idx3-ubyte", x.astype(np.int16), 0x0B)
    write_idx_file(tmp_path / "emnist-x-train-labels-idx1-ubyte", y.astype(np.int32), 0x0C)
    ds = load_path(tmp_path, test_fraction=0.25)
    check_dataset(ds, n_C=1)
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 12


def test_idx_without_test_files_is_split_stratified(tmp_path):
    folder = write_idx_folder(tmp_path / "mnist", m_train=30, m_test=0)
    ds = load_path(folder, test_fraction=0.2, seed=1)
    check_dataset(ds)
    assert ds.x_test.shape[0] == 6
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]
    again = load_path(folder, test_fraction=0.2, seed=1)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_idx_test_path_gives_test_part(tmp_path):
    train = write_idx_folder(tmp_path / "a", m_train=12, m_test=0)
    test = write_idx_folder(tmp_path / "b", m_train=0, m_test=5)
    ds = load_path(train, test_path=test)
    assert ds.x_test.shape[0] == 5 and ds.x_train.shape[0] == 12


def test_idx_truncated_plain(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    f = folder / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    msg = refused("truncated IDX file", folder)
    assert str(f) in msg and "24x6x6" in msg


def test_idx_truncated_header(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    refused("train-labels-idx1-ubyte: truncated IDX file", folder)


def test_idx_truncated_gzip(tmp_path):
    folder = write_idx_folder(tmp_path / "m", gz=True)
    f = folder / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-30])
    msg = refused("truncated", folder)
    assert str(f) in msg


def test_idx_gzip_short_content(tmp_path):
    folder = write_idx_folder(tmp_path / "m", gz=True)
    f = folder / "t10k-images-idx3-ubyte.gz"
    with gzip.open(f, "wb") as out:
        out.write(idx_bytes(digits(9)[0])[:-7])
    refused("t10k-images-idx3-ubyte.gz: truncated IDX file", folder)


def test_idx_corrupt_gzip(tmp_path):
    folder = write_idx_folder(tmp_path / "m", gz=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip at all")
    refused("train-labels-idx1-ubyte.gz: truncated or corrupt gzip file", folder)


def test_idx_bad_magic(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    f = folder / "train-images-idx3-ubyte"
    f.write_bytes(b"\x12\x34" + f.read_bytes()[2:])
    refused("not an IDX file .*magic number 0x1234", folder)


def test_idx_data_longer_than_header(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    f = folder / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes() + b"\x00" * 5)
    refused("corrupt IDX file", folder)


def test_idx_count_mismatch(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    write_idx_file(folder / "train-labels-idx1-ubyte", digits(20)[1])
    refused("24 images but train-labels-idx1-ubyte has 20 labels", folder)


def test_idx_missing_labels(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    (folder / "train-labels-idx1-ubyte").unlink()
    refused("found train-images-idx3-ubyte but not train-labels-idx1-ubyte", folder)


def test_idx_only_test_files(tmp_path):
    folder = write_idx_folder(tmp_path / "m", m_train=0)
    refused("no train-images-idx3-ubyte", folder)


def test_idx_several_data_sets_in_one_folder(tmp_path):
    write_idx_folder(tmp_path)
    x, y = digits(5)
    write_idx_file(tmp_path / "other-train-images-idx3-ubyte", x)
    refused("IDX files of several data sets", tmp_path)


def test_idx_loading_holds_no_second_float_copy(tmp_path):
    m, size = 3000, 20
    x = np.random.default_rng(0).integers(0, 256, (m, size, size), dtype=np.uint8)
    write_idx_file(tmp_path / "train-images-idx3-ubyte", x)
    write_idx_file(tmp_path / "train-labels-idx1-ubyte", (np.arange(m) % 10).astype(np.uint8))
    result_bytes = m * size * size * 4
    peak = peak_bytes(lambda: load_path(tmp_path))
    # The float32 result plus the stored uint8 pixels (a quarter) and small chunks.
    assert peak < 1.25 * result_bytes + (2 << 20)


def test_idx_test_path_without_test_files(tmp_path):
    train = write_idx_folder(tmp_path / "a", m_test=0)
    refused(
        "b: no t10k-images-idx3-ubyte", train, test_path=write_idx_folder(tmp_path / "b", m_test=0)
    )

