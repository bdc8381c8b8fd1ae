"""The child side of :mod:`cnnstep.train.processes`: a worker process that runs its part of each
batch on its own copy of the model.

Started by :class:`cnnstep.train.processes.Worker` (which runs :func:`main`), with a shared memory
mapping on an inherited file descriptor. It reads one setup frame (JSON: the model's config, the
mapping, the layout), then commands (:data:`HEADER`) on stdin, and answers each with :data:`REPLY`
on stdout; the arrays (parameters and state in, gradients, batch statistics, logits and sums out,
the batch part in) live in the mapping, laid out by :class:`Layout`. Ctrl-C is the main
process's to handle: the worker ignores SIGINT, and it exits when its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import select
import signal
import struct
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

#: main -> worker: command, rows of this part, rows of the whole batch
HEADER = struct.Struct("<Bqq")
#: worker -> main: status (:data:`OK` or :data:`FAILED`), bytes of the JSON that follows
REPLY = struct.Struct("<Bq")
#: (the setup's reply, "ready", carries the worker's settings as JSON: ``Worker.settings``)
#: frame length before the setup JSON
LENGTH = struct.Struct("<q")
STOP, STEP, EVALUATE = 0, 1, 2
OK, FAILED = 0, 1
_ALIGN = 64


@dataclass(frozen=True)
class Layout:
    """Where each array lives in a worker's shared mapping.

    Attributes
    ----------
    param_shapes : list of tuple
        The model's parameters, in :meth:`~cnnstep.nn.model.Sequential.parameters` order.
    input_shape : tuple
        One example's shape (n_H, n_W, n_C).
    n_out : int
        Logits per example.
    capacity : int
        Most rows of a part.
    dtype : str
        The model's float dtype.
    state_shapes : list of tuple
        The model's non-trainable state (running statistics), in
        :meth:`~cnnstep.nn.model.Sequential.state_arrays` order.
    stat_shapes : list of tuple
        The model's batch statistics (float64), in
        :meth:`~cnnstep.nn.model.Sequential.statistics` order.
    """

    param_shapes: tuple[tuple[int, ...], ...]
    input_shape: tuple[int, ...]
    n_out: int
    capacity: int
    dtype: str
    state_shapes: tuple[tuple[int, ...], ...] = ()
    stat_shapes: tuple[tuple[int, ...], ...] = ()

    def _sections(self) -> list[tuple[str, tuple[int, ...], np.dtype]]:
        f = np.dtype(self.dtype)
        n_params = sum(math.prod(s) for s in self.param_shapes)
        n_state = sum(math.prod(s) for s in self.state_shapes)
        n_stats = sum(math.prod(s) for s in self.stat_shapes)
        return [
            ("sums", (2,), np.dtype(np.float64)),  # loss (summed over rows), correct
            ("params", (n_params,), f),
            ("grads", (n_params,), f),
            ("state", (n_state,), f),
            ("stats", (n_stats,), np.dtype(np.float64)),
            ("x", (self.capacity, *self.input_shape), f),
            ("y", (self.capacity,), np.dtype(np.int64)),
            ("logits", (self.capacity, self.n_out), f),
        ]

    def _placed(self) -> list[tuple[str, tuple[int, ...], np.dtype, int]]:
        """Each section with its byte offset, every one starting on an aligned boundary."""
        placed, offset = [], 0
        for name, shape, dt in self._sections():
            placed.append((name, shape, dt, offset))
            offset += -(-math.prod(shape) * dt.itemsize // _ALIGN) * _ALIGN
        placed.append(("end", (), np.dtype(np.uint8), offset))
        return placed

    @property
    def nbytes(self) -> int:
        return max(self._placed()[-1][3], _ALIGN)

    def views(self, buf: Any) -> dict[str, np.ndarray]:
        """The arrays of this layout on the mapping ``buf``."""
        return {name: np.frombuffer(buf, dtype=dt, count=math.prod(shape),
                                    offset=offset).reshape(shape)
                for name, shape, dt, offset in self._placed()[:-1]}

    def split_params(self, flat: np.ndarray,
                     shapes: tuple[tuple[int, ...], ...] | None = None) -> list[np.ndarray]:
        """Views of the flat parameter (or gradient) section, one per parameter; with
        ``shapes``, of another section (state, statistics) of those shapes."""
        out, start = [], 0
        for shape in self.param_shapes if shapes is None else shapes:
            n = math.prod(shape)
            out.append(flat[start:start + n].reshape(shape))
            start += n
        return out

    def to_json(self) -> dict:
        return {"param_shapes": [list(s) for s in self.param_shapes],
                "input_shape": list(self.input_shape), "n_out": self.n_out,
                "capacity": self.capacity, "dtype": self.dtype,
                "state_shapes": [list(s) for s in self.state_shapes],
                "stat_shapes": [list(s) for s in self.stat_shapes]}

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        return cls(tuple(tuple(s) for s in data["param_shapes"]), tuple(data["input_shape"]),
                   int(data["n_out"]), int(data["capacity"]), str(data["dtype"]),
                   tuple(tuple(s) for s in data.get("state_shapes", ())),
                   tuple(tuple(s) for s in data.get("stat_shapes", ())))


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _reply(out: BinaryIO, error: BaseException | None = None, payload: bytes = b"") -> None:
    if error is None:
        out.write(REPLY.pack(OK, len(payload)) + payload)
    else:
        text = json.dumps({"type": type(error).__name__, "message": str(error)}).encode()
        out.write(REPLY.pack(FAILED, len(text)) + text)
    out.flush()


def _bind(model: Any, kind: str, views: list[np.ndarray]) -> None:
    """Make the mapping's ``views`` the model's ``params`` or ``state`` (``kind``): the main
    process sets them before each command."""
    for layer in model.layers:
        arrays = getattr(layer, kind)
        for name in list(arrays):
            view = views.pop(0)
            if view.shape != arrays[name].shape:
                raise ValueError(f"{kind} {name} of {layer.name}: shape {view.shape} in the "
                                 f"layout, {arrays[name].shape} in the model")
            arrays[name] = view


def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    from cnnstep.config import get_config, set_config
    from cnnstep.nn.model import Sequential
    from cnnstep.train.parallel import part_step

    setup = json.loads(_read_exact(inp, LENGTH.unpack(_read_exact(inp, LENGTH.size))[0]))
    layout = Layout.from_json(setup["layout"])
    set_config(**setup["settings"])  # processes.worker_settings(): every setting, as there
    buf = mmap.mmap(setup["fd"], layout.nbytes)  # lives until the process ends
    arrays = layout.views(buf)
    # a replica: its batch statistics go back to the main process, which updates the state
    model = Sequential.from_config(setup["config"]).replica()
    grads = layout.split_params(arrays["grads"])
    stats = layout.split_params(arrays["stats"], layout.stat_shapes)
    _bind(model, "params", layout.split_params(arrays["params"]))
    _bind(model, "state", layout.split_params(arrays["state"], layout.state_shapes))
    _reply(out, payload=json.dumps(get_config()).encode())  # ready, with the settings applied
    idle = float(setup.get("idle_timeout", 300.0))
    while True:
        # One command is in flight at a time, so nothing waits in the buffer here: select on
        # the pipe itself tells whether the next one comes before the idle timeout.
        if not select.select([inp], [], [], idle)[0]:
            return  # nobody needs this worker any more
        command, rows, total = HEADER.unpack(_read_exact(inp, HEADER.size))
        if command == STOP:
            return
        try:
            x, y = arrays["x"][:rows], arrays["y"][:rows]
            if command == STEP:
                loss, logits = part_step(model, x, y, total)
                arrays["logits"][:rows] = logits
                arrays["sums"][0] = loss
                for dst, s in zip(stats, model.statistics()):
                    np.copyto(dst, s)
                if math.isfinite(loss):
                    for dst, g in zip(grads, model.gradients()):
                        np.copyto(dst, g)
            else:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    result = model.evaluate(x, y, batch_size=max(rows, 1))
                arrays["sums"][0] = result["loss"] * rows
                arrays["sums"][1] = round(result["accuracy"] * rows)
        except Exception as exc:  # reported to the main process, which decides
            _reply(out, exc)
            continue
        _reply(out)


def main() -> None:
    """The worker's entry point: serve commands until stdin closes or a STOP comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to stderr, not into the replies
    try:
        _serve(sys.stdin.buffer, out)
    except EOFError:  # the main process has gone
        pass
    except BaseException as exc:  # setup failed: say why if the main process still listens
        with contextlib.suppress(OSError):
            _reply(out, exc)
        raise SystemExit(1) from None
