"""``cnnstep export``: ONNX, Keras, PyTorch and safetensors files from a saved model, loaded by
each framework alone (no cnnstep, no code of ours); one-line errors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

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


#: Run in a fresh interpreter with cnnstep made unimportable: each framework reads its file alone.
LOADERS = textwrap.dedent("""
    import os, sys
    sys.modules["cnnstep"] = None  # nothing of ours
    import numpy as np
    folder = sys.argv[1]
    x = np.load(os.path.join(folder, "x.npy"))
    import onnxruntime
    session = onnxruntime.InferenceSession(os.path.join(folder, "model.onnx"))
    np.save(os.path.join(folder, "onnx.npy"), session.run(["probabilities"], {"input": x})[0])
    import torch
    program = torch.export.load(os.path.join(folder, "model.pt2")).module()
    np.save(os.path.join(folder, "torch.npy"), program(torch.from_numpy(x)).detach().numpy())
    import keras
    model = keras.models.load_model(os.path.join(folder, "model.keras"))
    np.save(os.path.join(folder, "keras.npy"), np.asarray(model.predict_on_batch(x)))
""")


def test_exports_load_in_each_framework_alone(tmp_path, monkeypatch):
    for name in ("onnxruntime", "torch", "keras"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"needs {name} (test extras)")
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # read when Keras is first imported
    from interop_models import every_option_models

    # strided "same", dilation with a stride, asymmetric max- and average-pooling pads
    model = every_option_models()["asym_pools"]
    model.save(tmp_path / "model.npz")
    for fmt in ("onnx", "torch", "keras"):
        assert main(["export", str(tmp_path / "model.npz"), "--format", fmt]) == 0
    x = np.random.default_rng(0).standard_normal((5, 28, 28, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", LOADERS, str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = model.predict_proba(x)
    for fmt in ("onnx", "torch", "keras"):
        proba = np.load(tmp_path / f"{fmt}.npy")
        assert proba.shape == (5, 6)
        assert np.abs(proba - expected).max() <= 1e-5, fmt


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
        (["--format", "keras", "--out", str(tmp_path / "m.h5")], "must end in .keras"),
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
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the extras were not installed
    monkeypatch.setitem(sys.modules, "onnx.helper", None)
    assert main(["export", str(path), "--format", "onnx", "--force"]) == 2
    assert "pip install 'cnnstep[onnx]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["export", str(path), "--format", "torch"]) == 2
    err = capsys.readouterr().err
    assert "PyTorch export needs torch: pip install 'cnnstep[torch]'" in err
    assert err.count("\n") == 1
    assert not path.with_suffix(".pt2").exists()
