"""Run the checks: children started one after another until every function has a verdict.

The child (:mod:`cnnstep.checker.sandbox.child`) loads the chosen statements and calls the
learner's functions on inputs sent from here; what comes back is plain data, handed to a
:class:`Judge` (:class:`cnnstep.checker.judging.judge.State`), which alone holds the expected
values and the verdicts. This module knows nothing of either: it drives the messages. A
statement or function that overruns its limit, a crash, or a malformed message ends that child;
a new one checks what is left. A total deadline bounds the whole file: no message extends it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.sandbox.protocol import MalformedError, text
from cnnstep.checker.sandbox.session import (
    MAX_EVENTS,
    EndedError,
    Session,
    as_int,
    last_line,
    total_deadline,
)

_RPC_CPU = 0.005  # CPU seconds the child may spend sending and reading one remote call
_MAX_WARNINGS = 200


class Judge(Protocol):
    """What the runner asks of the judging side
    (:class:`cnnstep.checker.judging.judge.State`)."""

    plan: dict
    names: list[str]
    described: bool
    current: tuple[str, int] | None

    def describe(self, message: dict) -> None: ...
    def find(self, name: str) -> dict: ...
    def request(self, name: str, defined_as: str, rpc: list[str]) -> tuple[list, dict]: ...
    def returned(self, run: Any, data: Any) -> None: ...
    def raised(self, run: Any, data: Any) -> None: ...
    def verdict(self, name: str, found: dict, runs: list, timed_out: bool, case: int) -> dict: ...
    def ended(self, name: str, why: str, how: str, tail: str) -> dict: ...
    def blame(self, name: str, result: dict, swapped: list | None) -> None: ...
    def remote_call(self, message: dict) -> dict: ...


@dataclass
class Checked:
    """What the children said: a verdict per function, and warnings about the file."""

    results: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def run_checks(judge: Judge, order: list[str], timeout: float, memory_limit: int | None,
               isolation: str, total_timeout: float | None = None) -> Checked:
    """Check the functions ``order`` names, in that order, in sandboxed children."""
    checked = Checked()
    plan = judge.plan
    total = total_timeout or total_deadline(timeout, len(order))
    deadline = time.monotonic() + total
    remaining = list(order)
    skip: set[int] = set()
    while remaining and time.monotonic() < deadline:
        try:
            session = Session(plan, isolation, memory_limit, deadline)
        except OSError as exc:
            for name in remaining:
                checked.results[name] = {"status": "error", "message": _(
                    "the checker's process could not start ({why})").format(why=exc)}
            remaining.clear()
            break
        try:
            _one_child(session, judge, remaining, skip, timeout, checked)
            break
        except EndedError as ended:
            session.stop()
            if not _blame(ended, session, judge, checked, skip, remaining, timeout):
                break
        finally:
            session.stop()
    for name in remaining:
        checked.results.setdefault(name, {
            "status": "timeout",
            "message": _("the whole check ran past its total deadline ({seconds} s) before "
                         "this function").format(seconds=f"{total:g}")})
    return checked


def _one_child(session: Session, judge: Judge, remaining: list[str], skip: set[int],
               timeout: float, checked: Checked) -> None:
    session.start(timeout)
    _load(session, judge.plan, skip, timeout, checked)
    if not judge.described:
        session.send({"op": "describe", "names": judge.names})
        message = session.receive(session.meter(timeout))
        try:
            judge.describe(message)
        except MalformedError:
            raise EndedError("malformed: bad description") from None
    while remaining:
        name = remaining[0]
        checked.results[name] = _check_one(session, judge, name, timeout)
        remaining.pop(0)
    _diagnose(session, judge, checked, timeout)


def load_warning(info: dict, message: str) -> str:
    """The warning for a top-level statement that raised while the file was loaded."""
    loc, first = info["where"], info["first"]
    if first.startswith(("import ", "from ", "try:")):
        return _("{where}: `{first}` failed ({message}); functions that use it will fail").format(
            where=loc, first=first, message=message)
    return _("{where}: `{first}` failed ({message})").format(where=loc, first=first,
                                                             message=message)


def _load(session: Session, plan: dict, skip: set[int], timeout: float,
          checked: Checked) -> None:
    session.plan_index = None
    session.send({"op": "load", "skip": sorted(skip), "statements": [
        {"label": s["label"], "node": s["node"]} for s in plan["statements"]]})
    statements = plan["statements"]
    # Only an `exec` of a later statement starts a new per-statement limit: no other message
    # extends it.
    meter = session.meter(timeout)
    last = -1
    for _event in range(MAX_EVENTS):
        message = session.receive(meter)
        ev, index = message.get("ev"), as_int(message.get("index"))
        if ev == "loaded":
            session.plan_index = None
            return
        if index is None or not 0 <= index < len(statements):
            raise EndedError("malformed: bad statement index")
        info = statements[index]
        if ev == "exec" and index > last:
            last = index
            session.plan_index = index
            meter = session.meter(timeout)
        elif ev == "warn" and index == last:
            if len(checked.warnings) >= _MAX_WARNINGS:
                continue
            if message.get("kind") == "timeout":
                checked.warnings.append(f"{info['where']}: `{info['first']}` took longer than "
                                        f"{timeout:g} s and was stopped")
            else:
                checked.warnings.append(load_warning(info, text(message, "text")))
        else:
            raise EndedError("malformed: unexpected event while loading")
    raise EndedError("malformed: too many messages")


def _check_one(session: Session, judge: Judge, name: str, timeout: float) -> dict:
    found = judge.find(name)
    if "status" in found:
        return found
    runs, timed_out, case = _run_cases(session, judge, name, found["defined_as"], [], timeout)
    return judge.verdict(name, found, runs, timed_out, case)


def _run_cases(session: Session, judge: Judge, name: str, defined_as: str,
               rpc: list[str], timeout: float) -> tuple[list, bool, int]:
    """Send the cases, collect what came back. Returns (runs, timed out, case number)."""
    runs, request = judge.request(name, defined_as, rpc)
    judge.current = (name, 0)
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
            session.send(judge.remote_call(message), meter)
            meter.more_time(_RPC_CPU, time.monotonic() - began)
            continue
        number = as_int(message.get("i"))
        if number is None or not 0 <= number < len(runs):
            raise EndedError("malformed: bad case number")
        current = number
        judge.current = (name, number)
        if ev == "returned":
            judge.returned(runs[number], message.get("got"))
        elif ev == "raised":
            judge.raised(runs[number], message.get("error"))
        elif ev != "case":
            raise EndedError("malformed: unexpected event")
    raise EndedError("malformed: too many messages")


def _diagnose(session: Session, judge: Judge, checked: Checked, timeout: float) -> None:
    """Run failing callers again with cnnstep's helpers (answered from here); only hints
    change, and only now that every verdict is final."""
    for name, result in checked.results.items():
        calls = result.get("calls")
        if not calls or result["status"] not in ("fail", "error", "timeout"):
            continue
        defined_as = result.get("defined_as", name)
        try:
            runs, timed_out, _calls = _run_cases(session, judge, name, defined_as, calls,
                                                 timeout)
        except EndedError:
            return
        judge.blame(name, result, None if timed_out else runs)


def _blame(ended: EndedError, session: Session, judge: Judge, checked: Checked,
           skip: set[int], remaining: list[str], timeout: float) -> bool:
    """Record why the child ended; True when a new child should check what is left."""
    index = session.plan_index
    why = ended.why
    if judge.current is not None and remaining and judge.current[0] == remaining[0]:
        name = remaining.pop(0)
        checked.results[name] = judge.ended(name, why, session.how_it_ended(), session.tail)
        judge.current = None
        return True
    if index is not None:
        skip.add(index)
        info = judge.plan["statements"][index]
        if why == "timeout":
            what = _("took longer than {seconds} s").format(seconds=f"{timeout:g}")
        elif why == "crash":
            what = _("crashed ({how})").format(how=session.how_it_ended())
        else:
            what = _("sent a malformed message")
        checked.warnings.append(_("{where}: this statement {what} while the file was loaded; it "
                                  "was skipped").format(where=info["where"], what=what))
        return True
    if judge.current is None:
        reason = _("the checker's process did not start in time") if why == "timeout" \
            else _("the checker's process failed to start ({why})").format(why=why)
        for name in remaining:
            checked.results[name] = {"status": "error",
                                     "message": reason + last_line(session.tail)}
        remaining.clear()
        return False
    judge.current = None  # ended during diagnosis: the verdicts stand
    return False
