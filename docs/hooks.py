"""MkDocs hooks (``hooks:`` in mkdocs.yml): the parts of the site that are generated at build time.

- **The API reference** (``api/*.md``): one page per public module of ``src/cnnstep`` (every
  package, every top-level module, and the few leaf modules the guides send readers to, listed
  in ``LEAF_MODULES``), found on disk, so a new room gets its page without an edit here. Each
  name of a module's ``__all__`` is rendered by mkdocstrings from its numpydoc docstring (once:
  where an object is exported again, the later page links to the first). The build fails when
  a name of an ``__all__`` is missing from its page.
- **The command line** (``<!-- cli-help -->`` in a page): ``cnnstep --help`` and each command's
  ``--help``, from the parser itself.
- **The performance tables** (``<!-- perf: NAME.json -->`` in a page): rendered from the JSON
  the benchmarks write (``bench/*.py --json docs/perf/NAME.json``); no table of times is typed.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files

log = get_plugin_logger("cnnstep")

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = "cnnstep"
# Leaf modules that the guides name (their public functions are used by their module's name).
# One that does not exist (moved by a refactoring) is skipped with a note, not an error.
LEAF_MODULES = (
    "cnnstep.interop.dask",
    "cnnstep.explain.gif",
    "cnnstep.explain.shapes",
    "cnnstep.checker.grade",
    "cnnstep.train.processes",
)
# Not in the API reference: the command line has its own page (cli.md).
EXCLUDED = ("cnnstep.cli", "cnnstep.__main__")
API_NAV_TITLE = "API reference"

_pages: dict[str, tuple[str, list[str]]] = {}  # src_uri -> (markdown, ids its html must hold)


# --- the API reference -------------------------------------------------------------------------

def public_modules() -> list[str]:
    """``cnnstep`` first, then every package and top-level module (and ``LEAF_MODULES``), sorted."""
    base = SRC / PACKAGE
    found = set()
    for init in base.rglob("__init__.py"):
        found.add(".".join((PACKAGE, *init.parent.relative_to(base).parts)).rstrip("."))
    found |= {f"{PACKAGE}.{p.stem}" for p in base.glob("*.py") if not p.stem.startswith("_")}
    for leaf in LEAF_MODULES:
        if (base / Path(*leaf.split(".")[1:])).with_suffix(".py").is_file():
            found.add(leaf)
        else:
            log.info("API reference: %s no longer exists; no page for it", leaf)
    found = {m for m in found if not any(m == x or m.startswith(x + ".") for x in EXCLUDED)
             and not any(part.startswith("_") for part in m.split(".")[1:])}
    return sorted(found, key=lambda m: (m != PACKAGE, m))


def _summary(module: Any) -> str:
    doc = inspect.getdoc(module) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return re.sub(r":(?:mod|func|class|data|meth):`~?([^`]+)`", r"`\1`", first)


def _directive(identifier: str, **options: Any) -> str:
    lines = [f"::: {identifier}"]
    if options:
        lines.append("    options:")
        lines += [f"      {key}: {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def module_page(name: str, seen: dict[int, str]) -> tuple[str, list[str]]:
    """The markdown of one module's page and the anchors it must hold (one per public name).

    ``seen`` maps the id of each class or function already rendered to its first identifier;
    an object exported again gets a heading and a link to it instead of a second copy.
    """
    module = importlib.import_module(name)
    public = list(getattr(module, "__all__", []))
    parts = [f"# `{name}`\n", _directive(name, members=False, show_root_heading=False,
                                         show_root_toc_entry=False)]
    if not public and not hasattr(module, "__path__"):  # a plain module: all its public names
        parts.append(_directive(name, show_root_heading=False, show_root_toc_entry=False,
                                show_docstring_description=False, heading_level=2))
    anchors = []
    for attr in public:
        ident = f"{name}.{attr}"
        anchors.append(ident)
        try:
            obj = getattr(module, attr)
        except AttributeError:  # the anchor check then fails the build, naming it
            log.warning("API reference: %s lists %r in __all__ but has no such name", name, attr)
            continue
        key = id(obj) if inspect.isclass(obj) or inspect.isroutine(obj) else None
        if key is not None and key in seen:
            parts.append(f"## `{attr}` {{#{ident}}}\n\nThe same object as "
                         f"[`{seen[key]}`][{seen[key]}].\n")
            continue
        if attr in vars(module) or key is None:
            parts.append(_directive(ident, heading_level=2))
        else:  # made on first use (a module __getattr__): render it where it is defined
            target = f"{obj.__module__}.{obj.__qualname__}"
            parts.append(f"## `{attr}` {{#{ident}}}\n\nDefined in `{obj.__module__}`; "
                         "imported on first use.\n\n"
                         + _directive(target, heading_level=3, show_root_heading=False))
        if key is not None:
            seen[key] = ident
    return "\n".join(parts), anchors


def api_pages() -> dict[str, tuple[str, list[str]]]:
    """Every page of the API reference, by its path under docs/."""
    seen: dict[int, str] = {}
    pages = {}
    rows = []
    for name in public_modules():
        try:
            pages[f"api/{name}.md"] = module_page(name, seen)
        except ImportError as exc:  # an optional extra that is not installed
            log.warning("API reference: cannot import %s (%s); install '.[docs,all]'", name, exc)
            continue
        rows.append(f"| [`{name}`]({name}.md) | {_summary(importlib.import_module(name))} |")
    index = ("# API reference\n\nGenerated from the docstrings (numpydoc style) of every public "
             "module: each name of a module's `__all__` is on that module's page.\n\n"
             "| module | what lives there |\n|---|---|\n" + "\n".join(rows) + "\n")
    pages["api/index.md"] = (index, [])
    return pages


def on_config(config: Any) -> Any:
    """Put the generated API pages into the navigation, under its ``API reference`` entry."""
    _pages.clear()
    _pages.update(api_pages())
    entries = [{"Overview": "api/index.md"}] + [
        {uri[4:-3]: uri} for uri in _pages if uri != "api/index.md"]
    for item in config.nav or []:
        if isinstance(item, dict) and API_NAV_TITLE in item:
            item[API_NAV_TITLE] = entries
    return config


def on_files(files: Files, config: Any) -> Files:
    for uri, (markdown, _) in _pages.items():
        files.append(File.generated(config, uri, content=markdown))
    return files


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Fail the build (a warning, under ``--strict``) if a public name did not render."""
    _, anchors = _pages.get(page.file.src_uri, ("", []))
    missing = [a for a in anchors if f'id="{a}"' not in output]
    if missing:
        log.warning("API reference: %s does not show %s", page.file.src_uri, ", ".join(missing))
    return output


