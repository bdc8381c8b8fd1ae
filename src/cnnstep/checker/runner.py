"""Run the checks in a child process and collect its verdicts (the parent side).

The parent never imports the learner's code: it starts ``cnnstep.checker.child``, sends it the
job as JSON and reads one JSON event per line. A function that overruns its time limit (even one
that swallows the child's own alarm) is killed from here; a new child then checks the functions
that are left. A statement that hangs or crashes while the file is loaded is skipped the same
way.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cnnstep
from cnnstep.checker.cases import FUNCTIONS
from cnnstep.checker.loader import Program, select_statements

# Helpers first, so that a caller's failure can be blamed on a helper already known to fail.
CHECK_ORDER = (
    "zero_pad",
    "conv_single_step",
    "create_mask_from_window",
    "distribute_value",
    "conv_forward",
    "pool_forward",
    "conv_backward",
    "pool_backward",
)


def _grace(timeout: float) -> float:
    """Seconds the parent waits beyond the child's own alarm before killing it."""
    return max(0.5, min(2.0, timeout / 2))

# Seconds allowed for the child to start (Python and NumPy imports).
_STARTUP = 30.0

DEFAULT_MEMORY_LIMIT = 4 * 1024**3


@dataclass
class Outcome:
    """Everything the checks found: one result per function, and warnings."""

    path: str
    results: dict[str, dict]
    warnings: list[str] = field(default_factory=list)
    skipped_statements: int = 0
    unused_imports: list[str] = field(default_factory=list)


def _child_command() -> list[str]:
    # `-c` puts the working directory (the learner's) first on sys.path; drop it before
    # importing cnnstep so that a learner's file cannot shadow the checker's modules.
    code = "import sys; sys.path.pop(0); from cnnstep.checker.child import main; main()"
    return [sys.executable, "-c", code]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(cnnstep.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, env.get("PYTHONPATH", "")) if p
    )
    # One thread: faster start, far less virtual memory under the memory limit.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class _Child:
    """One child process and a line reader on its stdout, with deadlines."""

    def __init__(self, job: dict, cwd: str):
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            _child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, cwd=cwd, env=_child_env(), start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(job).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.closed = False

    def next_event(self, deadline: float) -> dict | None:
        """The next event; ``None`` at EOF; raises TimeoutError past the deadline."""
        while b"\n" not in self.buffer:
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not self.selector.select(timeout=left):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                self.closed = True
                if not self.buffer:
                    return None
                self.buffer += b"\n"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return {"event": "garbage"}

    def stop(self) -> str:
        """Kill the child (and anything it started); return the end of its stderr."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        self.selector.close()
        self.proc.stdout.close()
        self.stderr.seek(0)
        tail = self.stderr.read()[-2000:].decode("utf-8", "replace").strip()
        self.stderr.close()
        return tail

    def how_it_ended(self) -> str:
        code = self.proc.returncode
        if code is None:
            return "it was stopped"
        if code < 0:
            try:
                return f"the process was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"the process was killed by signal {-code}"
        return f"the process exited with code {code}"


def run_checks(
    program: Program,
    timeout: float = 10.0,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    functions: tuple[str, ...] = FUNCTIONS,
) -> Outcome:
    """Check ``functions`` of a learner's program in child processes; see :func:`check_file`."""
    selection = select_statements(program.units)
    outcome = Outcome(program.path, {}, list(program.warnings), selection.skipped_count,
                      selection.unused_imports)
    remaining = [name for name in CHECK_ORDER if name in functions]
    skip: set[int] = set()
    known: dict[str, str] = {}
    calls: dict[str, list[str]] = {}
    cwd = str(Path(program.path).resolve().parent)
    while remaining:
        job = {
            "path": program.path,
            "units": [{"source": u.source, "label": u.label} for u in program.units],
            "skip": sorted(skip),
            "functions": remaining,
            "known": known,
            "timeout": timeout,
            "memory_limit": memory_limit,
        }
        child = _Child(job, cwd)
        current: str | None = None
        executing: tuple[int, str] | None = None
        deadline = time.monotonic() + _STARTUP + timeout
        finished = False
        timed_out = False
        try:
            while True:
                event = child.next_event(deadline)
                if event is None:
                    break
                kind = event.get("event")
                now = time.monotonic()
                if kind == "exec":
                    executing = (event["index"], event["where"])
                    deadline = now + timeout + _grace(timeout)
                elif kind == "warning":
                    outcome.warnings.append(event["message"])
                elif kind == "loaded":
                    executing = None
                    deadline = now + timeout + _grace(timeout)
                elif kind in ("start", "diagnose"):
                    current = event["name"]
                    calls[current] = event.get("calls", calls.get(current, []))
                    deadline = now + timeout + _grace(timeout)
                elif kind == "result":
                    name = event["name"]
                    outcome.results[name] = event["result"]
                    known[name] = event["result"]["status"]
                    if name in remaining:
                        remaining.remove(name)
                    current = None
                    deadline = now + timeout + _grace(timeout)
                elif kind == "done":
                    finished = True
                    break
        except TimeoutError:
            timed_out = True
        except BaseException:  # Ctrl-C or a bug here: never leave learner code running
            child.stop()
            raise
        tail = child.stop()
        if finished:
            break
        ended = child.how_it_ended()
        if current is not None:
            if timed_out:
                result = {"status": "timeout",
                          "message": f"did not finish within {timeout:g} s (the process was "
                                     "stopped)",
                          "hint": "an endless loop (a `while` whose condition never changes?) "
                                  "or loops over far more than the input"}
                stuck = [h for h in calls.get(current, []) if known.get(h) == "timeout"]
                if stuck:
                    result["hint"] = (f"it calls your {', '.join(f'`{h}`' for h in stuck)}, "
                                      "which does not finish either: probably the cause")
            else:
                result = {"status": "error",
                          "message": f"the check crashed: {ended}" + _last_line(tail),
                          "hint": "the process died while running this function (out of "
                                  "memory, or os._exit/a crash in native code?)"}
            outcome.results[current] = result
            known[current] = result["status"]
            remaining.remove(current)
        elif executing is not None:
            index, where = executing
            skip.add(index)
            why = (f"took longer than {timeout:g} s" if timed_out else f"crashed ({ended})")
            outcome.warnings.append(f"{where}: this statement {why} while the file was "
                                    "loaded; it was skipped")
        else:
            reason = "did not start in time" if timed_out else f"failed to start ({ended})"
            for name in remaining:
                outcome.results[name] = {"status": "error",
                                         "message": f"the checker's process {reason}"
                                                    + _last_line(tail)}
            break
    return outcome


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return f": {lines[-1].strip()}" if lines else ""
