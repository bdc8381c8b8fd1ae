"""Run the checks: the parent side, which alone holds the expected values and the verdicts.

The child (:mod:`cnnstep.checker.child`, started by :mod:`cnnstep.checker.sandbox`) loads the
chosen statements and calls the learner's functions on inputs sent from here; what comes back
is plain data, compared here (:mod:`cnnstep.checker.judge`). A statement or function that
overruns its limit, a crash, or a malformed message ends that child; a new one checks what is
left. A total deadline bounds the whole file: no message extends it.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import math
import time
from pathlib import Path

from cnnstep.checker import judge
from cnnstep.checker.cases import FUNCTIONS
from cnnstep.checker.i18n import current_language
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.loader import Program, select_statements, where
from cnnstep.checker.outcome import Outcome
from cnnstep.checker.protocol import Channel, MalformedError, ast_data, text
from cnnstep.checker.sandbox import Sandboxed, fallback_warnings, numpy_path, resolve_isolation
from cnnstep.checker.watch import Allowance, Meter, Watch

# Helpers first, so that a caller's failure can be blamed on a helper already known to fail.
CHECK_ORDER = ("zero_pad", "conv_single_step", "create_mask_from_window", "distribute_value",
               "conv_forward", "pool_forward", "conv_backward", "pool_backward")

DEFAULT_MEMORY_LIMIT = 4 * 1024**3
MAX_TIMEOUT = 600.0  # seconds per function, at most
STARTUP = 10.0  # CPU seconds for the child to start (Python and NumPy imports)
MAX_EVENTS = 20000  # messages per request: more is an attack, not a check
# Wall-clock backstops are this many times the CPU limits: a busy machine slows a child down,
# and only code that neither computes nor waits (see checker.watch) should meet them.
WALL_FACTOR = 8
TOTAL_FACTOR = 4
_SLICE = 0.1  # seconds between two looks at the child while waiting for it
_RPC_CPU = 0.005  # CPU seconds the child may spend sending and reading one remote call
_CHILD_CODE = (Path(__file__).parent / "child.py").read_text(encoding="utf-8")


def _grace(timeout: float) -> float:
    return max(0.5, min(2.0, timeout / 2))


def allowance(timeout: float) -> Allowance:
    """One statement's or one function's limits: ``timeout`` CPU seconds (the child stops
    itself there), a grace for the parent to stop a child that does not, as much time waiting
    without computing, and a wall-clock backstop."""
    limit = timeout + _grace(timeout)
    return Allowance(cpu=limit, idle=limit, wall=WALL_FACTOR * limit + STARTUP)


def total_deadline(timeout: float, functions: int = len(FUNCTIONS)) -> float:
    """Wall-clock seconds the whole file may take by default: a backstop several times the
    CPU seconds of start-up, loading, and every function's limit."""
    return TOTAL_FACTOR * (STARTUP + timeout * (functions + 3))


class _EndedError(Exception):
    """The child stopped answering (timeout, crash or malformed message)."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class Session:
    """One child: start it, load the learner's statements, run requests."""

    def __init__(self, plan: dict, isolation: str, memory: int | None, deadline: float):
        self.deadline = deadline
        cpu = max(1, int(deadline - time.monotonic()) + 1)
        self.box = Sandboxed(_CHILD_CODE, isolation, memory, cpu)
        self.watch = Watch(self.box.proc.pid)
        assert self.box.proc.stdin is not None and self.box.proc.stdout is not None
        self.channel = Channel(self.box.proc.stdout.fileno(), self.box.proc.stdin.fileno())
        self.plan = plan
        self.tail = ""

    def meter(self, timeout: float) -> Meter:
        """The limits of one step that may run ``timeout`` CPU seconds of learner code."""
        return Meter(self.watch, allowance(timeout), self.deadline)

    def send(self, obj: dict, meter: Meter | None = None) -> None:
        try:
            self.channel.send(obj, meter.wall_end if meter else self.deadline)
        except (BrokenPipeError, ConnectionError):
            raise _EndedError("crash") from None
        except TimeoutError:
            raise _EndedError("timeout") from None

    def receive(self, meter: Meter) -> dict:
        """The next message, waiting in slices while the child is within ``meter``'s limits."""
        while True:
            if meter.over():
                raise _EndedError("timeout")
            try:
                message = self.channel.receive(min(time.monotonic() + _SLICE, meter.wall_end))
            except TimeoutError:
                continue
            except MalformedError as exc:
                raise _EndedError(f"malformed: {exc}") from None
            if message is None:
                raise _EndedError("crash")
            return message

    def start(self, timeout: float) -> None:
        self.send({"units": self.plan["units"], "filename": self.plan["filename"],
                   "flags": self.plan["flags"], "timeout": timeout, "path": numpy_path()})
        startup = Meter(self.watch, Allowance(STARTUP, STARTUP, WALL_FACTOR * STARTUP),
                        self.deadline)
        if self.receive(startup).get("ev") != "ready":
            raise _EndedError("malformed: no ready")

    def stop(self) -> str:
        with contextlib.suppress(OSError):
            self.channel.close()
        self.tail = self.box.kill()
        return self.tail

    def how_it_ended(self) -> str:
        code = self.box.proc.returncode
        if code is None or code == -9:
            return _("the process was stopped")
        if code < 0:
            return _("the process was killed by signal {signal}").format(signal=-code)
        return _("the process exited with code {code}").format(code=code)


