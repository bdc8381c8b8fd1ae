"""Every code block of the site and of the README runs as written, so none can drift from the
code (``tests/docs/docs_blocks.py`` says how blocks are found and the markers that steer them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import ROOT, TEST_COMMAND, Block, page_blocks, pages, parse

PAGE_TIMEOUT = 240  # seconds for one page's blocks; together they take well under a minute idle
# Blocks not run as written (no-run, run-instead) stay few: at most this share of the blocks the
# test could run, and no more than MAX_NOT_RUN in all.
MAX_NOT_RUN_SHARE = 0.2
MAX_NOT_RUN = 15


def _steps(blocks: list[Block]) -> list[dict[str, str]]:
    steps = []
    for b in blocks:
        if not b.runs:
            continue
        code = b.instead + "\n" if b.instead else b.code
        steps.append({"where": b.where, "language": b.language, "code": code})
    return steps


PAGES = [p for p in pages() if any(b.runs and b.language != "setup" for b in page_blocks(p))]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_code_blocks_of_a_page_run(page: Path, tmp_path: Path) -> None:
    steps = tmp_path.parent / f"{tmp_path.name}-steps.json"
    steps.write_text(json.dumps(_steps(page_blocks(page))), encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("run_page.py")),
                           str(steps)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=PAGE_TIMEOUT)
    assert done.returncode == 0, (done.stdout[-4000:] + "\n" + done.stderr[-4000:])


def test_few_blocks_are_not_run_as_written_and_each_says_why() -> None:
    blocks = [b for p in pages() for b in page_blocks(p)]
    runnable = [b for b in blocks if b.runnable and b.skip != TEST_COMMAND]
    not_run = [b for b in runnable if b.skip or b.instead]
    assert not [b.where for b in not_run if b.skip == "?"], "a no-run marker without a reason"
    limit = min(MAX_NOT_RUN, max(3, int(MAX_NOT_RUN_SHARE * len(runnable))))
    listing = "\n".join(f"{b.where}: {b.skip or 'instead: ' + b.instead}" for b in not_run)
    assert len(not_run) <= limit, f"{len(not_run)} of {len(runnable)} not run:\n{listing}"
    assert [b for b in runnable if not b.skip], "no block runs at all"


def test_the_readme_test_command_is_the_one_ci_runs_and_the_site_shows() -> None:
    blocks = page_blocks(ROOT / "README.md")
    command = [b for b in blocks if b.skip == TEST_COMMAND]
    assert len(command) == 1 and command[0].language == "bash"
    text = command[0].code.strip()
    assert "\n" not in text, "the test command is one line"
    for part in ('pip install ".[test]"', "ruff check .", "mypy", "mkdocs build --strict",
                 "pytest -q -n 2"):
        assert part in text, part
    elsewhere = [b for p in pages()[1:] for b in page_blocks(p) if b.skip == TEST_COMMAND]
    assert elsewhere and all(b.code.strip() == text for b in elsewhere), \
        [b.where for b in elsewhere]


def test_markers_apply_to_the_next_block_only() -> None:
    text = "\n".join([
        "<!-- no-run: needs a GPU -->", "", "```python", "raise SystemExit", "```",
        "```python", "x = 1", "```",
        "<!-- run-instead: cnnstep train --epochs 1 -->", "```bash", "cnnstep train", "```",
        "<!-- no-run -->", "words", "```bash", "cnnstep demo", "```",
        "<!-- test-setup", "fixtures.model('m.npz')", "-->",
        "- a list item:", "", "  ```py", "  y = 2", "  ```", "```text", "not run", "```",
    ])
    blocks = parse(text, "page.md")
    assert [(b.language, b.skip, b.instead, b.line) for b in blocks] == [
        ("python", "needs a GPU", "", 3), ("python", "", "", 6),
        ("bash", "", "cnnstep train --epochs 1", 10), ("bash", "", "", 15),
        ("setup", "", "", 18), ("python", "", "", 23), ("text", "", "", 26)]
    assert blocks[4].code == "fixtures.model('m.npz')\n" and blocks[5].code == "y = 2\n"
    assert [b.runs for b in blocks] == [False, True, True, True, True, True, False]
