"""The optional libraries stay optional: imported late, and missing ones named with their extra."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cnnstep.interop import save_weights, to_onnx
from cnnstep.interop.extras import MissingExtraError, require
from cnnstep.nn.architectures import build_architecture


def test_importing_interop_loads_no_optional_library():
    code = ("import sys, cnnstep, cnnstep.interop, cnnstep.interop.dask, "
            "cnnstep.interop.keras_export, cnnstep.interop.torch_export, cnnstep.cli.main; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'safetensors', 'sklearn', 'dask', "
            "'distributed', 'torch', 'keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("modules", "call", "extra"), [
    (("onnx", "onnx.helper"), lambda m, p: to_onnx(m, p), "onnx"),
    (("safetensors", "safetensors.numpy"), lambda m, p: save_weights(m, p), "safetensors"),
])
def test_missing_extra_is_one_line_naming_it(modules, call, extra, monkeypatch, tmp_path):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    model = build_architecture("default", (8, 8, 1), 2, seed=0)
    one_line = rf"^.* needs \w+: pip install 'cnnstep\[{extra}\]'$"
    with pytest.raises(MissingExtraError, match=one_line):
        call(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_dask_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.array", None)
    from cnnstep.interop import dask as cdask

    model = build_architecture("default", (8, 8, 1), 2, seed=0)
    with pytest.raises(MissingExtraError, match=r"pip install 'cnnstep\[dask\]'"):
        cdask.predict(model, np.zeros((1, 8, 8, 1)))


def test_require_returns_the_module():
    assert require("numpy", "none", "this test") is np
