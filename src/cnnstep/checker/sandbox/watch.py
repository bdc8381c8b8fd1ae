"""How long a child has computed and how long it has waited, read from ``/proc``.

The checker's limits are CPU seconds, not wall-clock seconds: on a machine whose cores are busy
with other work the learner's code runs slower, and a verdict must not depend on that. Code that
waits without computing (``time.sleep``, a blocking read) uses no CPU, so the parent also stops a
child that has *slept* longer than its allowance.

Sleeping is read from the state of every thread of the child's tree, never inferred from time
that went missing: on a virtual machine the time the hypervisor steals from a running task is
in neither its run time nor its wait for a CPU (``/proc/PID/schedstat``), so a child that
computes flat out can account for as little as 80 % of the wall-clock time on a busy host. Only
an interval at whose start and end no thread of the tree was runnable (state ``R``: running, or
waiting for a CPU or for its cgroup's quota) or in disk sleep (``D``) counts, and from it the
time the busiest task ran or waited to run in between, and the parent's own time, are taken
away. A child that computes is therefore stopped for its CPU time alone, however busy the
machine. A wall-clock backstop, many times either limit, bounds everything else.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_RESCAN = 1.0  # seconds between two searches of /proc for the child's descendants
_RESCAN_ASLEEP = 0.2  # ... when the tree looks asleep (a new process may be the one computing)
_LOOK = 0.02  # seconds between two looks at the child (each reads a few /proc files)
_BUSY = (b"R", b"D")  # a task that computes, waits for a CPU, or waits for the disk


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
class Look:
    """One look at a child's tree: whether any thread was busy (``R`` or ``D``), and how long
    each thread had run or waited to run (seconds, from ``schedstat``)."""

    busy: bool
    progress: dict[str, float]


@dataclass
class Watch:
    """The CPU time and the state of one child's process tree."""

    root: int
    pids: list[int] = field(default_factory=list)
    scanned: float = -1e9
    most_cpu: float = 0.0

    def _tree(self, every: float = _RESCAN) -> list[int]:
        now = time.monotonic()
        if now - self.scanned >= every:
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

    def look(self) -> Look | None:
        """The state of every thread of the tree now (None when /proc does not say: then
        nothing counts as waiting)."""
        look = self._look(self._tree())
        if look is not None and not look.busy:
            # Asleep: search again for a process started since, which may be the one computing.
            look = self._look(self._tree(_RESCAN_ASLEEP))
        return look

    @staticmethod
    def _look(pids: list[int]) -> Look | None:
        busy, progress = False, {}
        for pid in pids:
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    fields = _fields(f"/proc/{pid}/task/{tid}/stat")
                    busy = busy or bool(fields and fields[0] in _BUSY)
                    value = _schedstat(f"/proc/{pid}/task/{tid}/schedstat")
                    if value is not None:
                        progress[tid] = value
        return Look(busy, progress) if progress else None


@dataclass
class Allowance:
    """What one step of a check may take: ``cpu`` seconds of computing, ``idle`` seconds of
    sleeping without computing, and at most ``wall`` seconds of wall-clock time in all."""

    cpu: float
    idle: float
    wall: float


def _own_progress() -> float | None:
    """Seconds this thread (the parent's) has run or waited to run."""
    return _schedstat("/proc/thread-self/schedstat")


def slept(before: Look | None, after: Look | None, seconds: float, own: float) -> float:
    """Seconds a child slept between two looks ``seconds`` apart, during which the parent ran
    or waited to run for ``own`` seconds: none unless the tree was asleep at both looks; then
    the interval less the busiest thread's run and wait for a CPU, and less the parent's time
    (a child waiting for the parent's answer is not waiting on its own)."""
    if before is None or after is None or before.busy or after.busy:
        return 0.0
    step = max((value - before.progress.get(tid, 0.0) for tid, value in after.progress.items()),
               default=0.0)
    return max(0.0, seconds - max(step, 0.0) - max(own, 0.0))


@dataclass
class Meter:
    """One step's limits, measured on a :class:`Watch` from the moment it is made (see the
    module's docstring for what counts as waiting)."""

    watch: Watch
    allowance: Allowance
    deadline: float  # a later wall-clock deadline that also applies (the whole file's)
    cpu_end: float = 0.0
    idle_left: float = 0.0
    wall_end: float = 0.0
    mark: float = 0.0
    own: float | None = None
    seen: Look | None = None

    def __post_init__(self) -> None:
        self.cpu_end = self.watch.cpu() + self.allowance.cpu
        self.idle_left = self.allowance.idle
        self.mark = time.monotonic()
        self.wall_end = min(self.deadline, self.mark + self.allowance.wall)
        self.seen = self.watch.look()
        self.own = _own_progress()

    def more_time(self, cpu: float, wall: float) -> None:
        """Allow ``cpu`` more CPU seconds and ``wall`` more seconds of wall-clock time (a remote
        call: the child's share of it, and the parent's time answering it), within the later
        deadline. The child waited for the answer: no sleep of its own, so the interval since
        the last look is not counted."""
        self.cpu_end += cpu
        self.wall_end = min(self.deadline, self.wall_end + wall)
        self.mark, self.own, self.seen = time.monotonic(), _own_progress(), self.watch.look()

    def over(self) -> bool:
        """Whether a limit is passed (looked at no more often than every ``_LOOK`` seconds)."""
        now = time.monotonic()
        if now >= self.wall_end:
            return True
        if now - self.mark < _LOOK:
            return False
        seen, own = self.watch.look(), _own_progress()
        if own is not None and self.own is not None:
            self.idle_left -= slept(self.seen, seen, now - self.mark, own - self.own)
        self.mark, self.own, self.seen = now, own, seen
        return self.idle_left < 0 or self.watch.cpu() > self.cpu_end
