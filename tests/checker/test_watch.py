"""The checker's limits: CPU seconds and time spent waiting, measured on a real child process.

What these show holds on a busy machine: a child that computes is never counted as waiting, however
little CPU it gets; one that sleeps is.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cnnstep.checker.sandbox.watch import Allowance, Meter, Watch, descendants

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


def test_a_child_that_sleeps_is_stopped_by_its_waiting_allowance():
    proc = child("import time; time.sleep(600)")
    try:
        meter = Meter(Watch(proc.pid), Allowance(cpu=100, idle=0.5, wall=600), deadline=1e18)
        start = time.monotonic()
        assert stopped_by(meter, 120)
        assert meter.idle_left < 0 and time.monotonic() < meter.wall_end
        assert time.monotonic() - start >= 0.5  # never before it waited that long
    finally:
        proc.kill()
        proc.wait()


def test_a_child_that_computes_is_never_waiting_and_is_stopped_by_cpu_time():
    proc = child("while True: pass")
    try:
        watch = Watch(proc.pid)
        meter = Meter(watch, Allowance(cpu=1.0, idle=1.0, wall=600), deadline=1e18)
        assert stopped_by(meter, 300)
        # Stopped for its CPU time: runnable all along, it never counted as waiting, however
        # busy the machine (the test suite runs beside two busy loops: at a tenth of a core it
        # takes 10 s to use its CPU second, and would have been stopped after 1 s of waiting).
        assert watch.cpu() > meter.cpu_end and meter.idle_left > 0
    finally:
        proc.kill()
        proc.wait()


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
        for pid in descendants(proc.pid)[1:]:
            subprocess.run(["kill", "-9", str(pid)], check=False)
        proc.kill()
        proc.wait()
