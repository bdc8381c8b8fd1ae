"""The child that runs a learner's code: a standalone script (stdlib and NumPy only).

The parent (:mod:`cnnstep.checker.sandbox.runner`) reads this file's text and starts it with
``python -I -c``, inside the sandbox; cnnstep is not importable there. Messages both ways are a
4-byte big-endian length and a JSON object. The parent sends the learner's statements (as AST
data, already chosen), then asks for calls of the learner's functions on inputs it sends; this
script answers with plain data only: numbers, short strings, arrays as ``.npy`` bytes. It never
sees an expected value: the parent compares and judges.
"""

import ast
import base64
import builtins
import io
import json
import os
import signal
import struct
import sys
import traceback
import types
from typing import Any

MAX_IN = 256 * 1024 * 1024
MAX_OUT = 8 * 1024 * 1024
ITEMS = 8
TEXT = 300

np: types.ModuleType = types.ModuleType("numpy")  # the real one once main() imports it
_IN = _OUT = -1


class CheckTimeout(BaseException):
    """SIGPROF in learner code (a BaseException, past `except Exception:`)."""


# The limits are CPU seconds (ITIMER_PROF counts this process's user and system time), so that a
# busy machine, which slows the learner's code down, does not change a verdict. Code that waits
# without computing is the parent's to stop: it measures how long this process did not run.
_TIMER = signal.ITIMER_PROF


def _arm(seconds):
    signal.setitimer(_TIMER, seconds)


def _on_alarm(signum, frame):
    raise CheckTimeout()


def send(obj):
    data = json.dumps(obj, allow_nan=True).encode()
    if len(data) > MAX_OUT:
        data = json.dumps({"ev": "toolarge"}).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(_OUT, data):]


def _read(n):
    chunks = []
    while n:
        chunk = os.read(_IN, min(n, 1 << 20))
        if not chunk:
            raise SystemExit(0)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive():
    (size,) = struct.unpack(">I", _read(4))
    if size > MAX_IN:
        raise SystemExit(3)
    return json.loads(_read(size))


# --- values --------------------------------------------------------------------------------


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def encode(value, depth=0):
    """Plain data describing ``value``; arbitrary learner objects become their type name and,
    when they convert to a float array, that array."""
    cls = type(value).__name__[:60]
    if value is None:
        return {"t": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value) if isinstance(value, (float, np.floating)) or abs(value) > 2**53 \
            else int(value)
        return {"t": "num", "cls": cls, "v": number}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"t": "nd", "npy": _npy(value)}
    if isinstance(value, (tuple, list)) and depth < 3:
        items = [encode(v, depth + 1) for v in list(value[:ITEMS])]
        return {"t": "seq", "cls": "tuple" if isinstance(value, tuple) else "list",
                "n": len(value), "items": items}
    if isinstance(value, dict) and depth < 3:
        items = [[k, encode(v, depth + 1)] for k, v in list(value.items())[:16]
                 if isinstance(k, str)]
        return {"t": "dict", "items": items}
    if isinstance(value, str):
        return {"t": "str", "v": value[:TEXT]}
    out = {"t": "obj", "cls": cls}
    try:
        array = np.asarray(value, dtype=float)
        out["npy"] = _npy(array)
    except Exception:  # noqa: BLE001 - any learner object
        pass
    return out


def decode(data):
    kind = data["t"]
    if kind == "nd":
        return np.load(io.BytesIO(base64.b64decode(data["npy"])), allow_pickle=False)
    if kind == "seq":
        items = [decode(v) for v in data["items"]]
        return tuple(items) if data["cls"] == "tuple" else items
    if kind == "dict":
        return {k: decode(v) for k, v in data["items"]}
    if kind in ("num", "bool", "str"):
        return data["v"]
    return None


def _text(exc):
    try:
        return str(exc).split("\n")[0][:TEXT]
    except BaseException:  # noqa: BLE001 - a learner's __str__
        return "?"


# --- the learner's namespace ---------------------------------------------------------------


def _node(data):
    if isinstance(data, list):
        return [_node(d) for d in data]
    if not isinstance(data, dict):
        return data
    if "$bytes" in data:
        return base64.b64decode(data["$bytes"])
    if "$complex" in data:
        return complex(*data["$complex"])
    if "$ellipsis" in data:
        return ...
    cls = getattr(ast, data["_"])
    node = cls()
    for key, value in data.items():
        if key != "_":
            setattr(node, key, _node(value))
    return node


