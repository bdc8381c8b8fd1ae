"""What a check found (:class:`Outcome`), with what a grader asks of it: the statuses, a score,
an assertion per function, and the report as text or HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnstep.checker.i18n import language
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.checker.reports.report import (
    format_table,
    function_details,
    points_score,
    points_table,
    to_html,
    to_json,
)


@dataclass
class Outcome:
    """Everything the checks found: one result per function, and warnings.

    ``results`` maps each checked function to a dict with ``status`` ("pass", "fail",
    "error", "timeout" or "missing"), ``message``, ``hint``, ...; ``functions`` are the names
    checked, ``lang`` the language the messages were written in.
    """

    path: str
    results: dict[str, dict]
    warnings: list[str] = field(default_factory=list)
    skipped_statements: int = 0
    unused_imports: list[str] = field(default_factory=list)
    isolation: str = "process"
    functions: tuple[str, ...] = FUNCTIONS
    lang: str | None = None

    @property
    def statuses(self) -> dict[str, str]:
        """Function name -> status word (English, as in the JSON)."""
        return {name: self.results.get(name, {}).get("status", "error")
                for name in self.functions}

    def score(self, points: dict[str, float] | None = None) -> float:
        """The points of the functions that pass (``points``: name -> points, 1 each by
        default; ValueError for an unknown name or points that are not a number >= 0)."""
        try:
            table = points_table(points, self.functions)
        except ValueError as exc:
            raise ValueError(f"points: {exc}") from None
        return points_score(self.statuses, table)

    def partial_credit(self, points: dict[str, float] | None = None) -> float:
        """The score, for an nbgrader autograder cell to output as its partial credit.

        nbgrader reads a number a test cell outputs as partial credit only when it is above 0
        (and not above the cell's points: then nbgrader raises); 0 or no number gives *full*
        credit. So a score of 0 raises AssertionError here (the report as its message), which
        nbgrader scores 0. Give the cell as many points as ``points`` add up to.
        """
        score = self.score(points)
        if score <= 0:
            with language(self.lang):
                raise AssertionError(format_table(self))
        return score

    def assert_pass(self, name: str) -> None:
        """Nothing when ``name`` passed; otherwise AssertionError whose message is the report
        for it (the case, the problem, the hint and code to try)."""
        if name not in self.functions:
            raise ValueError(f"name: expected one of the checked functions "
                             f"({', '.join(self.functions)}), got {name!r}")
        if self.statuses[name] != "pass":
            with language(self.lang):
                data = to_json(self)
                raise AssertionError("\n".join(function_details(name, data["functions"][name])))

    def text(self) -> str:
        """The report as ``cnnstep check`` prints it."""
        with language(self.lang):
            return format_table(self)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        with language(self.lang):
            return to_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())
