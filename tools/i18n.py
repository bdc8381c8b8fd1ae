"""Keep the checker's Spanish catalog in step with the code (a developer's tool; needs Babel).

    python tools/i18n.py update    # extract the messages, merge them into es.po (new: empty)
    python tools/i18n.py compile   # es.po -> es.mo, the file gettext reads at run time
    python tools/i18n.py check     # exit 1 when a message lacks a translation or es.mo is stale

The messages are the literal strings passed to ``_``/``gettext``, ``ngettext`` and ``N_`` in
``src/cnnstep/checker``, ``src/cnnstep/grading`` and the ``check`` and ``grade*`` commands.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "src/cnnstep/checker").rglob("*.py")) + sorted(
    (ROOT / "src/cnnstep/grading").rglob("*.py")) + sorted(
    (ROOT / "src/cnnstep/cli/commands").glob("grad*.py")) + [
    ROOT / "src/cnnstep/cli/commands/check.py"]
CATALOG = ROOT / "src/cnnstep/checker/locale/es/LC_MESSAGES/cnnstep.po"
COMPILED = CATALOG.with_suffix(".mo")


def template() -> Catalog:
    """Every message the code marks, with where it is used."""
    catalog = Catalog(project="cnnstep", charset="utf-8")
    for path in SOURCES:
        for lineno, message, comments, context in extract_from_file("python", str(path)):
            catalog.add(message, locations=[(str(path.relative_to(ROOT)), lineno)],
                        auto_comments=comments, context=context)
    return catalog


def read_catalog() -> Catalog:
    with open(CATALOG, "rb") as f:
        return read_po(f)


def compiled(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def problems() -> list[str]:
    """What is out of step: untranslated, fuzzy or unused messages, and a stale es.mo."""
    found = []
    catalog = read_catalog()
    wanted = {m.id for m in template() if m.id}
    have = {m.id: m for m in catalog if m.id}
    for key in sorted(wanted, key=str):
        message = have.get(key)
        strings = message.string if message is not None else None
        if message is None or not strings or (isinstance(strings, tuple) and not all(strings)):
            found.append(f"untranslated: {key!r}")
        elif message.fuzzy:
            found.append(f"fuzzy: {key!r}")
    found += [f"not used in the code: {key!r}" for key in have if key not in wanted]
    if not COMPILED.is_file() or COMPILED.read_bytes() != compiled(catalog):
        found.append(f"{COMPILED.relative_to(ROOT)} is stale: run `python tools/i18n.py compile`")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "update":
        catalog = read_catalog() if CATALOG.is_file() else Catalog(locale="es")
        catalog.update(template(), no_fuzzy_matching=True)
        CATALOG.parent.mkdir(parents=True, exist_ok=True)
        with open(CATALOG, "wb") as f:
            write_po(f, catalog, width=100, omit_header=False, ignore_obsolete=True)
        return 0
    if command == "compile":
        COMPILED.write_bytes(compiled(read_catalog()))
        return 0
    if command == "check":
        found = problems()
        print("\n".join(found) or "the catalog is complete and compiled")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
