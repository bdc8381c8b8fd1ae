"""The Python blocks of docs/check.md and docs/grading.md run as written and print only True."""

from __future__ import annotations

import contextlib
import io
import linecache
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Python blocks, but not those marked <!-- no-run: ... --> (a cell for inside nbgrader).
BLOCKS = [(page, block) for page in ("check.md", "grading.md")
          for marker, block in re.findall(r"(<!-- no-run:[^>]*-->\s*)?```python\n(.*?)```",
                                          (DOCS / page).read_text(encoding="utf-8"), flags=re.S)
          if not marker]


def test_the_pages_have_their_blocks():
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(index, monkeypatch, tmp_path):
    page, code = BLOCKS[index]
    monkeypatch.chdir(tmp_path)
    # Registered as IPython registers a cell, so that the functions' source can be found.
    filename = f"<ipython-input-{page}-{index}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, filename, "exec"), {"__name__": "__main__"})  # noqa: S102
    assert "True" in out.getvalue() and "False" not in out.getvalue(), (code, out.getvalue())
