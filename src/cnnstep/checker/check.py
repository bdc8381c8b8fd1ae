"""The checks from end to end: read the learner's code, run it in sandboxed children, judge what
comes back, and gather it into an :class:`~cnnstep.checker.reports.outcome.Outcome`.

:func:`check_file` reads a ``.py`` file or a notebook; :func:`check_functions` takes a notebook's
live functions (for nbgrader and Otter-Grader). Trust: the kernel running
:func:`check_functions` already ran the learner's notebook, so the learner's code could have
changed anything in it, this module included. Where learners may be hostile, grade the notebook
*file* with ``cnnstep grade`` instead, which never runs learner code in its own process.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cnnstep.checker.i18n import current_language, language
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import ALIASES, CHECK_ORDER, FUNCTIONS
from cnnstep.checker.judging.judge import State
from cnnstep.checker.reports.outcome import Outcome
from cnnstep.checker.sandbox.isolation import fallback_warnings, resolve_isolation
from cnnstep.checker.sandbox.runner import run_checks
from cnnstep.checker.sandbox.session import DEFAULT_MEMORY_LIMIT, check_timeout, make_plan
from cnnstep.checker.source.functions import Builder, function_source
from cnnstep.checker.source.loader import Program, label_text, read_program, select_statements


def check_program(program: Program, timeout: float, memory_limit: int | None, isolation: str,
                  total_timeout: float | None = None,
                  functions: tuple[str, ...] = FUNCTIONS) -> Outcome:
    """Check ``functions`` of a learner's program under the isolation asked for
    (``auto|bubblewrap|process``), with the warning when ``auto`` falls back to process
    limits; see :func:`check_file`."""
    used = resolve_isolation(isolation)
    selection = select_statements(program.units)
    judge = State(make_plan(program, selection), selection, timeout)
    order = [n for n in CHECK_ORDER if n in functions]
    checked = run_checks(judge, order, timeout, memory_limit, used, total_timeout)
    return Outcome(program.path, checked.results,
                   fallback_warnings(isolation, used) + list(program.warnings)
                   + checked.warnings, selection.skipped_count, selection.unused_imports, used,
                   functions, current_language())


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


def _candidates(namespace: Any) -> dict[str, Any]:
    if isinstance(namespace, Mapping):
        return dict(namespace)
    if isinstance(namespace, Iterable) and not isinstance(namespace, str | bytes):
        found: dict[str, Any] = {}
        for fn in namespace:
            name = getattr(fn, "__name__", None)
            if not isinstance(name, str):
                raise TypeError(f"namespace: expected functions in the list, got "
                                f"{type(fn).__name__}")
            found[name] = fn
        return found
    raise TypeError(f"namespace: expected a dict such as globals() or a list of functions, got "
                    f"{type(namespace).__name__}")


def _chosen(functions: Any) -> tuple[str, ...]:
    if functions is None:
        return FUNCTIONS
    if isinstance(functions, str):
        functions = [functions]
    names = list(functions) if isinstance(functions, Iterable) else None
    if not names or any(n not in FUNCTIONS for n in names):
        raise ValueError(f"functions: expected names among {', '.join(FUNCTIONS)}, got "
                         f"{functions!r}")
    return tuple(n for n in FUNCTIONS if n in names)


def check_functions(namespace: Any, functions: Any = None, timeout: float = 3.0, *,
                    lang: str | None = None, isolation: str = "auto",
                    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                    total_timeout: float | None = 20.0) -> Outcome:
    """Check the learner's step-by-step functions from inside a notebook.

    Parameters
    ----------
    namespace : dict or list of functions
        ``globals()`` of the notebook, or the function objects themselves.
    functions : list of str, optional
        The names to check (default all eight).
    timeout : float
        CPU seconds each function may take, all its cases together; at most 600. A right
        function needs a few hundredths of a second.
    lang : {"en", "es"}, optional
        The language of the report (default: from the locale).
    isolation : {"auto", "bubblewrap", "process"}
        As for :func:`cnnstep.checker.check_file`.
    total_timeout : float or None
        Wall-clock seconds for the whole check (default 20: within nbgrader's 30-second cell
        limit even when several functions hang; the functions not reached are ``timeout``);
        None for the default of :func:`check_file`.

    Returns
    -------
    Outcome
        ``statuses``, ``score(points)``, ``partial_credit(points)`` (for nbgrader),
        ``assert_pass(name)``; shown as a table in a notebook.
        Nothing is printed: an autograder cell's output stays the grader's.
    """
    seconds = check_timeout(timeout)
    chosen = _chosen(functions)
    found = _candidates(namespace)
    with language(lang), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader scores a cell that writes to stderr as 0
        builder, unusable = Builder(), {}
        for name in chosen:
            for candidate in (name,) + ALIASES.get(name, ()):
                if candidate in found:
                    fn = found[candidate]
                    if id(fn) in builder.done:
                        break  # already there as a helper of another
                    try:
                        builder.add_function(candidate, fn, function_source(fn))
                    except ValueError as exc:
                        unusable[name] = _("`{name}` cannot be checked: {why}").format(
                            name=candidate, why=exc)
                    break
        outcome = check_program(builder.program(), seconds, memory_limit, isolation,
                                total_timeout, functions=chosen)
        for name, why in unusable.items():
            outcome.results[name] = {"status": "error", "message": why}
    return outcome
