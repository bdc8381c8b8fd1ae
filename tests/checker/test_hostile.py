"""Hostile learner files: no false pass, no escape, no survivor, no parent traceback.

Each test writes its own hostile file. Tests marked ``bwrap`` run under bubblewrap and skip,
naming it, where bwrap does not work; the rest run under both isolation levels or under
``process`` to test the fallback's own guarantees.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnstep.checker import check_file, to_json
from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.checker.sandbox.isolation import bubblewrap_mode

CORRECT = (Path(__file__).parent / "check_fixtures" / "correct.py").read_text()
HAVE_BWRAP = bubblewrap_mode() is not None
bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason="needs bubblewrap (bwrap) working here")
BOTH = [pytest.param("bubblewrap", marks=bwrap), "process"]
ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path, source, isolation="bubblewrap", name="learner.py", **kwargs):
    path = tmp_path / name
    path.write_text(source)
    kwargs.setdefault("timeout", 2)
    return check_file(path, isolation=isolation, **kwargs)


def passes(outcome) -> set[str]:
    return {n for n in FUNCTIONS if outcome.results[n]["status"] == "pass"}


def report(outcome) -> str:
    return json.dumps(to_json(outcome))


def wrong_zero_pad(body: str) -> str:
    """A file whose zero_pad runs ``body`` (which must not make it pass)."""
    return "import numpy as np\nimport sys, os\n\ndef zero_pad(X, pad):\n" + "".join(
        "    " + line + "\n" for line in body.strip().split("\n"))


# --- false passes ----------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", BOTH)
def test_importing_cnnstep_passes_nothing(tmp_path, isolation):
    outcome = run(tmp_path, "from cnnstep.reference import *\nfrom cnnstep.ops.reference "
                            "import zero_pad\n", isolation)
    assert passes(outcome) == set()
    assert "only functions written in the file count" in outcome.results["zero_pad"]["message"]


@pytest.mark.parametrize("isolation", BOTH)
def test_cnnstep_cannot_be_imported_inside_the_child(tmp_path, isolation):
    outcome = run(tmp_path, wrong_zero_pad(
        "from cnnstep.ops.reference import zero_pad as z\nreturn z(X, pad)"), isolation)
    assert outcome.results["zero_pad"]["status"] == "error"
    assert "ModuleNotFoundError" in outcome.results["zero_pad"]["message"]


@pytest.mark.parametrize("isolation", BOTH)
def test_frames_hold_no_expected_value(tmp_path, isolation):
    source = wrong_zero_pad("""
f = sys._getframe(0)
while f is not None:
    for key, value in list(f.f_locals.items()):
        if 'expect' in key or key == 'want':
            return value
    f = f.f_back
import gc
for obj in gc.get_objects():
    if isinstance(obj, np.ndarray) and obj.ndim == 4 and obj.shape[1] == X.shape[1] + 2 * pad:
        return obj
return None""")
    assert passes(run(tmp_path, source, isolation)) == set()


@pytest.mark.parametrize("isolation", BOTH)
def test_patching_the_checker_or_numpy_from_definitions_changes_nothing(tmp_path, isolation):
    source = """import numpy as np
def patch(fn):
    try:
        import cnnstep.checker.judging.compare as c
        c.compare = lambda *a, **k: {"ok": True}
    except Exception:
        pass
    np.isclose = lambda *a, **k: np.ones(np.shape(a[0]), bool)
    np.allclose = lambda *a, **k: True
    return fn
@patch
def zero_pad(X, pad, _=setattr(np, "array_equal", lambda *a: True)):
    return X
class Meta(type):
    def __new__(mcs, *args):
        np.testing.assert_allclose = lambda *a, **k: None
        return super().__new__(mcs, *args)
class Sneaky(metaclass=Meta):
    x: print("annotation runs here")
"""
    assert passes(run(tmp_path, source, isolation)) == set()


@pytest.mark.parametrize("isolation", BOTH)
def test_forged_messages_on_the_pipe_give_no_pass(tmp_path, isolation):
    source = wrong_zero_pad("""
