"""``cnnstep check``: run a learner's eight functions against :mod:`cnnstep.reference` and say
which are wrong, on what input, and why.

The learner's code never runs in this process: :func:`check_file` reads and parses the file
here, and a child process (:mod:`cnnstep.checker.child`) runs it under time and memory limits.
"""

from __future__ import annotations

import re
from pathlib import Path

from cnnstep.checker.cases import ALIASES, FUNCTIONS
from cnnstep.checker.loader import read_program
from cnnstep.checker.report import format_table, to_json
from cnnstep.checker.runner import DEFAULT_MEMORY_LIMIT, Outcome, run_checks

__all__ = ["FUNCTIONS", "Outcome", "check_file", "format_table", "to_json"]


def check_file(
    path: str | Path,
    timeout: float = 10.0,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> Outcome:
    """Check the eight step-by-step functions defined in a ``.py`` file or notebook.

    Parameters
    ----------
    path : str or Path
        The learner's file: Python source, or a Jupyter notebook (``.ipynb``).
    timeout : float
        Seconds each function may take for all its cases together (also the limit for each
        top-level statement while the file is loaded).
    memory_limit : int or None
        Bytes of address space for the child process; None for no limit.

    Returns
    -------
    Outcome
        ``results`` maps each function name to a dict with ``status`` ("pass", "fail",
        "error", "timeout" or "missing") and, for anything but a pass, ``case``, ``expected``,
        ``got``, ``message`` and usually ``hint``.

    Raises
    ------
    UserError
        When the file cannot be read or parsed (the CLI's exit code 2).
    """
    if timeout <= 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    program = read_program(path)
    outcome = run_checks(program, timeout=timeout, memory_limit=memory_limit)
    for name, result in outcome.results.items():
        if result["status"] == "missing" and "defined_as" not in result:
            for label, reason in program.broken.items():
                names = (name,) + ALIASES.get(name, ())
                unit_text = program.broken_sources.get(label, "")
                if any(re.search(rf"^\s*def\s+{n}\s*\(", unit_text, re.M) for n in names):
                    result["hint"] = (f"it is defined in {label}, which has a syntax error "
                                      f"({reason}); fix it and check again")
                    break
    return outcome

