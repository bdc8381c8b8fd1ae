"""The site's generated parts (docs/hooks.py, docs/griffe_roles.py), its navigation, the
benchmarks' JSON it renders, and the README's length and links. The build itself
(``mkdocs build --strict``) is part of the test command."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the site needs the docs extra")

from docs_blocks import ROOT  # noqa: E402


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


hooks = load(ROOT / "docs" / "hooks.py", "cnnstep_docs_hooks")
sys.path.insert(0, str(ROOT / "bench"))
record = importlib.import_module("record")


def test_every_package_and_top_level_module_has_an_api_page():
    modules = hooks.public_modules()
    assert modules[0] == "cnnstep"
    src = ROOT / "src" / "cnnstep"
    for init in src.rglob("__init__.py"):
        name = ".".join(("cnnstep", *init.parent.relative_to(src).parts))
        assert (name in modules) == (not name.startswith("cnnstep.cli")), name
    for module in src.glob("*.py"):
        if not module.stem.startswith("_"):
            assert f"cnnstep.{module.stem}" in modules
    for name in ("cnnstep.sklearn", "cnnstep.interop", "cnnstep.checker", "cnnstep.interop.dask"):
        assert name in modules


def test_each_name_of_each_all_is_an_anchor_of_its_page():
    pages = hooks.api_pages()
    for uri, (markdown, anchors) in pages.items():
        if uri == "api/index.md":
            continue
        name = uri[len("api/"):-len(".md")]
        module = importlib.import_module(name)
        assert anchors == [f"{name}.{attr}" for attr in getattr(module, "__all__", [])]
        for attr in getattr(module, "__all__", []):
            assert f"{name}.{attr}" in markdown, (uri, attr)
    everything = "".join(markdown for markdown, _ in pages.values())
    for required in ("cnnstep.checker.check_functions", "cnnstep.sklearn.CNNClassifier",
                     "cnnstep.interop.to_onnx", "cnnstep.interop.load_weights",
                     "cnnstep.conv_forward", "cnnstep.Sequential"):
        assert required in everything, required


def test_an_object_exported_twice_is_documented_once_and_linked():
    markdown, _ = hooks.api_pages()["api/cnnstep.nn.layers.md"]
    assert "## `Conv2D` {#cnnstep.nn.layers.Conv2D}" in markdown
    assert "[`cnnstep.Conv2D`][cnnstep.Conv2D]" in markdown
    assert "::: cnnstep.nn.layers.Conv2D" not in markdown


def test_a_missing_public_name_fails_the_build(caplog):
    from types import SimpleNamespace

    Page = SimpleNamespace(file=SimpleNamespace(src_uri="api/cnnstep.md"))
    hooks._pages["api/cnnstep.md"] = ("", ["cnnstep.conv_forward", "cnnstep.nothing"])
    try:
        hooks.on_post_page('<h2 id="cnnstep.conv_forward">', Page, None)
    finally:
        hooks._pages.pop("api/cnnstep.md")
    assert "does not show cnnstep.nothing" in caplog.text
    assert "cnnstep.conv_forward" not in caplog.text.split("does not show")[1]


def test_the_command_line_page_has_every_command():
    from cnnstep.cli.main import command_modules

    text = hooks.cli_help()
    assert text.startswith("## `cnnstep`")
    for module in command_modules():  # a module may name its command otherwise
        commands = argparse.ArgumentParser(prog="cnnstep").add_subparsers()
        module.register(commands)
        assert commands.choices, module.__name__
        for name in commands.choices:
            assert f"## `cnnstep {name}`" in text and f"usage: cnnstep {name}" in text


def test_a_benchmark_report_renders_as_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / "ops.py"), "--quick"])
    report = record.Report("ops", "a test")
    report.set("onednn", "off (test)")
    table = report.table("1 thread", [{"title": "shape"}, {"title": "ms", "format": ".2f"},
                                      {"title": "ratio", "format": ".2f", "bold": True},
                                      {"title": "10-90 %", "format": ".2f", "span": 2},
                                      {"title": "share", "format": ".1%"}])
    table.add("conv 2x8x8x1->4 f3 s1 psame", 1.23456, 0.987654, 0.5, 1.5, None)
    table.notes.append("A note.")
    with pytest.raises(ValueError, match="2 values for 6 columns"):
        table.add("too few", 1.0)
    report.write(tmp_path / "ops.json")
    data = json.loads((tmp_path / "ops.json").read_text())
    assert data["command"] == "python bench/ops.py --quick"
    assert data["machine"]["cores"] >= 1 and "numpy" in data["versions"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", data["date"])
    text = hooks.render_report(data)
    assert f"*Measured {data['date']} with `python bench/ops.py --quick`" in text
    assert "| conv 2x8x8x1->4 f3 s1 psame | 1.23 | **0.99** | 0.50–1.50 |  |" in text
    assert "|---|---:|---:|---:|---:|" in text and "A note." in text
    assert "- oneDNN's kernels for the layers: off (test)" in text


def test_the_performance_page_shows_each_committed_benchmark_output():
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"<!-- perf: ([\w.-]+\.json) -->", page))
    committed = {p.name for p in (ROOT / "docs" / "perf").glob("*.json")}
    assert shown == committed
    for name in committed:
        data = json.loads((ROOT / "docs" / "perf" / name).read_text(encoding="utf-8"))
        assert data["benchmark"] == name[:-len(".json")]
        assert "--quick" not in data["command"], f"{name} holds a smoke run"
        text = hooks.render_report(data)
        assert text.count("| ") > 10


def nav_pages(nav) -> list[str]:
    found = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        found += nav_pages(value) if isinstance(value, list) else [value]
    return found


def test_every_page_is_in_the_navigation_and_every_entry_exists():
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"),
                       Loader=yaml.BaseLoader)
    listed = [p for p in nav_pages(config["nav"]) if not p.startswith("api/")]
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk


def test_the_readme_fits_on_a_screen_and_its_links_lead_somewhere():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_the_architecture_page_names_every_room():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for room in (ROOT / "src" / "cnnstep").iterdir():
        if (room / "__init__.py").is_file():
            assert f"`{room.name}/`" in page, room.name


def test_sphinx_roles_become_optional_cross_references():
    roles = load(ROOT / "docs" / "griffe_roles.py", "cnnstep_docs_roles")
    import griffe

    package = griffe.load("cnnstep", search_paths=[str(ROOT / "src")],
                          extensions=griffe.load_extensions(roles.SphinxRoles))
    doc = package["nn.layers"].docstring.value
    assert ":class:" not in doc and ":func:" not in doc
    assert ('<autoref identifier="cnnstep.nn.layers.base.register_layer" optional>'
            "<code>register_layer</code></autoref>") in doc
    unknown = roles.rewrite(package["nn.layers"], "see :func:`no_such_thing`")
    assert unknown == ('see <autoref identifier="no_such_thing" optional>'
                       "<code>no_such_thing</code></autoref>")


def test_the_pictures_of_the_eight_functions_can_be_drawn(tmp_path):
    pytest.importorskip("PIL", reason="drawing needs Pillow (the explain extra)")
    pictures = load(ROOT / "docs" / "make_pictures.py", "cnnstep_docs_pictures")
    written = pictures.main(tmp_path)
    for path in written:
        assert path.stat().st_size > 0
        assert (ROOT / "docs" / "img" / path.name).is_file(), f"{path.name} is not committed"
    page = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    for path in written:
        if path.suffix in (".png", ".gif"):
            assert f"img/{path.name}" in page, path.name