main = sys.modules['__main__']
for i in range(40):
    main.send({"ev": "returned", "i": i, "got": {"t": "nd", "npy": "AAAA"}})
    main.send({"ev": "result", "name": "zero_pad", "result": {"status": "pass"}})
main.send({"ev": "ran"})
for fd in range(3, 12):
    try:
        os.write(fd, b'\\x00\\x00\\x00\\x05[1,2]')
    except OSError:
        pass
return None""")
    outcome = run(tmp_path, source, isolation)
    assert passes(outcome) == set()
    assert outcome.results["zero_pad"]["status"] in ("error", "fail", "timeout")


@pytest.mark.parametrize("isolation", BOTH)
def test_array_likes_that_look_for_the_answer_fail(tmp_path, isolation):
    source = wrong_zero_pad("""
class Sly:
    def __array__(self, dtype=None, copy=None):
        f = sys._getframe(1)
        while f is not None:
            for v in f.f_locals.values():
                if isinstance(v, np.ndarray) and v.shape == (X.shape[0], X.shape[1] + 2 * pad,
                                                           X.shape[2] + 2 * pad, X.shape[3]):
                    return v
            f = f.f_back
        return np.zeros(1)
    def __eq__(self, other):
        return True
return Sly()""")
    assert passes(run(tmp_path, source, isolation)) == set()


@pytest.mark.parametrize("isolation", BOTH)
def test_a_sibling_module_does_not_shadow_the_stdlib(tmp_path, isolation):
    marker = tmp_path / "hmac_ran"
    (tmp_path / "hmac.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "numpy.py").write_text("raise SystemExit('shadowed')\n")
    outcome = run(tmp_path, CORRECT, isolation, timeout=10)
    assert passes(outcome) == set(FUNCTIONS)
    assert not marker.exists()


@pytest.mark.parametrize("isolation", [pytest.param("bubblewrap", marks=bwrap), "process"])
def test_installed_files_cannot_be_changed(tmp_path, isolation):
    import cnnstep.checker.judging.compare as compare

    if isolation == "process" and os.geteuid() == 0:
        from cnnstep.checker.sandbox.isolation import can_drop_to_nobody

        if not can_drop_to_nobody():
            pytest.skip("process isolation as root without uid 65534 cannot protect files")
    target = Path(compare.__file__)
    before = target.read_bytes()
    source = wrong_zero_pad(f"""
with open({str(target)!r}, 'a') as fh:
    fh.write('\\ncompare = lambda *a, **k: {{"ok": True}}\\n')
return X""")
    outcome = run(tmp_path, source, isolation)
    assert target.read_bytes() == before
    assert outcome.results["zero_pad"]["status"] == "error"


# --- isolation (bubblewrap) ------------------------------------------------------------------


@bwrap
def test_no_file_written_or_read_outside_and_no_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTEP_GRADER_SECRET", "s3cr3t-env")
    secret = tmp_path / "other_student.py"
    secret.write_text("SOLUTION = 'other-student-solution'\n")
    outside = tmp_path / "written_outside.txt"
    source = wrong_zero_pad(f"""
for p in ({str(outside)!r}, '/tmp/x', 'here.txt'):
    try:
        open(p, 'w').write('x')
    except OSError:
        pass
try:
    os.remove({str(secret)!r})
except OSError:
    pass
text = ''
try:
    text = open({str(secret)!r}).read()
except OSError as exc:
    text = str(exc)
raise RuntimeError(text + repr(dict(os.environ)) + repr(os.listdir('.')))""")
    outcome = run(tmp_path, source)
    out = report(outcome)
    assert not outside.exists() and secret.exists()
    assert "other-student-solution" not in out and "s3cr3t-env" not in out
    assert outcome.results["zero_pad"]["status"] == "error"


@bwrap
def test_no_network_not_even_localhost(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    source = wrong_zero_pad(f"""
import socket
s = socket.create_connection(('127.0.0.1', {port}), timeout=1)
s.sendall(b'leak')
return X""")
    try:
        outcome = run(tmp_path, source)
        with pytest.raises(OSError):
            server.accept()
    finally:
        server.close()
    assert outcome.results["zero_pad"]["status"] == "error"


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", BOTH)
def test_limits_cannot_be_raised(tmp_path, isolation):
    source = wrong_zero_pad("""
