"""cnnstep.data.readers.load_path: detection, arguments and properties of load_path.

Small files written by the tests, and every way they can break.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import (
    check_dataset,
    refused,
    write_h5,
    write_idx_file,
    write_idx_folder,
    write_image_folder,
    write_npz,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnstep.data.formats import DataWarning, load_path
from cnnstep.errors import DataError

_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


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


def test_numpy_scalar_arguments(tmp_path):
    ds = load_path(
        write_npz(tmp_path / "a.npz", test=False),
        test_fraction=np.float32(0.25),
        image_size=np.array([6, 6]),
    )
    assert ds.x_test.shape[0] == 3


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
    y = rng.permutation(np.arange(m) % rng.integers(2, m + 1)).astype(np.uint8)  # all present
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

