"""The parent's side of the messages to and from the child
(see :mod:`cnnstep.checker.sandbox.child`).

A message is a 4-byte big-endian length and a JSON object. Everything the child sends is
untrusted: reads are bounded in size, count and time, and values are rebuilt from plain data
only (``.npy`` bytes read with ``allow_pickle=False``, numeric dtypes only). Anything malformed
raises :class:`MalformedError`, which the runner turns into ``error`` for the function concerned.
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import json
import os
import re
import selectors
import struct
import time
from typing import Any

import numpy as np

MAX_MESSAGE = 8 * 1024 * 1024
MAX_VALUES = 4 * 1024 * 1024  # array elements in one value
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


class MalformedError(ValueError):
    """The child sent something that is not a valid message."""


class LearnerObject:
    """Stands for an object of the learner's own type (the name is the learner's class name);
    holds the float array it converted to, when it did."""

    _array: np.ndarray | None = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self._array is None:
            raise TypeError(f"a {type(self).__name__} is not an array")
        return self._array if dtype is None else self._array.astype(dtype)


def encode_message(obj: dict) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def npy_text(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def encode_value(value: Any) -> dict:
    """Inputs for the child (parent data: arrays, numbers, strings, tuples, dicts)."""
    if isinstance(value, np.ndarray):
        return {"t": "nd", "npy": npy_text(value)}
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, int | float | np.integer | np.floating):
        return {"t": "num", "v": value.item() if isinstance(value, np.generic) else value}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if isinstance(value, tuple | list):
        return {"t": "seq", "cls": "tuple" if isinstance(value, tuple) else "list",
                "n": len(value), "items": [encode_value(v) for v in value]}
    if isinstance(value, dict):
        return {"t": "dict", "items": [[k, encode_value(v)] for k, v in value.items()]}
    return {"t": "none"}


def _array(text: Any) -> np.ndarray:
    if not isinstance(text, str) or len(text) > MAX_MESSAGE:
        raise MalformedError("array: not a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedError("array: bad base64") from None
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise MalformedError("array: unknown .npy version")
    except (ValueError, OSError, SyntaxError) as exc:
        raise MalformedError(f"array: {exc}") from None
    if dtype.kind not in "biuf" or dtype.hasobject or len(shape) > 8:
        raise MalformedError("array: not a numeric array")
    count = 1
    for d in shape:
        count *= int(d)
    if count > MAX_VALUES or count * dtype.itemsize != len(raw) - stream.tell():
        raise MalformedError("array: size does not match its header")
    array = np.frombuffer(raw, dtype=dtype, offset=stream.tell(), count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _class(name: Any) -> type:
    name = name if isinstance(name, str) and _IDENT.match(name) else "object"
    return type(name, (LearnerObject,), {})


def decode_value(data: Any, depth: int = 0) -> Any:
    """Rebuild a returned value from the child's plain data; raise MalformedError otherwise."""
    if not isinstance(data, dict) or depth > 4:
        raise MalformedError("value: not an object")
    kind = data.get("t")
    if kind == "none":
        return None
    if kind == "bool" and isinstance(data.get("v"), bool):
        return data["v"]
    if kind == "num":
        v, cls = data.get("v"), data.get("cls")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise MalformedError("number: not a number")
        if isinstance(v, int) and abs(v) > 2**63:
            v = float(v)
        if isinstance(cls, str) and cls in ("float64", "float32", "float16", "int64", "int32",
                                             "int16", "int8", "uint8", "longdouble"):
            with np.errstate(all="ignore"):
                return getattr(np, cls)(v)
        return v
    if kind == "nd":
        return _array(data.get("npy"))
    if kind == "str":
        v = data.get("v")
        if not isinstance(v, str):
            raise MalformedError("string: not a string")
        return _CONTROL.sub("?", v[:300])
    if kind == "seq":
        items, n = data.get("items"), data.get("n")
        if not isinstance(items, list) or len(items) > 8 or not isinstance(n, int) or n < 0:
            raise MalformedError("sequence: bad items")
        values = [decode_value(v, depth + 1) for v in items]
        values += [None] * (min(n, 64) - len(values))
        return tuple(values) if data.get("cls") == "tuple" else values
    if kind == "dict":
        items = data.get("items")
        if not isinstance(items, list) or len(items) > 16:
            raise MalformedError("dict: bad items")
        out = {}
        for pair in items:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise MalformedError("dict: bad item")
            out[pair[0][:100]] = decode_value(pair[1], depth + 1)
        return out
    if kind == "obj":
        obj = _class(data.get("cls"))()
        if "npy" in data:
            obj._array = _array(data["npy"]).astype(float)
        return obj
    raise MalformedError("value: unknown kind")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def text(data: dict, key: str, limit: int = 300) -> str:
    """A short string from the child, without control characters (no terminal escapes)."""
    value = data.get(key, "")
    return _CONTROL.sub("?", value[:limit]) if isinstance(value, str) else ""


def ast_data(node: Any) -> Any:
    """An AST as plain data (node type names and fields) for the child to rebuild and compile,
    line numbers included."""
    if isinstance(node, list):
        return [ast_data(n) for n in node]
    if isinstance(node, ast.AST):
        out: dict[str, Any] = {"_": type(node).__name__}
        for name in node._fields + node._attributes:
            if hasattr(node, name):
                out[name] = ast_data(getattr(node, name))
        return out
    if isinstance(node, bytes):
        return {"$bytes": base64.b64encode(node).decode()}
    if isinstance(node, complex):
        return {"$complex": [node.real, node.imag]}
    if node is Ellipsis:
        return {"$ellipsis": True}
    return node


class Channel:
    """Bounded, deadline-aware message reading from the child's stdout."""

    def __init__(self, read_fd: int, write_fd: int):
        self.fd = read_fd
        self.write_fd = write_fd
        self.buffer = bytearray()
        self.selector = selectors.DefaultSelector()
        self.selector.register(read_fd, selectors.EVENT_READ)
        self.eof = False

    def send(self, obj: dict, deadline: float) -> None:
        data = encode_message(obj)
        os.set_blocking(self.write_fd, False)
        view = memoryview(data)
        while view:
            if time.monotonic() > deadline:
                raise TimeoutError
            try:
                written = os.write(self.write_fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[written:]

    def _fill(self, need: int, deadline: float) -> bool:
        while len(self.buffer) < need:
            if self.eof:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not self.selector.select(timeout=left):
                continue
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.eof = True
                return False
            self.buffer += chunk
        return True

    def receive(self, deadline: float) -> dict | None:
        """The next message; None at end of stream. Raises TimeoutError or MalformedError."""
        if not self._fill(4, deadline):
            return None
        (size,) = struct.unpack(">I", bytes(self.buffer[:4]))
        if size > MAX_MESSAGE:
            raise MalformedError(f"message of {size} bytes")
        if not self._fill(4 + size, deadline):
            return None
        body = bytes(self.buffer[4:4 + size])
        del self.buffer[:4 + size]
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedError("not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("ev"), str):
            raise MalformedError("not an event")
        return message

    def close(self) -> None:
        self.selector.close()
