"""The checker's limits: CPU seconds and time spent sleeping, measured on real child processes.

What these show holds on a busy machine: a child that computes is never counted as waiting, however
little CPU it gets (starved, or its time stolen by a hypervisor); one that sleeps is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cnnstep.checker.sandbox.watch import Allowance, Look, Meter, Watch, descendants, slept

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def stopped_by(meter: Meter, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if meter.over():
            return True
        time.sleep(0.01)
    return False


def end(proc: subprocess.Popen) -> None:
    for pid in descendants(proc.pid)[1:]:
        subprocess.run(["kill", "-9", str(pid)], check=False)
    proc.kill()
    proc.wait()


def test_only_an_interval_asleep_at_both_ends_counts_and_never_the_time_that_went_missing():
    asleep = Look(False, {"1": 5.0, "2": 1.0})
    # Computing at either end: nothing, even when schedstat accounts for a fraction of the
    # interval (a hypervisor's steal time is in neither its run time nor its wait for a CPU).
    for before, after in [(asleep, Look(True, {"1": 5.1})), (Look(True, {"1": 5.0}), asleep)]:
        assert slept(before, after, seconds=1.0, own=0.0) == 0.0
    # Asleep at both: the interval, less the busiest thread's progress and the parent's time.
    assert slept(asleep, Look(False, {"1": 5.25, "2": 1.5}), 1.0, 0.0) == pytest.approx(0.5)
    assert slept(asleep, Look(False, {"1": 5.0, "2": 1.0}), 1.0, 0.75) == pytest.approx(0.25)
    assert slept(asleep, Look(False, {"1": 5.0, "2": 3.0}), 1.0, 0.0) == 0.0
    # A thread first seen now counts from its start; /proc silent: nothing counts.
    assert slept(asleep, Look(False, {"1": 5.0, "9": 0.25}), 1.0, 0.0) == pytest.approx(0.75)
    assert slept(None, asleep, 1.0, 0.0) == slept(asleep, None, 1.0, 0.0) == 0.0


def test_a_child_that_sleeps_is_stopped_by_its_waiting_allowance():
    proc = child("import time; time.sleep(600)")
    try:
        meter = Meter(Watch(proc.pid), Allowance(cpu=100, idle=0.5, wall=600), deadline=1e18)
        start = time.monotonic()
        assert stopped_by(meter, 120)
        assert meter.idle_left < 0 and time.monotonic() < meter.wall_end
        assert time.monotonic() - start >= 0.5  # never before it waited that long
    finally:
        end(proc)


def test_a_child_that_computes_is_never_waiting_and_is_stopped_by_cpu_time():
    proc = child("while True: pass")
    try:
        watch = Watch(proc.pid)
        meter = Meter(watch, Allowance(cpu=1.0, idle=0.5, wall=600), deadline=1e18)
        assert stopped_by(meter, 300)
        # Stopped for its CPU time: runnable all along, it never counted as waiting, however
        # busy the machine (at a tenth of a core it takes 10 s to use its CPU second, and
        # would have been stopped after half a second of waiting).
        assert watch.cpu() > meter.cpu_end and meter.idle_left == 0.5
    finally:
        end(proc)


def test_a_starved_child_is_not_waiting():
    # The lowest priority beside one busy loop per core: it gets almost no CPU for a while.
    proc = child("import os; os.nice(19)\nwhile True: pass")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    spinners = [child("import time\nend = time.monotonic() + 3\n"
                      "while time.monotonic() < end: pass") for _ in range(cores or 1)]
    try:
        meter = Meter(Watch(proc.pid), Allowance(cpu=1e6, idle=0.5, wall=600), deadline=1e18)
        for spinner in spinners:
            while spinner.poll() is None:
                assert not meter.over()
                time.sleep(0.02)
        assert meter.idle_left == 0.5
    finally:
        for spinner in spinners:
            end(spinner)
        end(proc)


@pytest.mark.parametrize("code", [
    # The main thread waits on a thread that computes ...
    "import threading\nt = threading.Thread(target=lambda: [0 for _ in iter(int, 1)])\n"
    "t.start(); t.join()",
    # ... or on a process it starts once the check is under way.
    "import subprocess, sys, time\ntime.sleep(0.3)\n"
    "subprocess.run([sys.executable, '-c', 'while True: pass'])",
])
def test_a_child_that_waits_for_its_own_computing_thread_or_process_is_not_waiting(code):
    proc = child(code)
    try:
        watch = Watch(proc.pid)
        meter = Meter(watch, Allowance(cpu=1.0, idle=1.0, wall=600), deadline=1e18)
        assert stopped_by(meter, 300)
        # At most the 0.3 s of sleep before the second process starts, never the computing.
        assert watch.cpu() > meter.cpu_end and meter.idle_left > 0.5
    finally:
        end(proc)


def test_a_remote_calls_time_is_not_the_childs_sleep():
    proc = child("import time; time.sleep(600)")
    try:
        meter = Meter(Watch(proc.pid), Allowance(cpu=100, idle=0.5, wall=600), deadline=1e18)
        for _ in range(5):
            time.sleep(0.3)  # the parent answers a call: the child waits for it
            meter.more_time(0.0, 0.3)
            assert not meter.over()
        assert meter.idle_left > 0.3
    finally:
        end(proc)


def test_the_wall_clock_backstop_and_the_whole_tree():
    proc = child("import subprocess, sys, time\n"
                 "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                 "time.sleep(600)")
    try:
        for _ in range(500):
            if len(descendants(proc.pid)) == 2:
                break
            time.sleep(0.02)
        assert len(descendants(proc.pid)) == 2
        meter = Meter(Watch(proc.pid), Allowance(cpu=100, idle=100, wall=0.2), deadline=1e18)
        assert stopped_by(meter, 60)
        meter = Meter(Watch(proc.pid), Allowance(cpu=100, idle=100, wall=600),
                      deadline=time.monotonic() + 0.2)
        assert stopped_by(meter, 60)
    finally:
        end(proc)
