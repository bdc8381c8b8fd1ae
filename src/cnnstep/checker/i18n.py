"""The checker's language: English (the source text) or Spanish, with the standard library's
:mod:`gettext` and the catalogs shipped in ``cnnstep/checker/locale``.

Only the human text follows the language: JSON keys and the status words (``pass``, ``fail``,
``error``, ``timeout``, ``missing``, ``unreadable``) stay English, because tools read them.
The language is held in a context variable, so threads and a grading run's workers each keep
their own; :func:`language` sets it for a block.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext as _gettext
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

LANGUAGES = ("en", "es")
DOMAIN = "cnnstep"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("cnnstep_language", default="")


def check_language(lang: object, argument: str = "lang") -> str:
    """``lang`` if it is one of :data:`LANGUAGES`; ValueError naming ``argument`` otherwise."""
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise ValueError(f"{argument}: expected one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang


def default_language(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale asks for: the first of ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``
    and ``LANG`` that is set (gettext's own order) decides; ``es_*`` gives Spanish, anything
    else English."""
    env = os.environ if environ is None else environ
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(variable, "")
        if value:
            first = value.split(":")[0].split(".")[0].lower()
            return "es" if first == "es" or first.startswith("es_") else "en"
    return "en"


@functools.cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalog for ``lang`` (English: the messages as written)."""
    if check_language(lang) == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])


def current_language() -> str:
    """The language set by :func:`language`, else the locale's."""
    return _current.get() or default_language()


@contextlib.contextmanager
def language(lang: str | None) -> Iterator[str]:
    """Use ``lang`` for the checker's messages inside the block (None: keep the language
    already chosen around it, else the locale's)."""
    chosen = check_language(lang) if lang is not None else current_language()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` in the current language (imported as ``_`` where messages are written)."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language."""
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark ``message`` for the catalog without translating it now (module-level constants are
    made before a language is chosen: translate them with :func:`gettext` where shown)."""
    return message
