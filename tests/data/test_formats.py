"""cnnstep.formats.load_path: every format written here, small, and every way it can be broken."""

from __future__ import annotations

import gzip
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import (
    digits,
    idx_bytes,
    write_h5,
    write_idx_file,
    write_idx_folder,
    write_image_folder,
    write_npz,
)

from cnnstep.data.dataset import Dataset
from cnnstep.data.formats import DataWarning, load_path
from cnnstep.errors import DataError


def check_dataset(ds: Dataset, n_C: int | None = None) -> None:
    """What every loader promises: float32 NHWC in [0, 1], int64 labels in the classes."""
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        assert x.shape[0] > 0
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.min() >= 0 and y.max() < len(ds.class_names)
    if n_C is not None:
        assert ds.x_train.shape[3] == n_C


def refused(match: str, path, **kwargs) -> str:
    """load_path(path) raises DataError whose one-line message matches ``match``."""
    with pytest.raises(DataError, match=match) as info:
        load_path(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


# ---------------------------------------------------------------------------------------------
# IDX


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


# ---------------------------------------------------------------------------------------------
# HDF5


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
    refused(r"c.h5:train_set_y: label 2 is outside the 2 classes in list_classes", path)


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


# ---------------------------------------------------------------------------------------------
# Image folders


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
        refused("no images found .*one sub-folder per class", tmp_path)


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


# ---------------------------------------------------------------------------------------------
# npz


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
    refused("obj.npz: x_train is stored as Python objects and would need pickle", path)


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
    refused("found label -1", write_npz(tmp_path / "n.npz", y_train=y))


def test_npz_label_outside_class_names(tmp_path):
    path = write_npz(tmp_path / "n.npz", class_names=np.array(["a", "b"]))
    refused("label 2 is outside the 2 classes in class_names", path)


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


# ---------------------------------------------------------------------------------------------
# Detection and arguments


def test_missing_path(tmp_path):
    refused("nowhere: no such file or folder", tmp_path / "nowhere")


def test_unknown_format(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    refused("data.csv: unknown data format", path)


def test_archive_and_npy_are_explained(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "mnist.zip", "w") as z:
        z.writestr("a.txt", "x")
    refused("mnist.zip: an archive, not a data set; unpack it", tmp_path / "mnist.zip")
    np.save(tmp_path / "x.npy", np.zeros(3))
    refused("x.npy: a single .npy array", tmp_path / "x.npy")


def test_test_path_in_another_format(tmp_path):
    train = write_npz(tmp_path / "a.npz", test=False)
    test = write_h5(tmp_path / "b.h5", parts=("test",))
    refused("b.h5: the test set is an HDF5 file but .*a.npz is an .npz file", train, test_path=test)


def test_image_size_for_array_formats(tmp_path):
    path = write_npz(tmp_path / "a.npz")
    assert load_path(path, image_size=(6, 6)).input_shape == (6, 6, 1)
    refused("images are 6x6, not the requested 8x8", path, image_size=(8, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_fraction": 1.0}, "test_fraction must lie strictly between 0 and 1"),
        ({"test_fraction": 0}, "test_fraction"),
        ({"image_size": (0, 5)}, "image_size must be two positive integers"),
        ({"image_size": (4,)}, "image_size"),
        ({"image_size": (4.5, 4)}, "image_size"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    refused(match, write_npz(tmp_path / "a.npz"), **kwargs)


# ---------------------------------------------------------------------------------------------
# Memory: no more than one extra copy of the images while loading


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_idx_loading_holds_no_second_float_copy(tmp_path):
    m, size = 3000, 20
    x = np.random.default_rng(0).integers(0, 256, (m, size, size), dtype=np.uint8)
    write_idx_file(tmp_path / "train-images-idx3-ubyte", x)
    write_idx_file(tmp_path / "train-labels-idx1-ubyte", (np.arange(m) % 10).astype(np.uint8))
    result_bytes = m * size * size * 4
    peak = _peak_bytes(lambda: load_path(tmp_path))
    # The float32 result plus the stored uint8 pixels (a quarter) and small chunks.
    assert peak < 1.25 * result_bytes + (2 << 20)


def test_npz_split_holds_no_second_float_copy(tmp_path):
    m, size = 3000, 20
    x = np.random.default_rng(0).integers(0, 256, (m, size, size), dtype=np.uint8)
    path = write_npz(tmp_path / "a.npz", test=False, x_train=x, y_train=np.arange(m) % 10)
    result_bytes = m * size * size * 4
    peak = _peak_bytes(lambda: load_path(path))
    assert peak < 1.25 * result_bytes + (2 << 20)


def test_image_folder_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    import cnnstep.data.formats as formats

    root = write_image_folder(tmp_path / "p", per_class=2)
    monkeypatch.setattr(formats, "_available_memory", lambda: 1000)
    refused(r"4 images of 8x8x1 need 0.0 GiB as float32, more than half .*--image-size", root)


def test_image_folder_large_images_warn(tmp_path, monkeypatch):
    import cnnstep.data.formats as formats

    root = write_image_folder(tmp_path / "p", per_class=2)
    monkeypatch.setattr(formats, "_LARGE_SIDE", 4)
    with pytest.warns(DataWarning, match="images are 8x8; training at that size is slow"):
        load_path(root, test_fraction=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_path(root, test_fraction=0.5, image_size=(8, 8))


def test_idx_test_path_without_test_files(tmp_path):
    train = write_idx_folder(tmp_path / "a", m_test=0)
    refused(
        "b: no t10k-images-idx3-ubyte", train, test_path=write_idx_folder(tmp_path / "b", m_test=0)
    )


def test_npz_test_labels_outside_class_names(tmp_path):
    path = write_npz(
        tmp_path / "n.npz", y_train=np.arange(12) % 2, class_names=np.array(["a", "b"])
    )
    refused("n.npz:y_test: label 2 is outside the 2 classes", path)


def test_numpy_scalar_arguments(tmp_path):
    ds = load_path(
        write_npz(tmp_path / "a.npz", test=False),
        test_fraction=np.float32(0.25),
        image_size=np.array([6, 6]),
    )
    assert ds.x_test.shape[0] == 3


# ---------------------------------------------------------------------------------------------
# Properties: exact round trip, and any cut or flipped byte is a DataError (never another error)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(
    m=st.integers(2, 9),
    n_H=st.integers(1, 5),
    n_W=st.integers(1, 5),
    gz=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_idx_round_trip(tmp_path_factory, m, n_H, n_W, gz, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (m, n_H, n_W), dtype=np.uint8)
    y = rng.integers(0, 10, m).astype(np.uint8)
    xt = rng.integers(0, 256, (2, n_H, n_W), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("idx")
    ext = ".gz" if gz else ""
    write_idx_file(folder / f"train-images-idx3-ubyte{ext}", x)
    write_idx_file(folder / f"train-labels-idx1-ubyte{ext}", y)
    write_idx_file(folder / f"t10k-images-idx3-ubyte{ext}", xt)
    write_idx_file(folder / f"t10k-labels-idx1-ubyte{ext}", y[:2])
    ds = load_path(folder)
    np.testing.assert_array_equal(ds.x_train[..., 0], x / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, y)
    np.testing.assert_array_equal(ds.x_test[..., 0], xt / np.float32(255))


@pytest.fixture(scope="module")
def intact_files(tmp_path_factory):
    """One small file of each single-file kind, to cut or damage copies of."""
    root = tmp_path_factory.mktemp("intact")
    idx = write_idx_folder(root / "idx", m_train=6, m_test=3)
    gz = write_idx_folder(root / "gz", m_train=6, m_test=3, gz=True)
    return {
        "idx": idx / "train-images-idx3-ubyte",
        "gz": gz / "train-labels-idx1-ubyte.gz",
        "npz": write_npz(root / "d.npz", m=6),
        "h5": write_h5(root / "d.h5", parts=("train", "test"), m=6),
        "png": write_image_folder(root / "img", per_class=2, mode="RGB") / "cat" / "cat_0.png",
    }


def _damaged_copy(tmp: Path, source: Path, data: bytes) -> Path:
    """A copy of ``source``'s data set (its folder or itself) with ``source`` replaced by data."""
    import shutil

    if source.suffix in (".npz", ".h5"):
        target = tmp / source.name
    else:
        top = source.parent.parent if source.suffix == ".png" else source.parent
        shutil.copytree(top, tmp / top.name)
        target = tmp / top.name / source.relative_to(top)
        source = target
        tmp = tmp / top.name
    target.write_bytes(data)
    return tmp if source.suffix not in (".npz", ".h5") else target


@_SETTINGS
@given(kind=st.sampled_from(["idx", "gz", "npz", "h5", "png"]), cut=st.floats(0, 0.999))
def test_any_truncation_is_a_data_error(tmp_path_factory, intact_files, kind, cut):
    source = intact_files[kind]
    data = source.read_bytes()
    path = _damaged_copy(tmp_path_factory.mktemp("cut"), source, data[: int(cut * len(data))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            ds = load_path(path, test_fraction=0.5)
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            # Pillow reads a PNG whose cut only took the end marker; nothing else may load.
            assert kind == "png" and cut > 0.5
            check_dataset(ds)


@_SETTINGS
@given(
    kind=st.sampled_from(["idx", "gz", "npz", "h5", "png"]),
    where=st.floats(0, 0.999),
    byte=st.integers(0, 255),
)
def test_any_flipped_byte_loads_or_is_a_data_error(
    tmp_path_factory, intact_files, kind, where, byte
):
    source = intact_files[kind]
    data = bytearray(source.read_bytes())
    data[int(where * len(data))] = byte
    path = _damaged_copy(tmp_path_factory.mktemp("flip"), source, bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            ds = load_path(path, test_fraction=0.5)
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            check_dataset(ds)


def test_home_relative_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_npz(tmp_path / "mine.npz")
    assert load_path("~/mine.npz").x_train.shape == (12, 6, 6, 1)


def test_optional_libraries_are_imported_lazily():
    import subprocess
    import sys

    code = ("import sys, cnnstep.data.formats; "
            "print([m for m in ('h5py', 'PIL') if m in sys.modules])")
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
