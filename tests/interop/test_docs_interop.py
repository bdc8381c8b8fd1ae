"""The Python blocks of docs/interop.md run as written, each on its own, and every check they
print holds."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from cnnstep.interop.keras_export import NUMPY2_COPY_WARNING

PAGE = Path(__file__).resolve().parents[2] / "docs" / "interop.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
NEEDS = {"onnxruntime": "onnx", "keras": "keras", "torch": "torch", "sklearn": "sklearn",
         "dask": "dask", "onnx": "onnx", "safetensors": "safetensors"}


def test_the_page_has_its_blocks():
    assert len(BLOCKS) == 7


@pytest.mark.filterwarnings(f"ignore:{NUMPY2_COPY_WARNING}:DeprecationWarning")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(index, monkeypatch, tmp_path):
    code = BLOCKS[index]
    for module, extra in NEEDS.items():
        if re.search(rf"^(import|from) {module}\b", code, flags=re.M):
            pytest.importorskip(module, reason=f"needs the {extra} extra")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"interop.md block {index}", "exec"), {})  # noqa: S102 - our docs
    assert "True" in out.getvalue(), out.getvalue()
    assert "False" not in out.getvalue(), (code, out.getvalue())
