"""Convolution kernels from OpenVINO (the ``openvino`` extra), for the layers' float32 passes.

At one thread the im2col + BLAS convolution of :mod:`cnnstep.ops.conv` runs its thin products
below the BLAS peak and copies every window first; OpenVINO's CPU plugin (oneDNN's direct
convolutions) does the same arithmetic in about half the time. Measured at one thread,
64x14x14x16 -> 32 3x3: forward 2.1 -> 1.1 ms, input gradient (the whole NumPy backward: 4.6 ms)
1.2 ms; 64x64x64x3 -> 8 4x4 forward 7.1 -> 4.2 ms. The weight gradient stays in NumPy: as an
OpenVINO convolution (batch and channels swapped) it was slower (first layers 1.6-3.4x).

Used by :class:`cnnstep.nn.layers.conv.Conv2D` only: the functional API (``conv_forward`` ...)
stays NumPy, the reference the checker grades against. Each pass is a small model compiled once
per shape, geometry and thread count (NHWC in and out; the transposes are part of the model),
run with one inference request per thread. Float32 only, and only while :func:`enabled`: the
extra is installed and neither :func:`set_enabled` nor ``CNNSTEP_OPENVINO=0`` turned it off.
Results agree with the NumPy path up to float32 rounding (sums in another order).
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from cnnstep.ops.conv_grads import conv_work
from cnnstep.ops.geometry import WindowGeometry, unpack_cache
from cnnstep.ops.im2col import conv_inputs
from cnnstep.ops.threads import op_threads

#: Compiled models kept (least recently used dropped first).
CACHE_SIZE = 64
#: Below this much work (output cells x taps x channels in and out) a call's overhead outweighs
#: the faster kernel: the NumPy ops run instead (SIGNS's 8 -> 16 2x2 layer on 8x8, 0.2 million
#: at 32 images, ran its training step 4 % slower through OpenVINO).
MIN_WORK = 1_000_000

_state: dict[str, Any] = {"enabled": os.environ.get("CNNSTEP_OPENVINO", "1") != "0"}
_lock = threading.Lock()
_compiled: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_requests = threading.local()


@functools.cache
def _openvino() -> Any:
    try:
        import openvino
        import openvino.opset13
    except ImportError:
        return None
    return openvino


def available() -> bool:
    """Whether the ``openvino`` extra is installed."""
    return _openvino() is not None


def enabled() -> bool:
    """Whether the layers use OpenVINO's kernels (installed, and not turned off)."""
    return bool(_state["enabled"]) and available()


def set_enabled(flag: bool) -> None:
    """Turn OpenVINO's kernels on or off for this process (``CNNSTEP_OPENVINO=0``: off from the
    start). Off, the layers run the NumPy ops, exactly as without the extra."""
    if not isinstance(flag, bool):
        raise TypeError(f"flag: expected True or False, got {flag!r}")
    _state["enabled"] = flag


def _run(key: tuple[Any, ...], build: Any, inputs: list[np.ndarray]) -> np.ndarray:
    """Run the model of ``key`` (compiled by ``build(opset)`` on first use) on ``inputs``."""
    ov = _openvino()
    threads = op_threads()
    key = (*key, threads)
    with _lock:
        compiled = _compiled.get(key)
        if compiled is None:
            outputs, params = build(ov.opset13)
            # no pinning: two processes (a batch split) would pin their threads to the same core
            config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                      "ENABLE_CPU_PINNING": False, "INFERENCE_PRECISION_HINT": "f32",
                      "PERFORMANCE_HINT": "LATENCY"}
            compiled = ov.Core().compile_model(ov.Model(outputs, params), "CPU", config)
            _compiled[key] = compiled
            while len(_compiled) > CACHE_SIZE:
                _compiled.popitem(last=False)
        else:
            _compiled.move_to_end(key)
    requests = getattr(_requests, "by_model", None)
    if requests is None or len(requests) > 2 * CACHE_SIZE:
        requests = _requests.by_model = {}
    entry = requests.get(key)
    if entry is None or entry[0] is not compiled:  # a request of this thread, for this model
        entry = requests[key] = (compiled, compiled.create_infer_request())
    request = entry[1]
    request.infer(inputs, share_inputs=True)  # contiguous float32 arrays, kept alive here
    return np.array(request.get_output_tensor(0).data, copy=True)


