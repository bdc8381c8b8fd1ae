"""A model's forward pass for inference over many inputs: what ``Sequential.predict_proba``,
``predict`` and ``evaluate`` run.

The layers are read as runs the backends can take at once (:mod:`cnnstep.backends.inference`):
a ``Conv2D`` (with the ``ReLU`` after it, fused), ``MaxPool2D`` and ``AvgPool2D``, and a
``Flatten`` + ``Dense`` that ends the run; ``Dropout`` passes inputs through. Every other layer
runs its own ``forward``. The inputs go through in chunks of :data:`CHUNK` (fewer when the
caller's ``batch_size`` is smaller): small enough that a chunk's activations stay in the CPU's
caches from one step to the next, large enough that a call costs little beside its work. With
the ``threads`` setting (:mod:`cnnstep.config`) above 1, the chunks are shared out between that
many threads, each running its own; NumPy's BLAS runs on one thread meanwhile, whatever the
setting. A chunk is computed alike whichever thread runs it and however many there are, so the
results do not depend on the ``threads`` setting, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.backends.inference import Chain, Conv, Dense, Pool, Step
from cnnstep.nn.layers import (
    AvgPool2D,
    Conv2D,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    Pool2D,
    ReLU,
)
from cnnstep.nn.layers import Dense as DenseLayer
from cnnstep.nn.losses import classification_loss, predicted_classes
from cnnstep.ops.kernels.threads import blas_one_thread, op_threads, run_parts, serial

#: Inputs per chunk (at most; ``batch_size`` if smaller). Measured on the default and SIGNS
#: models at one thread, chunk sizes alternated (2-core AMD EPYC, AVX2): 24 and 32 take about
#: 10 % less time than 64 on both, 48 5 %, 16 is no better than 32, and 128 and more are
#: slower (a chunk's activations no longer stay in cache between steps).
CHUNK = 32

Segment = Chain | Layer


def _step(layers: list[Layer], i: int) -> tuple[Step | None, int]:
    """The chain step that ``layers[i]`` starts and how many layers it takes, or ``(None, 1)``
    for a layer that runs alone."""
    layer = layers[i]
    after = layers[i + 1] if i + 1 < len(layers) else None
    kind = type(layer)  # exactly these classes: a subclass may compute something else
    if kind is Conv2D and isinstance(layer, Conv2D):
        relu = type(after) is ReLU
        return Conv(layer.params["W"], layer.params["b"], layer.hparameters, relu), 1 + relu
    if (kind is MaxPool2D or kind is AvgPool2D) and isinstance(layer, Pool2D):
        return Pool(layer.hparameters, layer.mode), 1
    if kind is Flatten and type(after) is DenseLayer:
        assert after is not None
        return Dense(after.params["W"], after.params["b"]), 2
    return None, 1


def segments(layers: list[Layer], shape: tuple[int, ...], dtype: Any) -> list[Segment]:
    """The layers (built, for inputs of ``shape``) as chains and single layers, in order."""
    out: list[Segment] = []
    run: list[Step] = []
    start = shape

    def close() -> None:
        if run:
            out.append(Chain(run, start, dtype))
            run.clear()

    i = 0
    while i < len(layers):
        step, used = _step(layers, i)
        if type(layers[i]) is Dropout:  # nothing to do at inference
            pass
        elif step is None or (isinstance(step, Dense) and not run):
            close()  # a Dense after a Flatten alone gains nothing from a chain
            out.extend(layers[i:i + used])
        else:
            if not run:
                start = shape
            run.append(step)
            if isinstance(step, Dense):  # the map is flat now: the chain ends
                close()
        i += used
        shape = layers[i - 1].output_shape or shape
    close()
    return out


def _run_chunk(parts: list[Segment], x: np.ndarray, out: np.ndarray, checked: bool) -> None:
    """The segments on one chunk ``x`` into ``out``; ``checked``: the first one's input values
    passed its :meth:`~cnnstep.backends.inference.Chain.unsafe_values` already."""
    a = x
    for k, part in enumerate(parts):
        if isinstance(part, Chain):
            dst = out if k == len(parts) - 1 else np.empty((len(a), *part.out_shape), a.dtype)
            part.run(a, dst, checked=checked and k == 0)
            a = dst
        else:
            a = part.forward(a)
    if a is not out:
        np.copyto(out, a)


def outputs(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's outputs (logits) for ``x`` (m, *input_shape), already in the model's dtype:
    shape (m, *output_shape), computed chunk by chunk (see the module's docstring)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
            or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    n = x.shape[0]
    out = np.empty((n, *model.output_shape), dtype=model.dtype)
    size = min(int(batch_size), CHUNK)
    chunks = [(i, min(i + size, n)) for i in range(0, n, size)]
    workers = min(op_threads(), len(chunks))
    shape = tuple(model.input_shape)
    # the first thread's plan, made here: its first chain checks the whole input's values
    # in one pass, for every thread (the replicas share the weights the check reads)
    first = segments(model.layers, shape, model.dtype)
    lead = first[0] if first else None
    with blas_one_thread():  # as everything else here
        checked = (isinstance(lead, Chain) and lead.why is None and x.flags.c_contiguous
                   and lead.unsafe_values(x) is None)

    def part(which: slice) -> None:
        # each thread's own layers (their caches) around the shared weights
        plan = first if which.start == 0 else segments(model.replica().layers, shape,
                                                        model.dtype)
        for a, b in chunks[which]:
            _run_chunk(plan, x[a:b], out[a:b], checked)

    if workers < 2:
        with serial(), blas_one_thread():
            part(slice(0, len(chunks)))
        return out
    bounds = np.linspace(0, len(chunks), workers + 1).astype(int)
    run_parts(part, [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])])
    return out


def scores(model: Any, x: np.ndarray, y: Any, batch_size: int = 256
           ) -> tuple[dict, np.ndarray]:
    """``({"loss": ..., "accuracy": ...}, y_pred)`` of the model on ``x`` (m, *input_shape),
    prepared) and labels ``y`` (m,): the loss summed ``batch_size`` rows at a time, and the
    predicted classes (m,) the accuracy counts, from one pass of :func:`outputs`."""
    y = np.asarray(y, dtype=np.int64)
    logits = outputs(model, x, batch_size)
    total = 0.0
    y_pred = np.empty(x.shape[0], dtype=np.int64)
    for i in range(0, x.shape[0], batch_size):
        part = logits[i:i + batch_size]
        loss, _, _ = classification_loss(part, y[i:i + batch_size])
        total += loss * part.shape[0]
        y_pred[i:i + batch_size] = predicted_classes(part)
    m = max(x.shape[0], 1)
    return {"loss": total / m, "accuracy": int((y_pred == y).sum()) / m}, y_pred
