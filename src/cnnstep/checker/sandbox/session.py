"""One child process and the messages with it: start it, load the learner's statements, send a
request, read what comes back within the step's limits (see :mod:`cnnstep.checker.sandbox.watch`).
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import math
import threading
import time
from pathlib import Path
from typing import Any

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.sandbox.isolation import Sandboxed, numpy_path
from cnnstep.checker.sandbox.protocol import Channel, MalformedError, ast_data
from cnnstep.checker.sandbox.watch import Allowance, Meter, Watch
from cnnstep.checker.source.loader import Program, Selection, where

DEFAULT_MEMORY_LIMIT = 4 * 1024**3
MAX_TIMEOUT = 600.0  # seconds per function, at most
STARTUP = 10.0  # CPU seconds for the child to start (Python and NumPy imports)
MAX_EVENTS = 20000  # messages per request: more is an attack, not a check
# Wall-clock backstops are this many times the CPU limits: a busy machine slows a child down,
# and only code that neither computes nor waits (see checker.watch) should meet them.
WALL_FACTOR = 8
TOTAL_FACTOR = 4
_SLICE = 0.1  # seconds between two looks at the child while waiting for it
_CHILD_CODE = (Path(__file__).parent / "child.py").read_text(encoding="utf-8")


def check_timeout(timeout: object) -> float:
    """``timeout`` as seconds in (0, MAX_TIMEOUT]; ValueError naming it otherwise."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or \
            not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout: expected a number of seconds in (0, {MAX_TIMEOUT:g}], "
                         f"got {timeout!r}")
    return float(timeout)


def _grace(timeout: float) -> float:
    return max(0.5, min(2.0, timeout / 2))


def allowance(timeout: float) -> Allowance:
    """One statement's or one function's limits: ``timeout`` CPU seconds (the child stops
    itself there), a grace for the parent to stop a child that does not, as much time waiting
    without computing, and a wall-clock backstop."""
    limit = timeout + _grace(timeout)
    return Allowance(cpu=limit, idle=limit, wall=WALL_FACTOR * limit + STARTUP)


def total_deadline(timeout: float, functions: int = 8) -> float:
    """Wall-clock seconds the whole file may take by default: a backstop several times the
    CPU seconds of start-up, loading, and every function's limit."""
    return TOTAL_FACTOR * (STARTUP + timeout * (functions + 3))


# Set to stop every check running in this process at its next look at its child (within a
# tenth of a second): a grading run that was interrupted.
STOP = threading.Event()


class Cancelled(BaseException):
    """The check was stopped (:data:`STOP`); its child is killed on the way out."""


class EndedError(Exception):
    """The child stopped answering (timeout, crash or malformed message)."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class Session:
    """One child: start it, load the learner's statements, run requests."""

    plan_index: int | None = None  # the statement being loaded, while loading

    def __init__(self, plan: dict, isolation: str, memory: int | None, deadline: float):
        if STOP.is_set():
            raise Cancelled
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
            raise EndedError("crash") from None
        except TimeoutError:
            raise EndedError("timeout") from None

    def receive(self, meter: Meter) -> dict:
        """The next message, waiting in slices while the child is within ``meter``'s limits."""
        while True:
            if STOP.is_set():
                raise Cancelled
            if meter.over():
                raise EndedError("timeout")
            try:
                message = self.channel.receive(min(time.monotonic() + _SLICE, meter.wall_end))
            except TimeoutError:
                continue
            except MalformedError as exc:
                raise EndedError(f"malformed: {exc}") from None
            if message is None:
                raise EndedError("crash")
            return message

    def start(self, timeout: float) -> None:
        self.send({"units": self.plan["units"], "filename": self.plan["filename"],
                   "flags": self.plan["flags"], "timeout": timeout, "path": numpy_path()})
        startup = Meter(self.watch, Allowance(STARTUP, STARTUP, WALL_FACTOR * STARTUP),
                        self.deadline)
        if self.receive(startup).get("ev") != "ready":
            raise EndedError("malformed: no ready")

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


def make_plan(program: Program, selection: Selection) -> dict:
    """What the child is sent: the units' source, the chosen statements as AST data, the
    ``__future__`` flags."""
    flags = 0
    statements = []
    for statement in selection.statements:
        if statement.kind == "future" and isinstance(statement.node, ast.ImportFrom):
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




def last_line(tail: str) -> str:
    """``": <the last line of the child's stderr>"``, or nothing."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return f": {lines[-1][:200]}" if lines else ""


def as_int(value: Any) -> int | None:
    """``value`` when it is a plain int (not a bool), else None: for numbers from the child."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