def _usable(geom: WindowGeometry, m: int, W_shape: tuple[int, ...], *arrays: np.ndarray) -> bool:
    # cheap checks first: enabled() imports OpenVINO on its first call
    return (conv_work(geom, m, W_shape) >= MIN_WORK and m > 0
            and all(a.dtype == np.float32 for a in arrays) and enabled())


def _pads(geom: WindowGeometry) -> tuple[list[int], list[int]]:
    (t, b), (lt, rt) = geom.pad
    return [t, lt], [b, rt]


def conv_forward_ov(
    A_prev: Any, W: Any, b: Any, hparameters: dict[str, Any]
) -> np.ndarray | None:
    """:func:`cnnstep.ops.conv.conv_forward`'s ``Z`` from OpenVINO, or ``None`` where it does
    not apply (not :func:`enabled`, not float32 throughout, or less work than
    :data:`MIN_WORK`).

    A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C), b (1, 1, 1, n_C);
    returns Z (m, n_H, n_W, n_C), float32.
    """
    A_in, W_, b_, geom, _ = conv_inputs(A_prev, W, b, hparameters, "conv_forward")
    if not _usable(geom, A_in.shape[0], W_.shape, A_in, W_, b_):
        return None
    begin, end = _pads(geom)
    key = ("forward", A_in.shape, W_.shape, geom)

    def build(ops: Any) -> tuple[list[Any], list[Any]]:
        x = ops.parameter(list(A_in.shape), np.float32)
        w = ops.parameter(list(W_.shape), np.float32)
        bias = ops.parameter([1, 1, 1, W_.shape[3]], np.float32)
        z = ops.convolution(ops.transpose(x, [0, 3, 1, 2]), ops.transpose(w, [3, 2, 0, 1]),
                            list(geom.stride), begin, end, list(geom.dilation))
        # the bias before the layout change, where the plugin fuses it into the convolution
        z = ops.add(z, ops.transpose(bias, [0, 3, 1, 2]))
        return [ops.transpose(z, [0, 2, 3, 1])], [x, w, bias]

    return _run(key, build, [np.ascontiguousarray(a) for a in (A_in, W_, b_)])


def conv_input_grad_ov(dZ: np.ndarray, cache: Any) -> np.ndarray | None:
    """``dA_prev`` of :func:`cnnstep.ops.conv.conv_backward` from OpenVINO, or ``None`` where it
    does not apply (not :func:`enabled`, not float32, or less work than :data:`MIN_WORK`). Input
    rows and columns a stride leaves unread at the end are the backprop's output padding (always
    less than the stride; ``None`` would be the answer otherwise).

    dZ (m, n_H, n_W, n_C); cache ``(A_prev, W, b, hparameters)`` of the forward pass; returns
    dA_prev (m, n_H_prev, n_W_prev, n_C_prev), float32.
    """
    A_prev, W, b, hparameters = unpack_cache(
        cache, ("A_prev", "W", "b", "hparameters"), "conv_forward", "conv_backward")
    A_in, W_, _, geom, _ = conv_inputs(A_prev, W, b, hparameters, "conv_backward")
    dZ = np.asarray(dZ)
    if (not _usable(geom, A_in.shape[0], W_.shape, A_in, W_, dZ)
            or dZ.shape != (A_in.shape[0], *geom.out_hw, W_.shape[3])):
        return None
    begin, end = _pads(geom)
    # the backprop's own output size; what the input had beyond it is output padding
    extra = []
    for n_in, n_out, f, s, d, p0, p1 in zip(geom.in_hw, geom.out_hw, geom.kernel, geom.stride,
                                            geom.dilation, begin, end):
        reach = s * (n_out - 1) + d * (f - 1) + 1 - p0 - p1
        extra.append(n_in - reach)
    if any(not 0 <= e < s for e, s in zip(extra, geom.stride)):
        return None  # rows no window reaches beyond what output padding can add
    key = ("input_grad", A_in.shape, W_.shape, geom)

    def build(ops: Any) -> tuple[list[Any], list[Any]]:
        dz = ops.parameter(list(dZ.shape), np.float32)
        w = ops.parameter(list(W_.shape), np.float32)
        da = ops.convolution_backprop_data(
            ops.transpose(dz, [0, 3, 1, 2]), ops.transpose(w, [3, 2, 0, 1]), list(geom.stride),
            pads_begin=begin, pads_end=end, dilations=list(geom.dilation), output_padding=extra,
        )
        return [ops.transpose(da, [0, 2, 3, 1])], [dz, w]

    return _run(key, build, [np.ascontiguousarray(dZ), np.ascontiguousarray(W_)])