import resource
held = []
for which in ('RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE'):
    soft, hard = resource.getrlimit(getattr(resource, which))
    try:
        resource.setrlimit(getattr(resource, which), (resource.RLIM_INFINITY,) * 2)
    except (ValueError, OSError):
        held.append(which)
a = np.ones(6 * 1024**3 // 8)
return X""")
    result = run(tmp_path, source, isolation, memory_limit=2 * 1024**3).results["zero_pad"]
    assert result["status"] == "error"
    assert result["error"]["type"] == "MemoryError"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("isolation", BOTH)
def test_no_process_survives_a_double_fork(tmp_path, isolation):
    source = wrong_zero_pad("""
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode().ljust(16))
        import time
        time.sleep(60)
    os._exit(0)
pid = os.read(r, 16).decode().strip()
raise RuntimeError('pid=' + pid + '=' + open('/proc/%s/stat' % pid).read().split()[0])""")
    outcome = run(tmp_path, source, isolation)
    result = outcome.results["zero_pad"]
    assert result["status"] == "error"
    if isolation == "bubblewrap":
        assert "pid=" not in result["message"]  # no fork at all inside the sandbox
    else:
        pid = int(result["message"].split("pid=")[1].split("=")[0])
        time.sleep(0.2)
        assert not _alive(pid)


@pytest.mark.parametrize("isolation", BOTH)
def test_a_fork_bomb_is_bounded(tmp_path, isolation):
    source = wrong_zero_pad("""
n = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            import time
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError:
    pass
raise RuntimeError('forks=%d=' % n)""")
    if isolation == "process" and os.geteuid() == 0:
        from cnnstep.checker.sandbox.isolation import can_drop_to_nobody

        if not can_drop_to_nobody():
            pytest.skip("process isolation as root without uid 65534: no process limit applies")
    result = run(tmp_path, source, isolation).results["zero_pad"]
    forks = int(result["message"].split("forks=")[1].split("=")[0])
    assert forks <= (0 if isolation == "bubblewrap" else 64)


@pytest.mark.parametrize("isolation", BOTH)
def test_keep_alive_messages_do_not_extend_the_deadline(tmp_path, isolation):
    source = wrong_zero_pad("""
