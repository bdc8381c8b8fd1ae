"""The checker in English and Spanish: gettext catalogs shipped in the package, ``--lang``,
the locale's default, and status words and JSON keys that stay English."""

from __future__ import annotations

import gettext
import importlib.util
import json
import re
from pathlib import Path

import pytest
from check_slips import SLIPS, write_broken

from cnnstep.checker import check_file, to_json
from cnnstep.checker.i18n import (
    DOMAIN,
    LOCALE_DIR,
    current_language,
    default_language,
    language,
    translations,
)
from cnnstep.cli.main import main
from cnnstep.grading.grade import grade

ROOT = Path(__file__).resolve().parents[2]
STATUSES = {"pass", "fail", "error", "timeout", "missing"}


def _tool():
    pytest.importorskip("babel", reason="the catalog checks need Babel (the test extra)")
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "tools" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_message_in_the_code_has_a_spanish_translation_and_the_mo_is_current():
    assert _tool().problems() == []


def test_translations_keep_every_placeholder():
    tool = _tool()
    for message in tool.read_catalog():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"\{(\w*)\}", " ".join(ids)))
        for string in strings:
            assert set(re.findall(r"\{(\w*)\}", string)) == wanted, message.id
            assert string.count("`") == ids[0].count("`"), message.id  # code stays quoted


def test_the_catalog_is_shipped_inside_the_package():
    assert (LOCALE_DIR / "es" / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()
    catalog = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=["es"])
    assert catalog.gettext("not defined in the file") == "no está definida en el archivo"
    assert catalog.ngettext("a {type} of {n} item", "a {type} of {n} items", 3) == \
        "un {type} de {n} elementos"


@pytest.mark.parametrize("env, lang", [
    ({"LANG": "es_ES.UTF-8"}, "es"), ({"LANG": "es_MX"}, "es"), ({"LANG": "es"}, "es"),
    ({"LANG": "en_US.UTF-8"}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_ALL": "es_AR.UTF-8"}, "es"),
    ({"LANG": "es_ES.UTF-8", "LANGUAGE": "en_GB:es"}, "en"),
    ({"LANG": "estonian"}, "en"),
])
def test_the_default_language_follows_the_locale_as_gettext_reads_it(env, lang):
    assert default_language(env) == lang


def test_language_nests_and_refuses_unknown_names():
    with language("es"):
        assert current_language() == "es"
        with language(None):  # None keeps what is around it
            assert current_language() == "es"
        with language("en"):
            assert current_language() == "en"
    with pytest.raises(ValueError, match="lang: expected one of en, es, got 'fr'"), \
            language("fr"):
        pass
    with pytest.raises(ValueError, match="lang"):
        translations("de")


@pytest.fixture(scope="module")
def slips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slips")
    return {slip: write_broken(slip, folder) for slip in SLIPS}


@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_every_slips_report_is_translated_while_statuses_and_keys_stay_english(slip, slips):
    english = to_json(check_file(slips[slip], lang="en"))
    spanish = to_json(check_file(slips[slip], lang="es"))
    assert spanish.keys() == english.keys()
    for name, entry in english["functions"].items():
        other = spanish["functions"][name]
        assert other.keys() == entry.keys()
        assert other["status"] == entry["status"] and other["status"] in STATUSES
        for key in ("message", "hint"):
            if entry[key]:
                # Every sentence the checker wrote is translated (what Python or the learner
                # wrote inside it may stay as it is).
                assert other[key] != entry[key], (name, key, entry[key])


def test_the_cli_speaks_spanish_with_lang_or_the_locale(slips, capsys, monkeypatch):
    path = str(slips["stride_corners"])
    assert main(["check", path, "--lang", "es"]) == 1
    table = capsys.readouterr().out
    assert "función" in table and "conv_forward              incorrecta" in table
    assert "las esquinas de la ventana no avanzan según el stride" in table
    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    assert main(["check", path, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["functions"]["conv_forward"]["status"] == "fail"
    assert data["functions"]["conv_forward"]["hint"].startswith("las esquinas")
    assert main(["check", path, "--lang", "en"]) == 1
    assert "the window corners do not move" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["check", path, "--lang", "fr"])
    assert stop.value.code == 2 and "--lang" in capsys.readouterr().err


def test_grading_in_spanish_and_again_in_english(slips, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "ana.py").write_text(slips["distribute_sum"].read_text())
    (folder / "ben.py").write_bytes(b"def zero_pad(X, pad:\n")
    out = tmp_path / "out"
    calls = []

    def counting(path, **kwargs):
        calls.append(path)
        return check_file(path, **kwargs)

    records = grade([str(folder)], out, lang="es", check=counting, gradescope=False)
    assert {r["status"] for r in records} == {"graded", "unreadable"}
    feedback = (out / "feedback" / f"{records[0]['name']}.md").read_text()
    assert "Puntuación: 6 / 8" in feedback and "distribute_value          incorrecta" in feedback
    unreadable = (out / "feedback" / f"{records[1]['name']}.md").read_text()
    assert "no se puede calificar" in unreadable and "línea 1" in unreadable
    csv_text = (out / "gradebook.csv").read_text()
    assert ",fail," in csv_text and "unreadable" in csv_text  # tools read English words
    assert len(calls) == 2
    grade([str(folder)], out, lang="es", check=counting)
    assert len(calls) == 2  # same content, same settings: not run again
    records = grade([str(folder)], out, lang="en", check=counting)
    assert len(calls) == 4  # another language is another setting
    assert "Score: 6 / 8" in (out / "feedback" / f"{records[0]['name']}.md").read_text()
