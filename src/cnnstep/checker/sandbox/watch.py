"""How long a child has computed and how long it has waited, read from ``/proc``.

The checker's limits are CPU seconds, not wall-clock seconds: on a machine whose cores are busy
with other work the learner's code runs slower, and a verdict must not depend on that. Code that
waits without computing (``time.sleep``, a blocking read) uses no CPU, so the parent also counts
the time the child spent neither running nor waiting for a CPU (``/proc/PID/schedstat`` gives
both per task): a starved child is runnable, a sleeping one is not. A wall-clock backstop, many
times either limit, bounds everything else.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_RESCAN = 1.0  # seconds between two searches of /proc for the child's descendants
_LOOK = 0.02  # seconds between two looks at the child (each reads a few /proc files)


def _fields(path: str) -> list[bytes] | None:
    """The fields of a ``/proc/.../stat`` file after the command name (state first)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4096).rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _schedstat(path: str) -> float | None:
    """Seconds the task has run plus waited for a CPU (None when unknown)."""
    try:
        with open(path, "rb") as fh:
            run, wait = fh.read(200).split()[:2]
        return (int(run) + int(wait)) / 1e9
    except (OSError, ValueError):
        return None


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (a search of /proc by parent id)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _fields(f"/proc/{entry}/stat")
                if fields and len(fields) > 1 and fields[1].isdigit():
                    children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [root], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@dataclass
class Watch:
    """The CPU time and the progress of one child's process tree."""

    root: int
    pids: list[int] = field(default_factory=list)
    scanned: float = -1e9
    most_cpu: float = 0.0
    last: dict[str, float] = field(default_factory=dict)

    def _tree(self) -> list[int]:
        now = time.monotonic()
        if now - self.scanned >= _RESCAN:
            self.pids, self.scanned = descendants(self.root), now
        return self.pids

    def cpu(self) -> float:
        """CPU seconds (user and system) the tree has used, never decreasing."""
        total = 0.0
        for pid in self._tree():
            fields = _fields(f"/proc/{pid}/stat")
            if fields and len(fields) > 12:
                total += (int(fields[11]) + int(fields[12])) / _TICK
        self.most_cpu = max(self.most_cpu, total)
        return self.most_cpu

    def progress(self) -> float | None:
        """Seconds the busiest task of the tree ran or waited to run since the last call (None
        when /proc does not say: then nothing is counted as waiting). A process found runnable
        (state R: also when its cgroup's CPU quota holds it back, which schedstat does not
        count as waiting) or in disk sleep (D: reading a file, a page fault) counts as running
        for the whole interval."""
        seen: dict[str, float] = {}
        in_io = False
        for pid in self._tree():
            fields = _fields(f"/proc/{pid}/stat")
            in_io = in_io or bool(fields and fields[0] in (b"R", b"D"))
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    value = _schedstat(f"/proc/{pid}/task/{tid}/schedstat")
                    if value is not None:
                        seen[tid] = value
        if not seen:
            return None
        # A task first seen now (a new process) counts from its start.
        step = max(value - self.last.get(tid, 0.0) for tid, value in seen.items())
        self.last = seen
        return float("inf") if in_io else max(step, 0.0)


@dataclass
class Allowance:
    """What one step of a check may take: ``cpu`` seconds of computing, ``idle`` seconds of
    waiting without computing, and at most ``wall`` seconds of wall-clock time in all."""

    cpu: float
    idle: float
    wall: float


def _own_progress() -> float | None:
    """Seconds this thread (the parent's) has run or waited to run."""
    return _schedstat("/proc/thread-self/schedstat")


@dataclass
class Meter:
    """One step's limits, measured on a :class:`Watch` from the moment it is made.

    Waiting time is the time during which neither the child's busiest task nor this thread ran
    or waited for a CPU: a child that sleeps, or waits for what the parent will never send. The
    parent's own time (answering a remote call, or starved of a CPU itself) never counts.
    """

    watch: Watch
    allowance: Allowance
    deadline: float  # a later wall-clock deadline that also applies (the whole file's)
    cpu_end: float = 0.0
    idle_left: float = 0.0
    wall_end: float = 0.0
    mark: float = 0.0
    own: float | None = None

    def __post_init__(self) -> None:
        self.cpu_end = self.watch.cpu() + self.allowance.cpu
        self.idle_left = self.allowance.idle
        self.mark = time.monotonic()
        self.wall_end = min(self.deadline, self.mark + self.allowance.wall)
        self.watch.progress()
        self.own = _own_progress()

    def more_time(self, cpu: float, wall: float) -> None:
        """Allow ``cpu`` more CPU seconds and ``wall`` more seconds of wall-clock time (a remote
        call: the child's share of it, and the parent's time answering it), within the later
        deadline."""
        self.cpu_end += cpu
        self.wall_end = min(self.deadline, self.wall_end + wall)

    def over(self) -> bool:
        """Whether a limit is passed (looked at no more often than every ``_LOOK`` seconds)."""
        now = time.monotonic()
        if now >= self.wall_end:
            return True
        if now - self.mark < _LOOK:
            return False
        step, own = self.watch.progress(), _own_progress()
        if step is not None and own is not None and self.own is not None:
            self.idle_left -= max(0.0, (now - self.mark) - step - (own - self.own))
        self.mark, self.own = now, own
        return self.idle_left < 0 or self.watch.cpu() > self.cpu_end