import signal, time
signal.setitimer(signal.ITIMER_PROF, 0)
signal.signal(signal.SIGPROF, signal.SIG_IGN)
main = sys.modules['__main__']
while True:
    main.send({"ev": "case", "i": 0})
    main.send({"ev": "exec", "index": 0})
    time.sleep(0.05)""")
    start = time.monotonic()
    outcome = run(tmp_path, source, isolation, timeout=1)
    # Without a limit it would run for 14 hours; the wall-clock backstop alone is 22 s, the
    # time it waited without computing (1.5 s) stops it first. A bound that load cannot break.
    assert time.monotonic() - start < 60
    assert outcome.results["zero_pad"]["status"] in ("timeout", "error")


@pytest.mark.parametrize("isolation", BOTH)
def test_keep_alive_messages_while_loading_do_not_extend_a_statements_limit(tmp_path, isolation):
    source = ("import sys, time, signal\n\ndef f(x=signal.setitimer(signal.ITIMER_PROF, 0), "
              "y=[(sys.modules['__main__'].send({'ev': 'warn', 'index': 1, 'kind': 'error', "
              "'text': 'alive'}), time.sleep(0.05)) for _ in range(10**6)]):\n"
              "    pass\n\n" + CORRECT)
    outcome = run(tmp_path, source, isolation, timeout=1)
    # The statement's own limit stopped it (not the whole file's deadline, which would leave
    # the eight functions unchecked).
    assert any("took longer than 1 s while the file was loaded" in w for w in outcome.warnings)
    assert passes(outcome) == set(FUNCTIONS)


@pytest.mark.parametrize("isolation", BOTH)
def test_no_terminal_escapes_reach_the_report(tmp_path, isolation):
    source = wrong_zero_pad("raise ValueError('\\x1b[2J\\x1b]0;pwned\\x07 \\u202e evil')")
    outcome = run(tmp_path, source, isolation)
    text = json.dumps(to_json(outcome), ensure_ascii=False)
    assert not {"\x1b", "\x07", "\u202e"} & set(text) and "evil" in text


@pytest.mark.parametrize("isolation", BOTH)
def test_slow_statements_meet_the_total_deadline(tmp_path, isolation):
    slow = "".join(f"def f{i}(x=__import__('time').sleep(0.4)):\n    pass\n" for i in range(100))
    start = time.monotonic()
    outcome = run(tmp_path, slow, isolation, timeout=0.5, total_timeout=3)
    # An explicit total is wall-clock seconds: 3 s, plus killing and reporting (generous for a
    # busy machine), far below the 40 s the statements would take.
    assert time.monotonic() - start < 3 + 15
    assert all(r["status"] in ("timeout", "missing") for r in outcome.results.values())


@pytest.mark.parametrize("isolation", BOTH)
def test_sigterm_to_the_parent_leaves_no_child(tmp_path, isolation):
    path = tmp_path / "sleepy.py"
    path.write_text("import time\ndef zero_pad(X, pad):\n    time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cli = subprocess.Popen([sys.executable, "-m", "cnnstep", "check", str(path), "--timeout",
                            "30", "--isolation", isolation], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    descendants: set[int] = set()
    for _ in range(100):
        time.sleep(0.1)
        descendants = _descendants(cli.pid)
        if len(descendants) >= 1 and any(_cmd(p).count("-I") for p in descendants):
            break
    time.sleep(1.0)
    descendants = _descendants(cli.pid)
    cli.send_signal(signal.SIGTERM)
    try:
        cli.wait(timeout=60)  # well under a second when the machine is not overloaded
    except subprocess.TimeoutExpired:
        states = {p: (_cmd(p)[:80], _state(p)) for p in {cli.pid} | _descendants(cli.pid)}
        cli.kill()
        raise AssertionError(f"still running 60 s after SIGTERM: {states}; stderr: "
                             f"{cli.communicate()[1][-2000:]!r}") from None
    cli.stderr.close()
    time.sleep(0.3)
    assert descendants and not [p for p in descendants if _alive(p)]


def _state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return "gone"
    return " ".join(line for line in status.splitlines() if line.startswith("State")) + \
        f" wchan={wchan}"


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


# --- a parent that cannot be crashed ---------------------------------------------------------


@pytest.mark.parametrize("isolation", BOTH)
def test_malformed_messages_are_errors_for_that_function_only(tmp_path, isolation):
    bad = ['[1,2]', '{"ev":"exec"}', '{"ev":"result","name":"zero_pad"}',
           '{"ev":"returned","i":0,"got":{"t":"nd","npy":"x"}}', '{"ev":{"a":1}}']
    body = f"main = sys.modules['__main__']\nimport struct\nfor m in {bad!r}:\n" \
           "    os.write(main._OUT, struct.pack('>I', len(m)) + m.encode())\n" \
           "os.write(main._OUT, struct.pack('>I', 2**31))\nreturn X"
    source = CORRECT.replace("def zero_pad(X, pad):\n", "def zero_pad(X, pad):\n    import sys, "
                             "os\n" + "".join("    " + ln + "\n" for ln in body.split("\n")))
    outcome = run(tmp_path, source, isolation, timeout=5)
    assert outcome.results["zero_pad"]["status"] == "error"
    assert passes(outcome) >= {"conv_single_step", "pool_forward", "distribute_value"}


@pytest.mark.parametrize("isolation", BOTH)
def test_huge_stderr_and_warnings_stay_bounded(tmp_path, isolation):
    source = ("import os, sys\nos.write(2, b'e' * 30_000_000)\n"
              "def zero_pad(X, pad, _=[sys.modules['__main__'].send({'ev': 'warn', 'index': 0,"
              " 'kind': 'error', 'text': 'w' * 4_000_000}) for _ in range(300)]):\n"
              "    raise ValueError('x' * 10_000_000)\n")
    outcome = run(tmp_path, source, isolation)
    assert len(outcome.warnings) <= 201
    assert all(len(w) < 1000 for w in outcome.warnings)
    assert len(report(outcome)) < 200_000


def test_a_broken_cell_then_many_blank_lines_is_read_in_linear_time(tmp_path):
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "def zero_pad(X, pad:\n" + "\n" * 80_000}]
    path = tmp_path / "big.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    start = time.monotonic()
    outcome = check_file(path, timeout=1, isolation="process")
    assert time.monotonic() - start < 30  # was 110 s (a quadratic search)
    assert outcome.results["zero_pad"]["status"] == "error"
    assert "cell 1, line 1" in outcome.results["zero_pad"]["message"]


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "cnnstep", "check", *args], env=env,
                          capture_output=True, text=True, timeout=60)


WEIRD = {
    "null_bytes.py": b"def zero_pad(X, pad):\n    return X\x00\n",
    "long_sum.py": ("x = " + "+".join(["1"] * 1500) + "\n").encode(),
    "nested.py": ("f = " + "lambda: " * 400 + "0\n").encode(),
    "parens.py": ("x = " + "(" * 300 + "1" + ")" * 300 + "\n").encode(),
    "cell_source.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": 42}],
                                     "nbformat": 4, "nbformat_minor": 5}).encode(),
    "not_a_list.ipynb": b'{"cells": {"a": 1}}',
    "deep.ipynb": b"[" * 100_000,
}


@pytest.mark.parametrize("name", sorted(WEIRD))
def test_unreadable_inputs_are_one_line_and_exit_2(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(WEIRD[name])
    done = _cli([str(path)])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("cnnstep: error:") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory", "dangling"])
def test_special_files_are_refused(tmp_path, kind):
    path = tmp_path / "learner.py"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "nowhere.py")
    done = _cli([str(path)])
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("value", ["1e7", "0", "-1", "nan", "inf", "601"])
def test_bad_timeouts_are_refused(tmp_path, value):
    path = tmp_path / "learner.py"
    path.write_text("x = 1\n")
    done = _cli([str(path), "--timeout", value])
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_a_latin1_file_with_a_coding_cookie_is_read_as_python_reads_it(tmp_path):
    path = tmp_path / "latin.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + CORRECT.encode())
    outcome = check_file(path, isolation="process")
    assert passes(outcome) == set(FUNCTIONS)


def test_a_syntax_error_is_reported_at_its_own_line_not_at_a_magic(tmp_path):
    path = tmp_path / "magic.py"
    path.write_text("%matplotlib inline\nimport numpy as np\n\ndef f(:\n    pass\n")
    done = _cli([str(path)])
    assert done.returncode == 2 and "line 4" in done.stderr, done.stderr


def test_bubblewrap_asked_for_and_missing_is_exit_2(tmp_path, monkeypatch):
    from cnnstep.checker.sandbox import isolation
    from cnnstep.errors import UserError

    monkeypatch.setattr(isolation, "bubblewrap_mode", lambda: None)
    path = tmp_path / "learner.py"
    path.write_text(CORRECT)
    with pytest.raises(UserError, match="bubblewrap"):
        check_file(path, isolation="bubblewrap")
    outcome = check_file(path, isolation="auto")
    assert outcome.isolation == "process" and "bubblewrap" in outcome.warnings[0]
    assert to_json(outcome)["isolation"] == "process"


def test_process_isolation_has_an_empty_environment_and_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSTEP_GRADER_SECRET", "s3cr3t-env")
    (tmp_path / "helper.py").write_text("SECRET = 'helper-module-ran'\n")
    source = "import helper\n" + wrong_zero_pad(
        "try:\n    h = helper.SECRET\nexcept NameError:\n    h = ''\n"
        "raise RuntimeError(h + repr(dict(os.environ)) + repr(os.listdir('.')) + repr(sys.path))")
    outcome = run(tmp_path, source, "process")
    out = report(outcome)
    assert "s3cr3t-env" not in out and "helper" not in outcome.results["zero_pad"]["message"]
    assert any("helper" in w for w in outcome.warnings)  # the local module is not importable
    assert outcome.results["zero_pad"]["status"] == "error"
