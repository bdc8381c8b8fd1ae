"""``cnnstep check``: run a learner's eight functions against :mod:`cnnstep.reference` and say
which are wrong, on what input, and why.

The learner's code never runs in this process: :func:`check_file` reads and parses the file
here, and a child process (:mod:`cnnstep.checker.child`) runs it under time and memory limits.
:func:`check_functions` does the same from inside a notebook (nbgrader, Otter-Grader), from the
functions' source; :mod:`cnnstep.checker.grade` grades a class. Messages are English or Spanish
(:mod:`cnnstep.checker.i18n`).

Lives here: cases, child, runner, sandbox, protocol, judge, hints, slips, compare, loader,
files, report, outcome, notebook, grade, i18n (and the ``locale`` catalogs). May import: this
folder, :mod:`cnnstep.ops` and the top-level modules (never the ``cnnstep`` package itself).
"""

from __future__ import annotations

from pathlib import Path

from cnnstep.checker.cases import ALIASES, FUNCTIONS
from cnnstep.checker.i18n import LANGUAGES, language
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.loader import label_text, read_program
from cnnstep.checker.notebook import check_functions
from cnnstep.checker.outcome import Outcome
from cnnstep.checker.report import format_table, to_json
from cnnstep.checker.runner import (
    DEFAULT_MEMORY_LIMIT,
    MAX_TIMEOUT,
    check_program,
    check_timeout,
)
from cnnstep.checker.sandbox import (
    FALLBACK_WARNING,
    ISOLATIONS,
    SandboxUnavailableError,
)

__all__ = ["FALLBACK_WARNING", "FUNCTIONS", "ISOLATIONS", "LANGUAGES", "MAX_TIMEOUT",
           "Outcome", "SandboxUnavailableError", "check_file", "check_functions", "format_table",
           "to_json"]


def check_file(
    path: str | Path,
    timeout: float = 10.0,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    isolation: str = "auto",
    total_timeout: float | None = None,
    lang: str | None = None,
) -> Outcome:
    """Check the eight step-by-step functions defined in a ``.py`` file or notebook.

    Parameters
    ----------
    path : str or Path
        The learner's file: Python source, or a Jupyter notebook (``.ipynb``).
    timeout : float
        Seconds each function may take for all its cases together (also the limit for each
        top-level statement while the file is loaded); at most 600.
    memory_limit : int or None
        Bytes of address space for the child process; None for no limit.
    isolation : {"auto", "bubblewrap", "process"}
        ``"bubblewrap"``: the child runs in a bwrap sandbox (raises SandboxUnavailableError when
        bwrap does not work here); ``"process"``: process limits only; ``"auto"``: bubblewrap
        when it works, else process (``Outcome.warnings`` then says so).
    total_timeout : float or None
        Seconds for the whole file, start-up included; None for 10 s + 11 * timeout. No message
        from the child extends it.
    lang : {"en", "es"} or None
        The language of the messages, hints and warnings (None: from the locale, ``LANG=es_*``
        gives Spanish). Status words stay English.

    Returns
    -------
    Outcome
        ``results`` maps each function name to a dict with ``status`` ("pass", "fail",
        "error", "timeout" or "missing") and, for anything but a pass, ``case``, ``expected``,
        ``got``, ``message`` and usually ``hint``; ``isolation`` says what ran.

    Raises
    ------
    UserError
        When the file cannot be read or parsed (the CLI's exit code 2).
    """
    timeout = check_timeout(timeout)
    with language(lang):
        return _check_file(path, timeout, memory_limit, isolation, total_timeout)


def _check_file(path: str | Path, timeout: float, memory_limit: int | None, isolation: str,
                total_timeout: float | None) -> Outcome:
    program = read_program(path)
    outcome = check_program(program, timeout, memory_limit, isolation, total_timeout)
    for name, result in outcome.results.items():
        if result["status"] == "missing" and "defined_as" not in result:
            names = (name,) + ALIASES.get(name, ())
            for label, reason in program.broken.items():
                if any(n in program.broken_defs.get(label, ()) for n in names):
                    result["status"] = "error"
                    result["message"] = _("it is defined in {cell}, which has a syntax error "
                                          "({why})").format(cell=label_text(label), why=reason)
                    result["hint"] = _("it is defined in {cell}, which has a syntax error ({why}); "
                                       "fix it and check again").format(cell=label_text(label),
                                                                        why=reason)
                    break
    return outcome