def _plan(program: Program, selection) -> dict:
    flags = 0
    statements = []
    for statement in selection.statements:
        if statement.kind == "future":
            for alias in statement.node.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
            continue
        node = ast_data(statement.node)
        statements.append({"label": statement.label or "<file>", "node": node,
                           "where": where(statement.label, statement.node.lineno),
                           "first": _first_line(statement.node)})
    units = [{"label": u.label or "<file>", "source": u.source} for u in program.units]
    return {"units": units, "filename": Path(program.path).name, "flags": flags,
            "statements": statements}


def _first_line(node: ast.AST) -> str:
    try:
        line = ast.unparse(node).split("\n")[0]
    except (ValueError, RecursionError):
        line = type(node).__name__
    return line if len(line) <= 70 else line[:67] + "..."


def check_timeout(timeout: object) -> float:
    """``timeout`` as seconds in (0, MAX_TIMEOUT]; ValueError naming it otherwise."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or \
            not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout: expected a number of seconds in (0, {MAX_TIMEOUT:g}], "
                         f"got {timeout!r}")
    return float(timeout)


def check_program(program: Program, timeout: float, memory_limit: int | None, isolation: str,
                  total_timeout: float | None = None,
                  functions: tuple[str, ...] = FUNCTIONS) -> Outcome:
    """:func:`run_checks` under the isolation asked for (``auto|bubblewrap|process``), with
    the warning when ``auto`` falls back to process limits."""
    used = resolve_isolation(isolation)
    outcome = run_checks(program, timeout=timeout, memory_limit=memory_limit,
                         functions=functions, isolation=used, total_timeout=total_timeout)
    outcome.warnings[:0] = fallback_warnings(isolation, used)
    return outcome


def run_checks(program: Program, timeout: float = 10.0,
               memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
               functions: tuple[str, ...] = FUNCTIONS, isolation: str = "process",
               total_timeout: float | None = None) -> Outcome:
    """Check ``functions`` of a learner's program in sandboxed children; see ``check_file``."""
    selection = select_statements(program.units)
    outcome = Outcome(program.path, {}, list(program.warnings), selection.skipped_count,
                      selection.unused_imports, isolation, functions, current_language())
    plan = _plan(program, selection)
    total = total_timeout or total_deadline(timeout, len(functions))
    deadline = time.monotonic() + total
    state = judge.State(plan, selection, timeout)
    remaining = [n for n in CHECK_ORDER if n in functions]
    skip: set[int] = set()
    session: Session | None = None
    try:
        while remaining and time.monotonic() < deadline:
            try:
                session = Session(plan, isolation, memory_limit, deadline)
            except OSError as exc:
                for name in remaining:
                    outcome.results[name] = {"status": "error", "message": _(
                        "the checker's process could not start ({why})").format(why=exc)}
                remaining.clear()
                break
            try:
                session.start(timeout)
                _load(session, plan, skip, timeout, outcome)
                if not state.described:
                    session.send({"op": "describe", "names": judge.all_names()})
                    message = session.receive(session.meter(timeout))
                    try:
                        state.describe(message)
                    except MalformedError:
                        raise _EndedError("malformed: bad description") from None
                while remaining:
                    name = remaining[0]
                    outcome.results[name] = _check_one(session, state, name, timeout)
                    remaining.pop(0)
                _diagnose(session, state, outcome, timeout)
                break
            except _EndedError as ended:
                session.stop()
                if not _blame(ended, session, state, outcome, skip, remaining, timeout):
                    break
            finally:
                session.stop()
    finally:
        if session is not None:
            session.stop()
    for name in remaining:
        outcome.results.setdefault(name, {
            "status": "timeout",
            "message": _("the whole check ran past its total deadline ({seconds} s) before "
                         "this function").format(seconds=f"{total:g}")})
    return outcome


