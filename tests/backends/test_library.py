"""What oneDNN's loader accepts: the versions tested, an OpenMP library whose own runtime takes
the thread count; anything else is refused once, said by ``status()`` and ``summary()``, and
the layers run on NumPy."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from onednn_helpers import last_pass, needs_onednn, onednn_on

from cnnstep import backends
from cnnstep.backends import conv2d_forward, onednn
from cnnstep.backends.onednn import api as dn
from cnnstep.backends.onednn import library

pytestmark = pytest.mark.usefixtures(onednn_on.__name__)


@pytest.fixture
def fresh_library():
    """The library found and checked again (a test swaps what is found); again after it."""
    library.forget()
    yield
    library.forget()


def _conv_once():
    A = np.ones((1, 6, 6, 2), np.float32)
    Z, _ = conv2d_forward(A, np.ones((3, 3, 2, 2), np.float32), np.zeros((1, 1, 1, 2), np.float32),
                          {"stride": 1, "pad": 1})
    assert Z.shape == (1, 6, 6, 2)
    return last_pass()


@pytest.mark.parametrize("version, ok", [
    ((3, 2, 0), True), ((3, 9, 1), True), ((3, 1, 5), False), ((2, 7, 3), False),
    ((4, 0, 0), False)])
def test_only_the_major_tested_from_the_least_minor_tested_is_taken(version, ok):
    why = library.check_version(version)
    assert (why is None) == ok
    if not ok:
        assert why.startswith(f"oneDNN {'.'.join(map(str, version))} is not supported")
        assert "3.2" in why


class _Fake:
    """A stand-in for a loaded library: every symbol a function, but for those left out."""

    def __init__(self, version, runtime, missing=()):
        self._version, self._runtime, self._missing = version, runtime, set(missing)

    def __getattr__(self, name):
        if name.startswith("_") or name in self._missing:
            raise AttributeError(name)
        if name == "dnnl_version":
            major, minor, patch = self._version
            return lambda: SimpleNamespace(contents=SimpleNamespace(
                major=major, minor=minor, patch=patch, cpu_runtime=self._runtime))
        fn = SimpleNamespace()
        setattr(self, name, fn)
        return fn


@pytest.mark.parametrize("fake, expect", [
    (_Fake((3, 2, 0), 2), None),
    (_Fake((3, 2, 0), 4), "is not threaded with OpenMP (runtime 4)"),  # TBB
    (_Fake((3, 2, 0), 2, missing={"omp_set_num_threads"}), "is not threaded with OpenMP"),
    (_Fake((2, 7, 0), 2), "oneDNN 2.7.0 is not supported"),
    (_Fake((3, 2, 0), 2, missing={"dnnl_pooling_forward_primitive_desc_create"}),
     "is not a usable oneDNN library"),
])
def test_a_library_is_checked_before_use(fake, expect):
    got = library.check_library(fake, Path("libdnnl.so.3"))
    if expect is None:
        assert isinstance(got, library.Loaded) and got.version == (3, 2, 0)
    else:
        assert isinstance(got, str) and expect in got


@needs_onednn
def test_the_thread_count_goes_to_the_openmp_runtime_the_library_uses():
    loaded = library.load()
    assert isinstance(loaded, library.Loaded)
    # looked up through the library's own handle: the runtime the dynamic linker gave it
    get_max = loaded.lib.omp_get_max_threads
    get_max.restype = ctypes.c_int
    assert library.defined_in(get_max) == loaded.omp_path != "?"
    api = library.engine()
    assert isinstance(api, dn.Api)
    for n in (3, 1):
        api.set_threads(n)
        assert get_max() == n
    assert onednn.describe() == loaded.describe()
    assert loaded.describe().startswith(f"oneDNN {loaded.version[0]}.{loaded.version[1]}")


@pytest.mark.parametrize("found", ["nothing", "a broken file", "not oneDNN"])
def test_a_library_that_cannot_serve_says_why_once_and_leaves_numpy(found, monkeypatch,
                                                                    tmp_path, fresh_library):
    broken = tmp_path / "libdnnl.so.3"
    broken.write_bytes(b"not a shared library")  # as when libgomp.so.1 is missing: OSError
    other = ctypes.util.find_library("m")
    paths = {"nothing": [], "a broken file": [broken], "not oneDNN": [Path(str(other))]}[found]
    if found == "not oneDNN" and other is None:
        pytest.skip("no libm to stand for a library that is not oneDNN")
    tries = []
    monkeypatch.setattr(library, "candidates", lambda: tries.append(1) or paths)
    for _ in range(3):
        assert _conv_once().startswith("numpy: oneDNN is unavailable: ")
    assert len(tries) == 1 and not onednn.available() and not onednn.enabled()
    why = {"nothing": "oneDNN is not installed (pip install",
           "a broken file": "libdnnl.so.3 could not be loaded: ",
           "not oneDNN": "is not a usable oneDNN library"}[found]
    assert why in backends.status()["onednn"]
    # a user who did not install the extra is not told about it on every command
    said = "" if found == "nothing" else f"NumPy kernels: {onednn.describe()}"
    assert backends.summary() == said


@needs_onednn
def test_an_engine_that_fails_is_tried_once_and_numpy_runs(monkeypatch, fresh_library):
    tries = []

    def failing(self, lib, set_threads):
        tries.append(1)
        raise dn.DnnlError("oneDNN: engine failed (runtime error)")

    monkeypatch.setattr(dn.Api, "__init__", failing)
    for _ in range(3):
        assert _conv_once().startswith("numpy: oneDNN is unavailable: ")
    assert len(tries) == 1
    assert "its CPU engine could not be made" in backends.status()["onednn"]
    assert backends.summary().startswith("NumPy kernels: oneDNN ")


@needs_onednn
def test_a_refused_version_is_said_on_the_first_line_of_cnnstep_train(monkeypatch, tmp_path,
                                                                     capsys, fresh_library):
    from cnnstep.cli.main import main

    monkeypatch.setattr(library, "MIN_MINOR", 99)
    assert main(["train", "--data", "digits", "--epochs", "1", "--no-plots", "--threads", "1",
                 "--out", str(tmp_path / "r")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("training default on digits")
    assert first.endswith("is not supported (cnnstep was tested with 3.99 and takes 3.x from "
                          "3.99 on: pip install \"cnnstep[onednn]\")")
    assert ", NumPy kernels: oneDNN 3." in first


def test_status_before_anything_asked_for_the_library(fresh_library):
    state = backends.status()
    assert state["onednn"] == "not loaded yet" and state["backend"] == "auto"
    assert set(state) == {"backend", "onednn", "notes", "refused", "passes"}


@needs_onednn
def test_threads_that_ask_first_all_get_the_one_engine(fresh_library):
    """A primitive runs only on the engine that made it: two engines made by a race would fail
    (``execute: invalid arguments``) in whichever thread got the other one."""
    import threading

    start = threading.Barrier(6)
    got = []

    def ask():
        start.wait()
        got.append(library.engine())

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(api) for api in got}) == 1 and isinstance(got[0], dn.Api)