# --- the command line and the performance tables -----------------------------------------------

def cli_help() -> str:
    """``cnnstep --help`` and each command's ``--help``, as the parser prints them."""
    from cnnstep.cli.main import build_parser

    with _columns(100):
        parser = build_parser()
        blocks = [("cnnstep", parser.format_help())]
        for action in parser._subparsers._group_actions:  # noqa: SLF001 (argparse has no API)
            blocks += [(f"cnnstep {n}", p.format_help()) for n, p in action.choices.items()]
    return "\n".join(f"## `{title}`\n\n```text\n{text.rstrip()}\n```\n" for title, text in blocks)


@contextlib.contextmanager
def _columns(n: int) -> Any:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and fmt:
        return format(value, fmt)
    return str(value)


# What a report may record beside its tables (bench/record.py's Report.set), as the page says it.
EXTRAS = {
    "onednn": "oneDNN's kernels for the layers",
    "cli": "`cnnstep train` with its defaults, end to end",
    "workspace_mib": "scratch memory (MiB, beyond inputs and outputs)",
}
STANDARD = {"benchmark", "title", "command", "date", "machine", "versions", "settings", "tables"}


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in value.items())
    return str(value)


def render_report(report: dict[str, Any]) -> str:
    """One benchmark's JSON (``bench/record.py``) as Markdown: where and when, then its tables."""
    m, v = report["machine"], report["versions"]
    flags = ", ".join(m.get("cpu_flags", [])) or "none of note"
    settings = ", ".join(f"`{k}={val}`" for k, val in report.get("settings", {}).items())
    lines = [
        f"*Measured {report['date']} with `{report['command']}`: {m['cpu']}, "
        f"{m['cores']} cores (SIMD: {flags}), {m['blas']}; load average {m['load_average']}. "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + (f"; environment {settings}" if settings else "") + ".*", ""]
    lines += [f"- {EXTRAS.get(key, key.replace('_', ' '))}: {_value(value)}"
              for key, value in report.items() if key not in STANDARD]
    lines += [""]
    for table in report["tables"]:
        cols = table["columns"]
        lines += [f"**{table['title']}**", "",
                  "| " + " | ".join(c["title"] for c in cols) + " |",
                  "|" + "|".join("---:" if c.get("format") else "---" for c in cols) + "|"]
        for row in table["rows"]:
            values = iter(row)
            cells = []
            for c in cols:
                parts = [_cell(next(values), c.get("format", "")) for _ in range(c.get("span", 1))]
                text = "–".join(parts) if all(parts) else ""
                cells.append(f"**{text}**" if c.get("bold") and text else text)
            lines.append("| " + " | ".join(cells) + " |")
        lines += [""] + [f"{note}" for note in table.get("notes", [])] + [""]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- cli-help -->" in markdown:
        markdown = markdown.replace("<!-- cli-help -->", cli_help())

    def perf(match: re.Match[str]) -> str:
        path = Path(config.docs_dir) / "perf" / match.group(1)
        if not path.is_file():
            log.warning("%s: no benchmark output %s", page.file.src_uri, path)
            return ""
        return render_report(json.loads(path.read_text(encoding="utf-8")))

    return re.sub(r"<!-- perf: ([\w.-]+\.json) -->", perf, markdown)
