"""Verdicts and hints, in the parent, from the plain data the child sent back.

The expected values are computed here with :mod:`cnnstep.ops.reference` and never leave this
process; :func:`cnnstep.checker.compare.compare` judges each case; the hints of
:mod:`cnnstep.checker.judging.hints` explain the first failing one.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnstep.checker.i18n import N_, ngettext
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.cases import ALIASES, FUNCTIONS, OUTPUT_NAMES, arguments, cases_for
from cnnstep.checker.judging.compare import compare, summarize
from cnnstep.checker.judging.hints import Run, did_you_mean, hint_for
from cnnstep.checker.judging.slips import untouched_template
from cnnstep.checker.sandbox.protocol import MalformedError, decode_value, encode_value, text
from cnnstep.checker.sandbox.session import last_line
from cnnstep.checker.source.loader import where
from cnnstep.ops import functional, reference

_TEMPLATE = N_("not written yet: it is still the template (nothing but comments and `None` "
             "placeholders between `START CODE HERE` and `END CODE HERE`)")
_TEMPLATE_HINT = N_("write the function's code between the `START CODE HERE` and `END CODE HERE` "
                  "comments, then check again")
_TIMEOUT_HINT = N_("an endless loop (a `while` whose condition never changes?) or loops over far "
                 "more than the input")
_RPC_VALUES = 200_000  # input values one remote call of cnnstep's helpers may send


@dataclass
class CaseRun(Run):
    """A case run in the child: ``done`` once its answer came back; ``error_info`` describes
    what it raised (type, message, the learner's line)."""

    done: bool = False
    error_info: dict = field(default_factory=dict)


def all_names() -> list[str]:
    return sorted(set(FUNCTIONS) | {a for v in ALIASES.values() for a in v})


def canonical(name: str) -> str:
    for main, olds in ALIASES.items():
        if name in olds:
            return main
    return name


def names_text(helpers: list[str], code: bool = True) -> str:
    quoted = [f"`{h}`" if code else h for h in helpers]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + _(" and ") + quoted[-1]


def _exception(info: dict) -> BaseException:
    """An exception object like the learner's, for the hint rules (built from plain data)."""
    name = text(info, "type", 60)
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        cls = type(name if name.isidentifier() else "Error", (Exception,), {})
    message = text(info, "message")
    try:
        exc = cls(info["key"]) if cls is KeyError and "key" in info else cls(message)
    except Exception:  # noqa: BLE001 - a builtin with other constructor arguments
        exc = Exception(message)
    if isinstance(exc, NameError) and "name" in info:
        exc.name = text(info, "name")
    return exc


class State:
    """What the parent knows: the plan, what the child said each name is, each verdict."""

    def __init__(self, plan: dict, selection: Any, timeout: float):
        self.plan = plan
        self.names = all_names()
        self.selection = selection
        self.timeout = timeout
        self.described = False
        self.info: dict[str, dict] = {}
        self.known: dict[str, str] = {}
        self.current: tuple[str, int] | None = None
        self.sources = {u["label"]: u["source"].split("\n") for u in plan["units"]}
        self.defined_at: dict[str, str] = {}
        self.fn_nodes: dict[str, Any] = {}
        self.labels: dict[str, str | None] = {}
        for statement in selection.statements:
            for bound in statement.binds:
                self.defined_at[bound] = where(statement.label, statement.node.lineno)
            if statement.kind == "def":
                self.fn_nodes[statement.node.name] = statement.node
                self.labels[statement.node.name] = statement.label
        self.imported = {n for s in selection.statements if s.kind == "import" for n in s.binds}
        self.star = any(s.needs_all for s in selection.statements)

    def describe(self, message: dict) -> None:
        names = message.get("names") if message.get("ev") == "described" else None
        if not isinstance(names, dict):
            raise MalformedError("bad description")
        for name, info in names.items():
            if name in all_names() and isinstance(info, dict):
                self.info[name] = info
        self.described = True

    def find(self, name: str) -> dict:
        for candidate in (name,) + ALIASES.get(name, ()):
            info = self.info.get(candidate)
            if info is None and candidate not in self.fn_nodes:
                continue
            if info is None:
                return {"status": "missing", "message": _(
                    "`{name}` is defined in the file, but its definition failed (see the "
                    "warnings)").format(name=candidate)}
            extra = {"defined_as": candidate} if candidate != name else {}
            if not info.get("callable"):
                return {"status": "missing", **extra, "message": _(
                    "`{name}` is a {type}, not a function").format(name=candidate,
                                                                   type=text(info, "cls", 60))}
            if not info.get("own") or candidate not in self.fn_nodes:
                return {"status": "missing", **extra,
                        "message": _("`{name}` is not defined in this file (imported from "
                                     "elsewhere, or made at run time): only functions written "
                                     "in the file count").format(name=candidate)}
            refs = info["refs"] if isinstance(info.get("refs"), list) else []
            own = {name, *ALIASES.get(name, ())}
            calls = sorted(r for r in (set(refs) & set(all_names())) - own
                           if isinstance(self.info.get(r), dict) and self.info[r].get("callable"))
            return {"defined_as": candidate, "calls": calls}
        if self.star or any(n in self.imported for n in (name,) + ALIASES.get(name, ())):
            return {"status": "missing", "message": _("not defined in the file (an import does "
                                                      "not count: only functions written in "
                                                      "the file count)")}
        guess = did_you_mean(name, self.fn_nodes)
        if guess:
            return {"status": "missing", "message": _(
                "not defined in the file, which defines `{guess}`: did you mean `{name}`? (the "
                "name must be exactly `{name}`)").format(guess=guess, name=name)}
        return {"status": "missing", "message": _("not defined in the file")}

    def request(self, name: str, defined_as: str, rpc: list[str]) -> tuple[list[CaseRun], dict]:
        runs: list[CaseRun] = []
        args = []
        for case in cases_for(name):
            values = case.values(reference)
            expected = getattr(reference, name)(*arguments(name, values))
            runs.append(CaseRun(case, "pass", values, expected))
            args.append(encode_value(list(arguments(name, values))))
        return runs, {"op": "run", "name": defined_as, "cases": args, "rpc": rpc}

    def returned(self, run: CaseRun, data: Any) -> None:
        try:
            run.got = decode_value(data)
            verdict = compare(run.case.function, run.got, run.expected, run.values,
                              run.case.tags)
        except MalformedError as exc:
            run.status, run.problem = "fail", {"message": _(
                "returned something that cannot be read ({why})").format(why=exc),
                "kind": "type"}
            return
        except Exception as exc:  # noqa: BLE001 - a value that cannot even be compared
            verdict = {"ok": False, "message": _(
                "returned something that cannot be compared ({why})").format(
                why=f"{type(exc).__name__}: {exc}"), "kind": "type"}
        if verdict["ok"]:
            run.note = verdict.get("note")
        else:
            run.status, run.problem = "fail", verdict
        run.done = True

    def raised(self, run: CaseRun, data: Any) -> None:
        info = data if isinstance(data, dict) else {}
        run.status, run.error = "error", _exception(info)
        out = {"type": text(info, "type", 60) or "Exception", "message": text(info, "message")}
        label, lineno = info.get("label"), info.get("lineno")
        if isinstance(label, str) and label in self.sources and isinstance(lineno, int):
            out["where"] = where(None if label == "<file>" else label, lineno)
            out["function"] = text(info, "function")
            lines = self.sources[label]
            if 0 < lineno <= len(lines):
                out["line"] = lines[lineno - 1].strip()[:300]
        run.error_info = out
        run.done = True

    def verdict(self, name: str, found: dict, runs: list[CaseRun], timed_out: bool,
                case_number: int) -> dict:
        self.current = None
        defined_as, calls = found["defined_as"], found["calls"]
        result: dict = {"defined_as": defined_as} if defined_as != name else {}
        if calls:
            result["calls"] = calls
        finished = [r for r in runs if r.done]
        if not timed_out and len(finished) < len(runs):
            self.known[name] = "error"
            return {**result, "status": "error", "message": _(
                "the check's process said it was done before every case had run; nothing it "
                "sent counts")}
        if timed_out:
            case = runs[min(case_number, len(runs) - 1)].case
            result.update(status="timeout", case=case_info(case), hint=_(_TIMEOUT_HINT),
                          message=_("{case}: did not finish within {seconds} s").format(
                              case=case.title(), seconds=f"{self.timeout:g}"))
            self.known[name] = "timeout"
            return result
        result.update(self.judged(name, runs))
        self.known[name] = result["status"]
        return result

    def judged(self, name: str, runs: list[CaseRun]) -> dict:
        failing = [r for r in runs if r.status != "pass"]
        result: dict = {}
        notes = sorted({r.note for r in runs if r.note})
        if notes:
            result["note"] = " ".join(notes)
        result["cases_passed"] = len(runs) - len(failing)
        result["cases_total"] = len(runs)
        if not failing:
            result["status"] = "pass"
            return result
        reported = min(failing, key=lambda r: r.case.sort_key())
        case = reported.case
        result["status"] = reported.status
        result["case"] = case_info(case)
        names = OUTPUT_NAMES[name]
        problem = reported.problem or {}
        part = names.index(problem["part"]) if len(names) > 1 and problem.get("part") in names \
            else 0
        expected: Any = reported.expected
        if len(names) > 1:
            expected = expected[part]
        result["expected"] = summarize(expected)
        if reported.error is not None:
            error = reported.error_info
            result["error"] = error
            result["got"] = {"type": "exception", "exception": error["type"]}
            loc = error.get("where")
            result["message"] = _("raised {type}: {message}").format(
                type=error["type"], message=error["message"]) + (
                _(" (at {where})").format(where=loc) if loc else "")
        else:
            got = reported.got
            if len(names) > 1 and isinstance(got, tuple | list) and len(got) == len(names):
                got = got[part]
            result["got"] = summarize(got)
            result["message"] = problem.get("message", _("wrong result"))
            if "diff" in problem:
                result["diff"] = problem["diff"]
        label = case.title() + (_(" (from the material)") if case.published else "")
        result["message"] = f"{label}: {result['message']}"
        context = self.context(name)
        if untouched_template(context["fn_node"], context["lines"]) and (
                isinstance(reported.error, NameError | UnboundLocalError)
                or reported.got is None or self.global_reads(name)):
            return {"status": "missing", "cases_passed": result["cases_passed"],
                    "cases_total": result["cases_total"], "message": _(_TEMPLATE),
                    "hint": _(_TEMPLATE_HINT)}
        self._set_hint(name, result, hint_for(name, list[Run](runs), reported, context))
        return result

    def context(self, name: str) -> dict:
        defined_as = self.find(name).get("defined_as", name)
        label = self.labels.get(defined_as)
        return {"reference": reference, "fn_node": self.fn_nodes.get(defined_as),
                "skipped_names": self.selection.skipped_names, "defined": list(self.fn_nodes),
                "lines": self.sources.get(label or "<file>", []),
                "where": lambda lineno: where(label, lineno)}

    def ended(self, name: str, why: str, how: str, tail: str) -> dict:
        """The verdict when the child had to be stopped while checking ``name``."""
        number = self.current[1] if self.current and self.current[0] == name else 0
        self.current = None
        found = self.find(name)
        calls = found.get("calls", [])
        result: dict[str, Any]
        if why == "timeout":
            cases = cases_for(name)
            case = cases[min(number, len(cases) - 1)]
            result = {"status": "timeout", "case": case_info(case),
                      "message": _("did not finish within {seconds} s (the process was "
                                   "stopped)").format(seconds=f"{self.timeout:g}"),
                      "hint": _(_TIMEOUT_HINT)}
            stuck = [h for h in calls if self.known.get(canonical(h)) == "timeout"]
            if stuck:
                result["hint"] = _("it calls your {names}, which does not finish either: "
                                   "probably the cause").format(names=names_text(stuck))
        elif why == "crash":
            result = {"status": "error", "message": _("the check crashed: {how}").format(how=how)
                      + last_line(tail), "hint": _("the process died while running this "
                                                   "function (out of memory, or os._exit/a "
                                                   "crash in native code?)")}
        else:
            result = {"status": "error", "message": _(
                "the check's process sent a malformed message ({why}); nothing it sent "
                "counts").format(why=why.removeprefix("malformed: "))}
        if calls:
            result["calls"] = calls
        self.known[name] = result["status"]
        return result

    def remote_call(self, message: dict) -> dict:
        """Answer a diagnosis run's call of one of cnnstep's functions."""
        name = message.get("name")
        if name not in all_names():
            return {"error": "unknown function"}
        try:
            args = decode_value(message.get("args"))
            size = sum(np.size(a) for a in args if isinstance(a, np.ndarray))
            if not isinstance(args, list) or size > _RPC_VALUES:
                return {"error": "arguments too large"}
            with np.errstate(all="ignore"):
                value = getattr(functional, canonical(name))(*args)
            return {"value": encode_value(value)}
        except Exception as exc:  # noqa: BLE001 - wrong arguments from the learner's code
            return {"error": f"{type(exc).__name__}: {exc}"[:300]}

    def blame(self, name: str, result: dict, swapped: list[CaseRun] | None) -> None:
        """Hints from the run with cnnstep's helpers in place of the learner's (``None``: that
        run did not finish either)."""
        calls = result.get("calls", [])
        bad = [h for h in calls if self.known.get(canonical(h)) not in (None, "pass")]
        if result["status"] == "timeout":
            if bad and swapped is not None and all(r.status == "pass" for r in swapped):
                result["hint"] = ngettext(
                    "it runs until the time limit only because it calls your {names}, which "
                    "does not finish either; with cnnstep's in its place it passes",
                    "it runs until the time limit only because it calls your {names}, which "
                    "do not finish either; with cnnstep's in their place it passes",
                    len(bad)).format(names=names_text(bad))
            return
        if swapped is None or not all(r.done for r in swapped):
            return
        failing = [r for r in swapped if r.status != "pass"]
        hint = result.get("hint")
        if not failing:
            culprits = bad or calls
            if bad:
                what = {"error": _("raises an error (see above)"),
                        "timeout": _("does not finish (see above)"),
                        "missing": _("is not written yet (see above)")}.get(
                    self.known.get(canonical(bad[0]), ""), _("is wrong (see above)"))
                if len(bad) > 1:
                    what = _("fail their own checks")
            else:
                what = ngettext("goes wrong on the values it passes",
                                "go wrong on the values it passes", len(culprits))
            hint = _("it fails only because it calls your {names}, which {what}: with cnnstep's "
                     "{plain} in place it passes every case").format(
                names=names_text(culprits), what=what, plain=names_text(culprits, code=False))
            result["helper"] = culprits
        elif bad:
            first = min(failing, key=lambda r: r.case.sort_key())
            own = hint_for(name, list[Run](swapped), first, self.context(name))
            hint = (own + "; " if own else "") + ngettext(
                "it also calls your {names}, which fails on its own",
                "it also calls your {names}, which fail on their own", len(bad)).format(
                names=names_text(bad))
        self._set_hint(name, result, hint)

    def _set_hint(self, name: str, result: dict, hint: str | None) -> None:
        reads = self.global_reads(name)
        if reads:
            extra = ngettext("it reads the global variable {names} instead of taking the value "
                             "from its parameters?",
                             "it reads the global variables {names} instead of taking the "
                             "values from its parameters?", len(reads)).format(
                names=", ".join(reads))
            hint = f"{hint}; {extra}" if hint else extra
        if hint:
            result["hint"] = hint

    def global_reads(self, name: str) -> list[str]:
        info = self.info.get(self.find(name).get("defined_as", name), {})
        data = info["data"] if isinstance(info.get("data"), list) else []
        return [f"`{n}`" + (f" ({self.defined_at[n]})" if n in self.defined_at else "")
                for n in data if isinstance(n, str) and n.isidentifier()][:10]


def case_info(case: Any) -> dict:
    return {"label": case.title(), "inputs": case.describe(), "code": case.code(),
            "tags": sorted(case.tags), "published": case.published}
