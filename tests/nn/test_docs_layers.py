"""The code blocks of docs/layers.md and docs/explain.md run as written, and the outputs they show
are what the code prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(name):
    text = (DOCS / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S), text


@pytest.mark.parametrize("name", ["layers.md", "explain.md"])
def test_every_python_block_runs(name, monkeypatch, tmp_path):
    pytest.importorskip("PIL.Image", reason="explain's page needs Pillow (the explain extra)")
    monkeypatch.chdir(tmp_path)
    blocks, _ = _blocks(name)
    assert blocks
    for code in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{name} block", "exec"), {})  # noqa: S102 - our own docs
        assert "False" not in out.getvalue(), (code, out.getvalue())


def test_the_printed_happy_summary_and_shapes_are_current():
    from cnnstep import build_architecture
    from cnnstep.explain.shapes import describe_shapes

    _, text = _blocks("layers.md")
    summary = build_architecture("happy", (64, 64, 3), 2).summary()
    assert f"```\n{summary}\n```" in text
    _, text = _blocks("explain.md")
    shapes = "\n".join(describe_shapes(build_architecture("happy", (64, 64, 3), 2))
                       .splitlines()[:8])
    assert f"```\n{shapes}\n```" in text