class Learner:
    def __init__(self, job):
        self.units = {u["label"]: u["source"] for u in job["units"]}
        self.namespace = {"__name__": "__learner__", "__builtins__": builtins,
                          "__file__": job["filename"]}
        self.flags = job["flags"]
        self.timeout = job["timeout"]

    def load(self, statements, skip):
        for index, statement in enumerate(statements):
            if index in skip:
                continue
            send({"ev": "exec", "index": index})
            try:
                module = ast.Module(body=[_node(statement["node"])], type_ignores=[])
                code = compile(module, statement["label"], "exec", flags=self.flags,
                               dont_inherit=True)
                _arm(self.timeout)
                try:
                    exec(code, self.namespace)
                finally:
                    _arm(0)
            except CheckTimeout:
                send({"ev": "warn", "index": index, "kind": "timeout"})
            except BaseException as exc:  # noqa: BLE001 - anything learner code raises
                send({"ev": "warn", "index": index, "kind": "error",
                      "text": f"{type(exc).__name__[:60]}: {_text(exc)}".strip()})
        send({"ev": "loaded"})

    def describe(self, names):
        """For each name: what it is, whether the learner's file defined it, what it reads."""
        out = {}
        for name in names:
            if name not in self.namespace:
                continue
            value = self.namespace[name]
            info = {"callable": callable(value), "cls": type(value).__name__[:60]}
            code = getattr(value, "__code__", None)
            own = isinstance(value, types.FunctionType) and isinstance(code, types.CodeType) \
                and code.co_filename in self.units
            info["own"] = bool(own)
            if own and isinstance(code, types.CodeType):
                refs: set = set()
                stack = [code]
                while stack:
                    c = stack.pop()
                    refs.update(c.co_names)
                    stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
                info["refs"] = sorted(refs)[:500]
                info["data"] = sorted(
                    r for r in refs if not r.startswith("__") and r in self.namespace
                    and not callable(self.namespace[r])
                    and not isinstance(self.namespace[r], types.ModuleType))[:50]
            out[name] = info
        send({"ev": "described", "names": out})

    def error_info(self, exc):
        info = {"type": type(exc).__name__[:60], "message": _text(exc)}
        name = getattr(exc, "name", None)
        if isinstance(exc, NameError) and isinstance(name, str):
            info["name"] = name[:TEXT]
        if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
            info["key"] = exc.args[0][:TEXT]
        try:
            frames = list(traceback.extract_tb(exc.__traceback__))
        except BaseException:  # noqa: BLE001
            frames = []
        mine = [f for f in frames if f.filename in self.units]
        if mine:
            frame = mine[-1]
            info["label"] = frame.filename
            info["lineno"] = frame.lineno
            info["function"] = str(frame.name)[:TEXT]
        return info

    def run(self, request):
        fn: Any = self.namespace.get(request["name"])
        swapped = {}
        for helper in request.get("rpc", []):
            swapped[helper] = self.namespace.get(helper)
            self.namespace[helper] = _remote(helper)
        try:
            _arm(self.timeout)
            for number, args in enumerate(request["cases"]):
                send({"ev": "case", "i": number})
                try:
                    _seed()
                    got = fn(*decode(args))
                except CheckTimeout:
                    raise
                except BaseException as exc:  # noqa: BLE001 - SystemExit is an error too
                    send({"ev": "raised", "i": number, "error": self.error_info(exc)})
                    continue
                send({"ev": "returned", "i": number, "got": encode(got)})
            _arm(0)
            send({"ev": "ran"})
        except CheckTimeout:
            send({"ev": "timeout"})
        finally:
            _arm(0)
            for helper, value in swapped.items():
                self.namespace[helper] = value


SEED = 20240607  # every call of a learner's function starts from the same random state
_DEFAULT_RNG: list = []  # NumPy's own default_rng, once imported


def _seed():
    """Python's ``random``, NumPy's legacy generator and unseeded ``default_rng()`` calls start
    from the same state on every call, so that a learner's random numbers (gradients started
    from ``np.random.randn``) come out the same in every run of the checker."""
    import random

    random.seed(SEED)
    np.random.seed(SEED % 2**32)
    calls = [0]
    original = _DEFAULT_RNG[0]

    def default_rng(seed=None):
        if seed is None:
            calls[0] += 1
            seed = np.random.SeedSequence(SEED, spawn_key=(calls[0],))
        return original(seed)

    np.random.default_rng = default_rng


def _remote(name):
    """A stand-in for one of cnnstep's functions: the parent computes it (diagnosis only, after
    every verdict is final)."""

    def call(*args):
        # The learner's time stops while the parent computes the answer (and while the
        # arguments and the answer are encoded): only the learner's own code is timed.
        left = signal.setitimer(_TIMER, 0)[0]
        try:
            send({"ev": "call", "name": name, "args": encode(list(args))})
            reply = receive()
            value = None if "error" in reply else decode(reply["value"])
        finally:
            if left > 0:
                _arm(left)
        if "error" in reply:
            raise ValueError(reply["error"])
        return value

    call.__name__ = name
    return call


class _Refuse:
    """Refuses to import cnnstep (it is not even visible under bubblewrap; under process
    isolation this only stops the casual attempt, see the README)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] == "cnnstep":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


def main():
    global np, _IN, _OUT
    _IN, _OUT = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the learner's prints go nowhere
    import warnings

    warnings.simplefilter("ignore")
    job = receive()
    # Started with -S: no site-packages, no .pth files (an editable cnnstep), only NumPy's folder.
    sys.path.extend(p for p in job.get("path", []) if isinstance(p, str))
    sys.meta_path.insert(0, _Refuse)
    import numpy

    np = numpy
    _DEFAULT_RNG.append(numpy.random.default_rng)
    signal.signal(signal.SIGPROF, _on_alarm)
    learner = Learner(job)
    send({"ev": "ready"})
    while True:
        request = receive()
        op = request["op"]
        if op == "load":
            learner.load(request["statements"], set(request["skip"]))
        elif op == "describe":
            learner.describe(request["names"])
        elif op == "run":
            learner.run(request)
        else:
            return


if __name__ == "__main__":
    main()
