"""The code blocks of the site's pages and of the README, and the markers that steer their test.

A page's fenced ``python`` blocks and ``bash`` blocks are run in order, in one fresh folder per
page (``test_examples.py``). Other fences (``text``, ``toml``, ``json``, ...) are shown, not run.
HTML comments, invisible on the site and on GitHub, steer the test:

``<!-- no-run: REASON -->``
    on the line before a fence (blank lines between are allowed): the block is not run; the
    reason is required, and the test keeps such blocks few.
``<!-- run-instead: COMMAND -->``
    before a ``bash`` block: the test runs COMMAND in its place (the same command, made quick:
    ``cnnstep train --epochs 1``); it counts as a block not run as written.
``<!-- test-setup`` ... ``-->``
    Python run before the next blocks, to make the files they read (a model, an image, a
    learner's file); ``fixtures`` (``tests/docs/docs_fixtures.py``) is there to help.
``<!-- test-command -->``
    before the README's test command (``.ci/run`` finds it there), and before copies of it on
    the site, which must be the same line: never run here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash",
                 "shell": "bash"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`{]*)")
TEST_COMMAND = "the test command itself"  # the reason a <!-- test-command --> block is not run
MARKER = re.compile(r"^\s*<!--\s*(?P<key>no-run|run-instead|test-command)\s*:?\s*(?P<arg>.*?)"
                    r"\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One step of a page's test: a code block (or a test-setup comment), where it starts."""

    page: str
    line: int  # 1-based line of the opening fence or comment
    language: str  # "python", "bash", "setup", or the fence's info string
    code: str
    skip: str = ""  # the no-run reason
    instead: str = ""  # the run-instead command

    @property
    def runs(self) -> bool:
        """Is it run by the test (as written or replaced)?"""
        return self.language in ("python", "bash", "setup") and not self.skip

    @property
    def runnable(self) -> bool:
        """Is it a block of a language the test runs (whatever its markers)?"""
        return self.language in ("python", "bash")

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """The README and every Markdown page of the site (docs/, recursively)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def parse(text: str, page: str) -> list[Block]:
    """The blocks of one page, with the markers that precede them applied."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("<!-- test-setup"):
            end = i
            while "-->" not in lines[end]:
                end += 1
            first = lines[i].strip()[len("<!-- test-setup"):]
            body = ([first.split("-->")[0]] if end == i
                    else [first, *lines[i + 1:end], lines[end].split("-->")[0]])
            blocks.append(Block(page, i + 1, "setup", _dedent(body)))
            i = end + 1
            continue
        marker = MARKER.match(line)
        if marker:
            key = marker.group("key")
            pending[key] = marker.group("arg") or (TEST_COMMAND if key == "test-command"
                                                   else "")
            i += 1
            continue
        fence = FENCE.match(line)
        if fence:
            indent, mark, info = fence.group("indent", "fence", "info")
            end = i + 1
            close = re.compile(rf"^[ \t]*{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$")
            while end < len(lines) and not close.match(lines[end]):
                end += 1
            body = [b[len(indent):] if b.startswith(indent) else b.lstrip()
                    for b in lines[i + 1:end]]
            language = RUN_LANGUAGES.get(info.lower(), info.lower() or "text")
            skip = pending.get("no-run", "") or pending.get("test-command", "")
            if ("no-run" in pending or "test-command" in pending) and not skip:
                skip = "?"  # a no-run without a reason: the test says so
            blocks.append(Block(page, i + 1, language, "\n".join(body) + "\n", skip,
                                pending.get("run-instead", "")))
            pending = {}
            i = end + 1
            continue
        if line.strip():
            pending = {}  # a marker applies to the very next block only
        i += 1
    return blocks


def _dedent(lines: list[str]) -> str:
    import textwrap

    return textwrap.dedent("\n".join(lines)).strip() + "\n"


def page_blocks(path: Path) -> list[Block]:
    return parse(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
