"""Finding, loading and checking oneDNN's shared library, once per process.

The ``onednn`` extra installs Intel's wheel ``onednn-cpu-gomp``: ``libdnnl.so.3`` alone, no
Python binding. What loads is checked before anything runs on it:

* its version (``dnnl_version()``): the major version cnnstep's declarations were written for
  (:data:`MAJOR`, the C API v3) and at least the minor version it was tested with
  (:data:`MIN_MINOR`); older or newer majors are refused, as their enums may differ;
* its threading: OpenMP (``cpu_runtime``), and the OpenMP runtime the library itself calls.
  ``omp_set_num_threads`` is looked up through the library's own handle, so it is the function
  of whichever runtime the dynamic linker gave it (GNU's ``libgomp`` for the ``-gomp`` wheel,
  Intel's ``libiomp5`` for the ``-iomp`` one, or a copy another package loaded first under the
  same name): the thread count cnnstep sets is the one oneDNN reads. A library threaded another
  way (TBB, sequential) cannot be told a thread count per call, and is refused.

Whatever goes wrong (not installed, does not load, a missing symbol, a refused version or
runtime, an engine that cannot be made) is found once: :func:`engine` returns the reason as a
line instead of raising, the layers run NumPy's kernels, and :func:`cnnstep.backends.status`
says why.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from cnnstep.backends.onednn import api as dn

#: The distributions that may install ``libdnnl.so.3`` (into the environment's ``lib`` folder):
#: the one the ``onednn`` extra pins first; the others are accepted when they pass the checks.
DISTRIBUTIONS = ("onednn-cpu-gomp", "onednn-cpu-iomp", "onednn")
LIBRARY = "libdnnl.so.3"
#: The major version of oneDNN whose C API the declarations follow, and the least minor one
#: tested (onednn-cpu-gomp 2023.2.0 is oneDNN 3.2).
MAJOR, MIN_MINOR = 3, 2

T = TypeVar("T")


@dataclass(frozen=True)
class Loaded:
    """A library that passed the checks."""

    lib: Any
    set_omp_threads: Any
    version: tuple[int, int, int]
    path: str
    omp_path: str

    def describe(self) -> str:
        """``"oneDNN 3.2.0 (libgomp.so.1)"``."""
        return f"oneDNN {'.'.join(map(str, self.version))} ({Path(self.omp_path).name})"


def candidates() -> list[Path]:
    """``libdnnl.so.3`` of each installed distribution of :data:`DISTRIBUTIONS`, in order."""
    found = []
    for name in DISTRIBUTIONS:
        try:
            files = metadata.files(name) or []
        except metadata.PackageNotFoundError:
            continue
        found += [Path(str(f.locate())) for f in files if f.name == LIBRARY]
    return found


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def defined_in(function: Any) -> str:
    """The file of the shared library that defines a ctypes ``function`` (``dladdr``), or
    ``"?"`` where that cannot be told."""
    info = _DlInfo()
    try:
        libc = ctypes.CDLL(None)
        found = libc.dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(info))
    except (OSError, AttributeError, TypeError, ctypes.ArgumentError):  # not glibc, not ctypes
        return "?"
    return os.fsdecode(info.dli_fname) if found and info.dli_fname else "?"


def check_version(version: tuple[int, int, int]) -> str | None:
    """Why a library of ``version`` is refused, or ``None`` when it is accepted."""
    major, minor, _ = version
    if major != MAJOR or minor < MIN_MINOR:
        shown = ".".join(map(str, version))
        return (f"oneDNN {shown} is not supported (cnnstep was tested with {MAJOR}.{MIN_MINOR} "
                f"and takes {MAJOR}.x from {MAJOR}.{MIN_MINOR} on: "
                f"pip install \"cnnstep[onednn]\")")
    return None


def inspect(path: Path) -> Loaded | str:
    """Load the library at ``path`` and check it (see the module's docstring)."""
    try:
        lib = ctypes.CDLL(os.fspath(path))
    except OSError as exc:
        return f"{path.name} could not be loaded: {exc}"
    return check_library(lib, path)


def check_library(lib: Any, path: Path) -> Loaded | str:
    """``lib`` (loaded from ``path``) as :class:`Loaded` if it passes the checks, else why not."""
    try:
        dn.declare(lib)
        v = lib.dnnl_version().contents
        version, runtime = (int(v.major), int(v.minor), int(v.patch)), int(v.cpu_runtime)
    except (AttributeError, ValueError) as exc:  # a missing symbol, a NULL version
        return f"{path.name} is not a usable oneDNN library: {exc}"
    why = check_version(version)
    if why is not None:
        return why
    try:  # through the library's own handle: the runtime it was linked against
        set_omp = lib.omp_set_num_threads
    except AttributeError:
        set_omp = None
    if runtime != dn.RUNTIME_OMP or set_omp is None:
        return (f"oneDNN {'.'.join(map(str, version))} is not threaded with OpenMP (runtime "
                f"{runtime}): cnnstep cannot set its thread count")
    set_omp.argtypes, set_omp.restype = [ctypes.c_int], None
    return Loaded(lib, set_omp, version, os.fspath(path), defined_in(set_omp))


_lock = threading.RLock()


def _once(find: Callable[[], T]) -> Callable[[], T]:
    """``find`` cached, computed by one thread only (two threads that ask first must not get
    two engines: a primitive runs only on the engine that made it). Once found, no lock."""
    cached = functools.cache(find)
    found: list[T] = []

    @functools.wraps(find)
    def once() -> T:
        if found:
            return found[0]
        with _lock:
            value = cached()
            found[:] = [value]
            return value

    def clear() -> None:
        found.clear()
        cached.cache_clear()

    once.cache_clear = clear  # type: ignore[attr-defined]
    once.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return once


@_once
def load() -> Loaded | str:
    """The library that passed the checks, or a line saying why there is none (the first
    candidate's reason, the others' after it). Cached: found once per process."""
    paths = candidates()
    if not paths:
        return "oneDNN is not installed (pip install \"cnnstep[onednn]\")"
    reasons = []
    for path in paths:
        got = inspect(path)
        if isinstance(got, Loaded):
            return got
        reasons.append(got)
    return "; ".join(reasons)


@_once
def engine() -> dn.Api | str:
    """The :class:`~cnnstep.backends.onednn.api.Api` (library, CPU engine, streams), or a line
    saying why not. A failure is found once and kept: it is never raised again."""
    loaded = load()
    if isinstance(loaded, str):
        return loaded
    try:
        return dn.Api(loaded.lib, loaded.set_omp_threads)
    except (dn.DnnlError, OSError) as exc:
        return f"{loaded.describe()}: its CPU engine could not be made ({exc})"


def forget() -> None:
    """Find and check the library again on next use (tests that swap what is installed)."""
    with _lock:
        load.cache_clear()  # type: ignore[attr-defined]
        engine.cache_clear()  # type: ignore[attr-defined]


def was_asked() -> bool:
    """Whether a pass has asked for the library yet (it is loaded on first use only)."""
    return bool(load.cache_info().currsize or engine.cache_info().currsize)  # type: ignore
