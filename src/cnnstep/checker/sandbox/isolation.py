"""Start the child that runs a learner's code: under bubblewrap, or with process limits only.

``bubblewrap`` (``bwrap``): a fresh mount namespace holding only the read-only system and Python
directories (``/usr``, the interpreter's prefix, the folder NumPy is installed in, with cnnstep's
own package hidden by an empty tmpfs), a private empty ``/tmp`` as the working directory, its own
network, PID, IPC, UTS, cgroup and user namespaces (uid/gid 65534 inside), an empty environment,
``--die-with-parent``, and a seccomp filter that refuses every new process or thread (``fork``,
``vfork``, ``clone``, ``clone3``). When the grader runs as root, bwrap itself is started as uid
65534 where that can still see the interpreter (otherwise it stays root outside and maps the
sandbox to 65534 inside a user namespace).

``process``: the same child with the same hard limits, its own session, an empty environment
and a fresh empty working directory, and (as root) uid 65534; it can read any file that user can
read. The README says what each level protects.

Both: hard rlimits (soft = hard, so the child cannot raise them) on address space, CPU seconds,
file size, open files, processes and core size, set between ``fork`` and ``exec``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from cnnstep.checker.i18n import N_
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.sandbox.seccomp import seccomp_program
from cnnstep.errors import UserError

ISOLATIONS = ("auto", "bubblewrap", "process")
NOBODY = 65534
_TMP_SIZE = 64 * 1024**2
_FILE_SIZE = 16 * 1024**2
_OPEN_FILES = 64
_PROCESSES = 64


FALLBACK_WARNING = N_("bubblewrap (bwrap) is not available here: only process limits apply, "
                      "learner code can read files and use the network (see the README)")


def fallback_warnings(requested: str, used: str) -> list[str]:
    """The warning to give when ``"auto"`` isolation fell back to process limits."""
    return [_(FALLBACK_WARNING)] if requested == "auto" and used != "bubblewrap" else []


class SandboxUnavailableError(UserError):
    """``isolation="bubblewrap"`` was asked for and bwrap does not work here."""


def _python_dirs() -> list[str]:
    """Directories the interpreter and NumPy need, read-only inside the sandbox."""
    import numpy

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix,
            str(Path(sys.executable).parent), str(Path(os.path.realpath(sys.executable)).parent),
            str(Path(numpy.__file__).resolve().parent.parent)}
    dirs = {os.path.realpath(d) for d in dirs} | dirs
    return sorted(d for d in dirs if os.path.isdir(d) and not d.startswith("/usr"))


def numpy_path() -> list[str]:
    """What the child (started with -S) puts on sys.path: the folder NumPy is installed in."""
    import numpy

    return [str(Path(numpy.__file__).resolve().parent.parent)]


def _cnnstep_dir() -> str:
    return str(Path(__file__).resolve().parents[2])  # the cnnstep package


def _set_limits(memory: int | None, cpu: int, processes: int) -> None:
    pairs = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, cpu),
             (resource.RLIMIT_FSIZE, _FILE_SIZE), (resource.RLIMIT_NOFILE, _OPEN_FILES),
             (resource.RLIMIT_NPROC, processes)]
    if memory:
        pairs.append((resource.RLIMIT_AS, memory))
    for which, value in pairs:
        resource.setrlimit(which, (value, value))


def _count_tasks(uid: int) -> int:
    """Tasks (processes and threads) the user already runs: RLIMIT_NPROC counts them all."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    total += len(os.listdir(f"/proc/{entry}/task"))
    return total


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _bwrap_args(python_dirs: list[str], sized: bool = True) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for link in ("lib", "lib64", "bin", "lib32"):
        target = f"/{link}"
        if os.path.islink(target):
            args += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            args += ["--ro-bind", target, target]
    # /tmp first: Python or NumPy may live below it (a virtual environment in /tmp), and a
    # later mount goes on top of an earlier one.
    if sized:  # bwrap >= 0.7: a size cap on /tmp (the file-size limit applies either way)
        args += ["--size", str(_TMP_SIZE)]
    args += ["--tmpfs", "/tmp"]
    for d in python_dirs:
        args += ["--ro-bind", d, d]
    package = _cnnstep_dir()
    if any(package.startswith(d.rstrip("/") + "/") for d in python_dirs + ["/usr"]):
        args += ["--tmpfs", package]  # cnnstep itself stays out of reach
    # The environment is empty: bwrap itself starts with none.
    args += ["--proc", "/proc", "--dev", "/dev",
             "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
             "--die-with-parent", "--new-session", "--chdir", "/tmp",
             "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "OPENBLAS_NUM_THREADS", "1",
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return args


def bubblewrap_mode() -> str | None:
    """How bwrap works here: ``"nobody"`` (started as uid 65534), ``"mapped"`` (started as root,
    uid 65534 inside its user namespace), ``"user"`` (not root), or None when it does not."""
    found = _bubblewrap_probe()
    return found[0] if found else None


@functools.lru_cache(maxsize=1)
def _bubblewrap_probe() -> tuple[str, bool] | None:
    """(mode, whether --size works), tried once per process."""
    bwrap = shutil.which("bwrap")
    if bwrap is None or not sys.platform.startswith("linux"):
        return None
    candidates = ["nobody", "mapped"] if os.geteuid() == 0 else ["user"]
    for sized in (True, False):
        probe = [bwrap] + _bwrap_args(_python_dirs(), sized) + [sys.executable, "-I", "-S",
                                                                 "-c", "pass"]
        for mode in candidates:
            pre = _drop_to_nobody if mode == "nobody" else None
            try:
                done = subprocess.run(probe, preexec_fn=pre, stdin=subprocess.DEVNULL, env={},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      timeout=30, check=False)
            except (OSError, subprocess.SubprocessError):
                continue
            if done.returncode == 0:
                return mode, sized
    return None


@functools.lru_cache(maxsize=1)
def can_drop_to_nobody() -> bool:
    """Whether, as root, the interpreter still runs as uid 65534 (it may live under /root)."""
    if os.geteuid() != 0:
        return False
    try:
        done = subprocess.run([sys.executable, "-I", "-c", "import numpy"],
                              preexec_fn=_drop_to_nobody, cwd="/", stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def resolve_isolation(isolation: str) -> str:
    """``"bubblewrap"`` or ``"process"`` for ``auto|bubblewrap|process``."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation: expected one of {ISOLATIONS}, got {isolation!r}")
    if isolation == "process":
        return "process"
    if bubblewrap_mode() is not None:
        return "bubblewrap"
    if isolation == "bubblewrap":
        raise SandboxUnavailableError("isolation 'bubblewrap': bwrap is not installed or does not "
                                 "work here (install the package 'bubblewrap')")
    return "process"


class Sandboxed:
    """One child process: ``python -I -c CHILD`` under bubblewrap or process limits.

    ``stdin``/``stdout`` are pipes for the protocol; stderr goes to a file whose last bytes only
    are read. ``kill()`` ends the child and everything it started.
    """

    def __init__(self, code: str, isolation: str, memory: int | None, cpu_seconds: int):
        self.isolation = isolation
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in kill()
        self.workdir: str | None = None
        self.tail: str | None = None
        root = os.geteuid() == 0
        command = [sys.executable, "-I", "-S", "-c", code]
        seccomp_r: int | None = None
        pass_fds: tuple[int, ...] = ()
        drop = False
        processes = _PROCESSES
        if isolation == "bubblewrap":
            mode, sized = _bubblewrap_probe() or ("mapped", False)
            args = ["bwrap"] + _bwrap_args(_python_dirs(), sized)
            program = seccomp_program()
            if program is not None:
                seccomp_r, seccomp_w = os.pipe()
                os.write(seccomp_w, program)  # a few dozen bytes: fits the pipe buffer
                os.close(seccomp_w)
                args += ["--seccomp", str(seccomp_r)]
                pass_fds = (seccomp_r,)
            command = args + command
            drop = mode == "nobody"
            cwd = "/"
            env: dict[str, str] = {}
        else:
            self.workdir = tempfile.mkdtemp(prefix="cnnstep-check-")
            drop = root and can_drop_to_nobody()
            if drop:
                os.chown(self.workdir, NOBODY, NOBODY)
            cwd = self.workdir
            _become_subreaper()
            env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "PYTHONDONTWRITEBYTECODE": "1"}
        uid = NOBODY if drop else os.getuid()
        if not (root and not drop):  # root itself is exempt from RLIMIT_NPROC
            processes += _count_tasks(uid)

        libc = _libc()

        def prepare() -> None:  # between fork and exec, in the child
            if drop:
                _drop_to_nobody()
            if libc is not None:  # after the uid change, which would clear it
                libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the parent
            _set_limits(memory, cpu_seconds, processes)

        try:
            with _LIVE_LOCK:  # registered before another check's clean-up can see it
                self.proc = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                    cwd=cwd, env=env, start_new_session=True, preexec_fn=prepare,
                    pass_fds=pass_fds, close_fds=True)
                _LIVE.add(self.proc.pid)
        finally:
            if seccomp_r is not None:
                os.close(seccomp_r)
        self.uid = uid
        self.started = _start_time(self.proc.pid)

    def kill(self) -> str:
        """Kill the child's whole tree; return the last 2,000 bytes of its stderr."""
        if self.tail is not None:
            return self.tail
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.proc.kill()
        self.proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(self.proc.pid)
        if self.isolation == "process":
            _kill_orphans(self.uid, self.started)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        tail = b""
        with contextlib.suppress(OSError):
            size = self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, size - 2000))
            tail = self.stderr.read(2000)
            self.stderr.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.tail = tail.decode("utf-8", "replace").strip()
        return self.tail


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except (OSError, ImportError):
        return None


def _become_subreaper() -> None:
    """Orphans of the child's tree (a double fork) are re-parented to this process, not to
    init, so that they can be found and killed (process isolation: no PID namespace)."""
    libc = _libc()
    if libc is not None:
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _stat(pid: int | str) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read(4096).rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else 0


# The children of this process that are checking right now (a class graded with several jobs):
# never mistaken for what another child left behind.
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


def _kill_orphans(uid: int, started: int) -> None:
    """Kill what the child left behind: this process's children (re-parented orphans) of the
    child's uid started after it, until none is left (other checks' children excepted)."""
    me = os.getpid()
    for _attempt in range(50):
        with _LIVE_LOCK:
            found = _orphans(me, uid, started)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _orphans(me: int, uid: int, started: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(entry)
        if not fields or len(fields) < 20 or int(fields[1]) != me or int(entry) in _LIVE:
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}").st_uid == uid and int(fields[19]) >= started:
                found.append(int(entry))
    return found
