"""``cnnstep export``: ONNX and safetensors files from a saved model; one-line errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cnnstep.cli.main import main
from cnnstep.nn.architectures import build_architecture


@pytest.fixture
def saved(tmp_path):
    model = build_architecture("default", (8, 8, 1), 3, seed=0, class_names=["a", "b", "c"])
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def test_export_onnx_runs_in_onnxruntime(saved, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (the onnx extra)")
    model, path = saved
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), "--format", "onnx", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    (probs,) = ort.InferenceSession(str(out)).run(["probabilities"], {"input": x})
    assert np.abs(probs - model.predict_proba(x)).max() <= 1e-5


@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_export_safetensors(saved, layout, capsys):
    st = pytest.importorskip("safetensors.numpy", reason="needs safetensors (the extra)")
    model, path = saved
    assert main(["export", str(path), "--format", "safetensors", "--layout", layout]) == 0
    tensors = st.load_file(str(path.with_suffix(".safetensors")))
    key = "0.weight" if layout == "torch" else "conv2d/kernel"
    assert tensors[key].shape == ((16, 1, 3, 3) if layout == "torch" else (3, 3, 1, 16))
    assert f"in {layout} layout" in capsys.readouterr().out


def test_errors_are_one_line(saved, tmp_path, capsys, monkeypatch):
    _, path = saved
    cases = [
        (["--format", "onnx", "--layout", "torch"], "--layout applies to --format safetensors"),
        (["--format", "onnx", "--out", str(path)], "is the model file itself"),
        (["--format", "onnx", "--out", str(tmp_path)], "is a folder"),
    ]
    for extra, message in cases:
        assert main(["export", str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    (tmp_path / "taken.onnx").write_text("mine")
    assert main(["export", str(path), "--format", "onnx", "--out",
                 str(tmp_path / "taken.onnx")]) == 2
    assert "use --force" in capsys.readouterr().err
    assert (tmp_path / "taken.onnx").read_text() == "mine"
    assert main(["export", str(tmp_path / "none.npz"), "--format", "onnx"]) == 2
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "onnx.helper", None)
    assert main(["export", str(path), "--format", "onnx", "--force"]) == 2
    assert "pip install 'cnnstep[onnx]'" in capsys.readouterr().err
