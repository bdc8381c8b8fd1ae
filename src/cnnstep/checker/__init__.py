"""``cnnstep check``: run a learner's eight functions against :mod:`cnnstep.reference` and say
which are wrong, on what input, and why.

The learner's code never runs in this process: :func:`check_file` reads and parses the file
here, and a child process runs it under CPU-time and memory limits. :func:`check_functions` does
the same from inside a notebook (nbgrader, Otter-Grader), from the functions' source.
:mod:`cnnstep.grading` grades whole classes with it. Messages are English or Spanish.

Lives here, one concept per folder, each importing only the ones listed before it:

- ``i18n`` (and the ``locale`` catalogs): the language of every message;
- ``source/``: reading the learner's code (a file, a notebook, live functions), never running it;
- ``sandbox/``: running it: the isolation, the child, the messages, the limits, the runner;
- ``judging/``: the cases, the comparison, the verdicts, the hints;
- ``reports/``: the outcome and how it reads (text, JSON, HTML);
- ``check``: the whole check, end to end (the only module that uses all of them).

May import: this folder, :mod:`cnnstep.ops` and the top-level modules (never the ``cnnstep``
package itself).
"""

from __future__ import annotations

from cnnstep.checker.check import check_file, check_functions, check_program
from cnnstep.checker.i18n import LANGUAGES
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.checker.reports.outcome import Outcome
from cnnstep.checker.reports.report import format_table, to_json
from cnnstep.checker.sandbox.isolation import (
    FALLBACK_WARNING,
    ISOLATIONS,
    SandboxUnavailableError,
)
from cnnstep.checker.sandbox.session import DEFAULT_MEMORY_LIMIT, MAX_TIMEOUT, STOP, Cancelled

__all__ = ["DEFAULT_MEMORY_LIMIT", "FALLBACK_WARNING", "FUNCTIONS", "ISOLATIONS", "LANGUAGES",
           "MAX_TIMEOUT", "STOP", "Cancelled", "Outcome", "SandboxUnavailableError",
           "check_file", "check_functions", "check_program", "format_table", "to_json"]
