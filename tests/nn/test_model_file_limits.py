"""Model files that are damaged or hostile: one DataError line, nothing allocated beyond the
memory budget (issue 14)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnstep import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, load_model
from cnnstep.errors import DataError


@pytest.fixture
def saved(tmp_path) -> Path:
    model = Sequential([Conv2D(2, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(3)],
                       input_shape=(8, 8, 1), class_names=["a", "b", "c"])
    model.save(tmp_path / "ok.npz")
    return tmp_path / "ok.npz"


def variant(saved: Path, name: str, change=None, header_text: str | None = None) -> Path:
    with np.load(saved) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["__model__"][()]))
    if change is not None:
        change(header)
    arrays["__model__"] = np.array(header_text if header_text is not None else json.dumps(header))
    path = saved.with_name(f"{name}.npz")
    np.savez(path, **arrays)
    return path


def layer(i: int, **config):
    return lambda h: h["layers"][i]["config"].update(config)


CASES = {
    "version_string": (lambda h: h.update(version="1"), "version must be an integer"),
    "version_null": (lambda h: h.update(version=None), "version must be an integer"),
    "metadata_list": (lambda h: h.update(metadata=[1, 2]), "metadata must be a JSON object"),
    "nested_names": (lambda h: h.update(class_names=[["a"], "b", "c"]),
                     "class_names must be a list of strings"),
    "too_few_names": (lambda h: h.update(class_names=["a", "b"]),
                      "class_names has 2 entries but the model tells 3 classes apart"),
    "dense_1e9": (layer(4, units=10**9), r"layer 4 \(Dense\(1000000000\)\) weights: declares"),
    "filters_1e9": (layer(0, filters=10**9), "layer 0 .* weights: declares"),
    "kernel_1e6": (layer(0, kernel_size=10**6), "layer 0 .* weights: declares"),
    "input_1e5": (lambda h: h.update(input_shape=[100000, 100000, 1]), "input_shape .* declares"),
    "input_strings": (lambda h: h.update(input_shape=["8", 8, 1]), "positive integers"),
    "layers_dict": (lambda h: h.update(layers={}), "layers must be a non-empty list"),
    "dtype_odd": (lambda h: h.update(dtype="complex64"), "dtype must be float32 or float64"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_header_is_one_data_error(saved, name):
    change, match = CASES[name]
    with pytest.raises(DataError, match=match) as info:
        load_model(variant(saved, name, change))
    assert "\n" not in str(info.value)


def test_deeply_nested_json(saved):
    deep = '{"format": "cnnstep-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(DataError, match="nested too deeply"):
        load_model(variant(saved, "deep", header_text=deep))


def test_weight_member_that_is_not_npy(saved):
    path = saved.with_name("raw.npz")
    shutil.copy(saved, path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("0.W", b"hello")
    with pytest.raises(DataError, match=r"raw.npz:0.W: not an .npy array"):
        load_model(path)


def test_npy_header_declaring_1e12_elements(saved):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
    path = saved.with_name("huge.npz")
    shutil.copy(saved, path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("9.W.npy", buf.getvalue() + bytes(16))
    with pytest.raises(DataError, match="declares 3.6 TiB, more than the memory budget"):
        load_model(path)


def test_budget_can_be_raised_for_a_big_model(saved, monkeypatch):
    monkeypatch.setenv("CNNSTEP_MAX_MEMORY", "2K")
    with pytest.raises(DataError, match="memory budget of 2.0 KiB"):
        load_model(saved)
    monkeypatch.setenv("CNNSTEP_MAX_MEMORY", "1G")
    assert load_model(saved).class_names == ["a", "b", "c"]


def test_dense_only_model_loads(tmp_path):
    Sequential([Flatten(), Dense(3)], input_shape=(4, 4, 1)).save(tmp_path / "d.npz")
    assert load_model(tmp_path / "d.npz").output_shape == (3,)


@pytest.mark.parametrize("kind", ["dilation", "pad", "pool"])
def test_a_padded_input_beyond_the_budget_is_refused_before_it_is_made(tmp_path, monkeypatch,
                                                                       kind):
    """A small file can imply a huge padded input: 'same' with a dilation of 20,000 pads a
    28x28 image by 20,000 on each side (6 GB), and so does an explicit pad."""
    from cnnstep import AvgPool2D

    first = {"dilation": Conv2D(1, 3, padding="same", dilation=20_000),
             "pad": Conv2D(1, 3, stride=20_000, padding=20_000),
             "pool": AvgPool2D(40_001, stride=40_001, padding=20_000)}[kind]
    monkeypatch.setenv("CNNSTEP_MAX_MEMORY", "256M")
    path = tmp_path / "model.npz"
    Sequential([first, Flatten(), Dense(2)], (28, 28, 1), seed=0).save(path)
    with pytest.raises(DataError, match="padded input .* more than the memory budget"):
        load_model(path)