def _load(session: Session, plan: dict, skip: set[int], timeout: float,
          outcome: Outcome) -> None:
    session.plan_index = None  # type: ignore[attr-defined]
    session.send({"op": "load", "skip": sorted(skip), "statements": [
        {"label": s["label"], "node": s["node"]} for s in plan["statements"]]})
    statements = plan["statements"]
    # Only an `exec` of a later statement starts a new per-statement limit: no other message
    # extends it.
    meter = session.meter(timeout)
    last = -1
    for _event in range(MAX_EVENTS):
        message = session.receive(meter)
        ev, index = message.get("ev"), message.get("index")
        if ev == "loaded":
            session.plan_index = None  # type: ignore[attr-defined]
            return
        if not (isinstance(index, int) and 0 <= index < len(statements)):
            raise _EndedError("malformed: bad statement index")
        info = statements[index]
        if ev == "exec" and index > last:
            last = index
            session.plan_index = index  # type: ignore[attr-defined]
            meter = session.meter(timeout)
        elif ev == "warn" and index == last:
            if len(outcome.warnings) >= 200:
                continue
            if message.get("kind") == "timeout":
                outcome.warnings.append(f"{info['where']}: `{info['first']}` took longer than "
                                        f"{timeout:g} s and was stopped")
            else:
                outcome.warnings.append(judge.load_warning(info, text(message, "text")))
        else:
            raise _EndedError("malformed: unexpected event while loading")
    raise _EndedError("malformed: too many messages")


def _check_one(session: Session, state: judge.State, name: str, timeout: float) -> dict:
    found = state.find(name)
    if "status" in found:
        return found
    runs, timed_out, case = _run_cases(session, state, name, found["defined_as"], [], timeout)
    return state.verdict(name, found, runs, timed_out, case)


def _run_cases(session: Session, state: judge.State, name: str, defined_as: str,
               rpc: list[str], timeout: float) -> tuple[list, bool, int]:
    """Send the cases, collect what came back. Returns (runs, timed out, case number)."""
    runs, request = state.request(name, defined_as, rpc)
    state.current = (name, 0)
    meter = session.meter(timeout)
    session.send(request, meter)
    current = 0
    for _event in range(MAX_EVENTS + 200_000 * bool(rpc)):
        message = session.receive(meter)
        ev = message.get("ev")
        if ev == "ran":
            return runs, False, current
        if ev == "timeout":
            return runs, True, current
        if ev == "call" and rpc:
            # The parent's own work and the child's share of the call do not count.
            began = time.monotonic()
            session.send(state.remote_call(message), meter)
            meter.more_time(_RPC_CPU, time.monotonic() - began)
            continue
        number = message.get("i")
        if not (isinstance(number, int) and 0 <= number < len(runs)):
            raise _EndedError("malformed: bad case number")
        current = number
        state.current = (name, number)
        if ev == "returned":
            state.returned(runs[number], message.get("got"))
        elif ev == "raised":
            state.raised(runs[number], message.get("error"))
        elif ev != "case":
            raise _EndedError("malformed: unexpected event")
    raise _EndedError("malformed: too many messages")


def _diagnose(session: Session, state: judge.State, outcome: Outcome, timeout: float) -> None:
    """Run failing callers again with cnnstep's helpers (answered from here); only hints
    change, and only now that every verdict is final."""
    for name, result in outcome.results.items():
        calls = result.get("calls")
        if not calls or result["status"] not in ("fail", "error", "timeout"):
            continue
        defined_as = result.get("defined_as", name)
        try:
            runs, timed_out, _calls = _run_cases(session, state, name, defined_as, calls, timeout)
        except _EndedError:
            return
        state.blame(name, result, None if timed_out else runs)


def _blame(ended: _EndedError, session: Session, state: judge.State, outcome: Outcome,
           skip: set[int], remaining: list[str], timeout: float) -> bool:
    """Record why the child ended; True when a new child should check what is left."""
    index = getattr(session, "plan_index", None)
    why = ended.why
    if state.current is not None and remaining and state.current[0] == remaining[0]:
        name = remaining.pop(0)
        outcome.results[name] = state.ended(name, why, session.how_it_ended(), session.tail)
        state.current = None
        return True
    if index is not None:
        skip.add(index)
        info = state.plan["statements"][index]
        if why == "timeout":
            what = _("took longer than {seconds} s").format(seconds=f"{timeout:g}")
        elif why == "crash":
            what = _("crashed ({how})").format(how=session.how_it_ended())
        else:
            what = _("sent a malformed message")
        outcome.warnings.append(_("{where}: this statement {what} while the file was loaded; it "
                                  "was skipped").format(where=info["where"], what=what))
        return True
    if state.current is None:
        reason = _("the checker's process did not start in time") if why == "timeout" \
            else _("the checker's process failed to start ({why})").format(why=why)
        for name in remaining:
            outcome.results[name] = {"status": "error",
                                     "message": reason + judge.last_line(session.tail)}
        remaining.clear()
        return False
    state.current = None  # ended during diagnosis: the verdicts stand
    return False
