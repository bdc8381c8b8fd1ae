"""The child process that runs a learner's code (started by :mod:`cnnstep.checker.runner`).

It reads one job (JSON) on stdin, runs the selected top-level statements of the learner's file,
then checks the requested functions one by one, writing one JSON object per line to its
original stdout. The learner's own prints go nowhere. Each statement and each function gets a
time limit (SIGALRM here; the parent kills the process if that is not enough), and the process
has a memory limit. Nothing but JSON goes back to the parent.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import contextlib
import json
import os
import signal
import sys
import traceback
import types
import warnings

_OUT_FD: int | None = None
_MISSING = object()


class CheckTimeout(BaseException):
    """Raised by SIGALRM inside the learner's code (a BaseException, to get past `except
    Exception:` in the learner's code)."""


def emit(obj: dict) -> None:
    data = (json.dumps(obj, default=str) + "\n").encode()
    while data:
        written = os.write(_OUT_FD, data)
        data = data[written:]


def _on_alarm(signum, frame):
    raise CheckTimeout()


@contextlib.contextmanager
def time_limit(seconds: float):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _isolate_output() -> None:
    """Keep stdout for results; the learner's prints and warnings go to /dev/null."""
    global _OUT_FD
    _OUT_FD = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    warnings.simplefilter("ignore")


def _limit_memory(limit_bytes: int | None) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX: no memory limit
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limit_bytes:
        with contextlib.suppress(ValueError, OSError):
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit_bytes = min(limit_bytes, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


class Learner:
    """The learner's namespace, built by running the selected statements."""

    def __init__(self, job: dict):
        from cnnstep.checker.loader import Unit, select_statements, where

        self.job = job
        self.units = [Unit(u["source"], u["label"]) for u in job["units"]]
        self.path = job["path"]
        self.selection = select_statements(self.units)
        self.namespace: dict = {"__name__": "__learner__", "__builtins__": builtins,
                                "__file__": self.path}
        self.filenames = {u.label or self.path for u in self.units}
        self.defined_at: dict[str, str] = {}
        self.fn_nodes: dict[str, ast.AST] = {}
        self._where = where
        for statement in self.selection.statements:
            for name in statement.binds:
                self.defined_at[name] = where(statement.label, statement.node.lineno)
            if statement.kind == "def":
                self.fn_nodes[statement.node.name] = statement.node

    def run_statements(self, limit: float) -> None:
        flags = 0
        for statement in self.selection.statements:
            if statement.kind == "future":
                for alias in statement.node.names:
                    feature = getattr(__future__, alias.name, None)
                    if feature is not None:
                        flags |= feature.compiler_flag
        skip = set(self.job.get("skip", []))
        for index, statement in enumerate(self.selection.statements):
            if index in skip or statement.kind == "future":
                continue
            loc = self._where(statement.label, statement.node.lineno)
            emit({"event": "exec", "index": index, "where": loc})
            module = ast.Module(body=[statement.node], type_ignores=[])
            filename = statement.label or self.path
            try:
                code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
                with time_limit(limit):
                    exec(code, self.namespace)
            except CheckTimeout:
                emit({"event": "warning", "message": f"{loc}: `{_first_line(statement.node)}` "
                      f"took longer than {limit:g} s and was stopped"})
            except BaseException as exc:  # noqa: BLE001 - anything the learner's code raises
                text = f"{type(exc).__name__}: {exc}".strip()
                if statement.kind in ("import", "try"):
                    names = ", ".join(f"`{n}`" for n in statement.binds)
                    users = f"that use {names}" if names else "that need names from it"
                    message = (f"{loc}: `{_first_line(statement.node)}` failed ({text}); "
                               f"functions {users} will fail")
                else:
                    message = f"{loc}: `{_first_line(statement.node)}` failed ({text})"
                emit({"event": "warning", "message": message})
        emit({"event": "loaded"})

    def where(self, lineno: int, label: str | None) -> str:
        return self._where(label, lineno)

    def error_info(self, exc: BaseException) -> dict:
        """Exception type, message, and the learner's line where it happened."""
        info = {"type": type(exc).__name__, "message": str(exc).split("\n")[0][:300]}
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if f.filename in self.filenames]
        if mine:
            frame = mine[-1]
            label = None if frame.filename == self.path else frame.filename
            info["where"] = self._where(label, frame.lineno)
            info["function"] = frame.name
            unit = next((u for u in self.units if (u.label or self.path) == frame.filename), None)
            if unit is not None:
                lines = unit.source.split("\n")
                if 0 < frame.lineno <= len(lines):
                    info["line"] = lines[frame.lineno - 1].strip()
        return info


def _first_line(node: ast.AST) -> str:
    text = ast.unparse(node).split("\n")[0]
    return text if len(text) <= 70 else text[:67] + "..."


def _called_helpers(fn, name: str) -> list[str]:
    """Which of the eight (or their old names) this function refers to, by name."""
    from cnnstep.checker.cases import ALIASES, FUNCTIONS

    candidates = set(FUNCTIONS) | {a for v in ALIASES.values() for a in v}
    names: set[str] = set()
    stack = [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is None:
            continue
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    own = {name} | set(ALIASES.get(name, ()))
    return sorted((names & candidates) - own)


def _canonical(name: str) -> str:
    from cnnstep.checker.cases import ALIASES

    for canonical, olds in ALIASES.items():
        if name in olds:
            return canonical
    return name


class Checker:
    def __init__(self, learner: Learner, reference, timeout: float, known: dict):
        self.learner = learner
        self.reference = reference
        self.timeout = timeout
        self.known = dict(known)  # name -> status, from this run and earlier ones
        self.current_case = None  # the case being run, to say which one hangs

    def find(self, name: str):
        from cnnstep.checker.cases import ALIASES

        ns = self.learner.namespace
        for candidate in (name,) + ALIASES.get(name, ()):
            if candidate in ns:
                return candidate, ns[candidate]
        return None, _MISSING

    def run_battery(self, name: str, fn) -> list:
        from cnnstep.checker.cases import arguments, cases_for
        from cnnstep.checker.compare import compare
        from cnnstep.checker.hints import Run

        runs = []
        for case in cases_for(name):
            self.current_case = case
            values = case.values(self.reference)
            expected = getattr(self.reference, name)(*arguments(name, values))
            run = Run(case, "pass", values, expected)
            try:
                run.got = fn(*arguments(name, values))
            except CheckTimeout:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit etc. are errors too
                run.status, run.error = "error", exc
                runs.append(run)
                continue
            try:
                verdict = compare(name, run.got, expected, values, case.tags)
            except CheckTimeout:
                raise
            except Exception as exc:  # an odd object that cannot even be compared
                verdict = {"ok": False, "message": f"returned something that cannot be "
                           f"compared ({type(exc).__name__}: {exc})", "kind": "type"}
            if verdict["ok"]:
                run.note = verdict.get("note")
            else:
                run.status, run.problem = "fail", verdict
            runs.append(run)
        return runs

    @contextlib.contextmanager
    def swapped(self, helpers: list[str]):
        ns = self.learner.namespace
        saved = {h: ns[h] for h in helpers if h in ns}
        try:
            for h in helpers:
                ns[h] = getattr(self.reference, _canonical(h))
            yield
        finally:
            for h in helpers:
                if h in saved:
                    ns[h] = saved[h]
                else:
                    ns.pop(h, None)

    def check(self, name: str) -> dict:
        from cnnstep.checker.compare import summarize
        from cnnstep.checker.hints import global_reads, hint_for

        defined_as, fn = self.find(name)
        if fn is _MISSING:
            return {"status": "missing", "message": "not defined in the file"}
        if not callable(fn):
            return {"status": "missing", "defined_as": defined_as,
                    "message": f"`{defined_as}` is a {type(fn).__name__}, not a function"}
        calls = [h for h in _called_helpers(fn, name) if callable(self.learner.namespace.get(h))]
        emit({"event": "start", "name": name, "calls": calls})
        result: dict = {"defined_as": defined_as} if defined_as != name else {}
        if calls:
            result["calls"] = calls
        try:
            with time_limit(self.timeout):
                runs = self.run_battery(name, fn)
        except CheckTimeout:
            case = self.current_case
            result.update(status="timeout", case=_case_info(case),
                          message=f"{case.label}: did not finish within {self.timeout:g} s",
                          hint="an endless loop (a `while` whose condition never changes?) or "
                               "loops over far more than the input")
            bad = [h for h in calls if self.known.get(_canonical(h)) not in (None, "pass")]
            if bad:
                runs = self._with_reference_helpers(name, fn, calls)
                if runs is not None and all(r.status == "pass" for r in runs):
                    result["hint"] = (f"it runs until the time limit only because it calls your "
                                      f"{_names(bad)}, which {'do' if len(bad) > 1 else 'does'} "
                                      f"not finish either; with cnnstep's in its place it passes")
            return result

        failing = [r for r in runs if r.status != "pass"]
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
        result["case"] = _case_info(case)
        part = 0
        problem = reported.problem or {}
        from cnnstep.checker.cases import OUTPUT_NAMES

        names = OUTPUT_NAMES[name]
        if len(names) > 1 and problem.get("part") in names:
            part = names.index(problem["part"])  # which of the returned values is wrong
        expected = reported.expected[part] if len(names) > 1 else reported.expected
        result["expected"] = summarize(expected)
        if reported.error is not None:
            result["error"] = self.learner.error_info(reported.error)
            result["got"] = {"type": "exception", "exception": result["error"]["type"]}
            where = result["error"].get("where")
            result["message"] = (f"raised {result['error']['type']}: {result['error']['message']}"
                                 + (f" (at {where})" if where else ""))
        else:
            got = reported.got
            if len(names) > 1 and isinstance(got, tuple | list) and len(got) == len(names):
                got = got[part]
            result["got"] = summarize(got)
            result["message"] = problem.get("message", "wrong result")
            if "diff" in problem:
                result["diff"] = problem["diff"]
        label = case.label if not case.published else f"{case.label} (from the material)"
        result["message"] = f"{label}: {result['message']}"

        context = {
            "reference": self.reference,
            "fn_node": self.learner.fn_nodes.get(defined_as),
            "skipped_names": self.learner.selection.skipped_names,
            "where": lambda lineno: self.learner.where(lineno, self._label_of(defined_as)),
        }
        hint = hint_for(name, runs, reported, context)
        bad = [h for h in calls if self.known.get(_canonical(h)) not in (None, "pass")]
        if calls:
            swapped_runs = self._with_reference_helpers(name, fn, calls)
            failing_swapped = [r for r in swapped_runs or [] if r.status != "pass"]
            if swapped_runs is not None and not failing_swapped:
                culprits = bad or calls
                if bad:
                    what = {"error": "raises an error", "timeout": "does not finish"}.get(
                        self.known.get(_canonical(bad[0])), "is wrong")
                    what += " (see above)" if len(bad) == 1 else ""
                    if len(bad) > 1:
                        what = "fail their own checks"
                else:
                    what = ("go wrong" if len(culprits) > 1 else "goes wrong") + \
                        " on the values it passes"
                hint = (f"it fails only because it calls your {_names(culprits)}, which "
                        f"{what}: with cnnstep's {_names(culprits, code=False)} in place it "
                        "passes every case")
                result["helper"] = culprits
            elif bad:
                own = None
                if failing_swapped:
                    first = min(failing_swapped, key=lambda r: r.case.sort_key())
                    own = hint_for(name, swapped_runs, first, context)
                hint = (own + "; " if own else "") + (
                    f"it also calls your {_names(bad)}, which fails on its own")
        reads = global_reads(fn, self.learner.namespace, self.learner.defined_at)
        if reads:
            extra = ("it reads the global variable(s) " + ", ".join(reads) +
                     " instead of taking the value from its parameters?")
            hint = f"{hint}; {extra}" if hint else extra
        if hint:
            result["hint"] = hint
        return result

    def _label_of(self, name: str) -> str | None:
        for statement in self.learner.selection.statements:
            if statement.kind == "def" and statement.node.name == name:
                return statement.label
        return None

    def _with_reference_helpers(self, name: str, fn, helpers: list[str]) -> list | None:
        """Run the cases again with the learner's helpers replaced by cnnstep's; None when that
        overruns the time limit too. (The parent is told, so that it allows the extra time.)"""
        emit({"event": "diagnose", "name": name})
        try:
            with self.swapped(helpers), time_limit(self.timeout):
                return self.run_battery(name, fn)
        except CheckTimeout:
            return None


def _case_info(case) -> dict:
    return {"label": case.label, "inputs": case.describe(), "code": case.code(),
            "tags": sorted(case.tags), "published": case.published}


def _names(helpers: list[str], code: bool = True) -> str:
    quoted = [f"`{h}`" if code else h for h in helpers]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def main() -> None:
    job = json.loads(sys.stdin.read())
    _isolate_output()
    _limit_memory(job.get("memory_limit"))
    import faulthandler

    import numpy  # noqa: F401 - imported before the learner's directory joins sys.path

    from cnnstep import reference

    faulthandler.enable(file=sys.__stderr__)
    signal.signal(signal.SIGALRM, _on_alarm)
    directory = os.path.dirname(os.path.abspath(job["path"]))
    sys.path.insert(0, directory)
    with contextlib.suppress(OSError):
        os.chdir(directory)
    learner = Learner(job)
    learner.run_statements(job["timeout"])
    checker = Checker(learner, reference, job["timeout"], job.get("known", {}))
    for name in job["functions"]:
        result = checker.check(name)
        checker.known[name] = result["status"]
        emit({"event": "result", "name": name, "result": result})
    emit({"event": "done"})


if __name__ == "__main__":
    main()
