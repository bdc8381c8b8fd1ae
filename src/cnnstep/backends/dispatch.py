"""The one API the layers call: each pass forward returns its output and a context, each pass
backward takes that context; which kernels run is decided here, pass by pass.

A convolution or max pooling runs on oneDNN (:mod:`cnnstep.backends.onednn`) when the
``backend`` setting is ``"auto"`` (:mod:`cnnstep.config`), the library is there and passed its
checks, the arrays are float32 and the pass holds enough work, and oneDNN has not refused the
geometry before; everything else runs on NumPy's kernels (:mod:`cnnstep.backends.numpy`). A
backward pass runs where its forward pass ran, unless oneDNN refuses that backward pass (it is
then NumPy's for good, the forward staying on oneDNN). Each decision is noted with its reason
(:mod:`cnnstep.backends.record`, shown by :func:`cnnstep.backends.status`).

The contexts are opaque to the layers: a layer keeps the one its forward pass returned in
training, hands it to the backward pass, and may hand a finished one back to the next forward
pass (``reuse``), whose buffers are then filled again instead of allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnstep.backends import numpy as numpy_backend
from cnnstep.backends import record
from cnnstep.backends.onednn import conv as onednn_conv
from cnnstep.backends.onednn import library
from cnnstep.backends.onednn import pool as onednn_pool
from cnnstep.backends.onednn.primitives import RefusedError
from cnnstep.config import setting
from cnnstep.ops.checks import check_pool_mode
from cnnstep.ops.geometry import WindowGeometry, as_array, pool_geometry
from cnnstep.ops.kernels.im2col import conv_inputs

ONEDNN = "onednn"
NO_AVG = "cnnstep uses oneDNN for max pooling only"


@dataclass
class ConvContext:
    """What a convolution's backward pass needs from its forward pass.

    ``backend`` is where the forward pass ran; ``cache`` is ``(A_prev, W, b, hparameters)`` as
    :func:`cnnstep.ops.conv_forward` gives it; ``windows`` the window matrix NumPy's forward
    kept (or ``None``); ``checked`` the forward's checked arrays and geometry (oneDNN).
    """

    backend: str
    cache: tuple[Any, Any, Any, dict[str, Any]]
    windows: np.ndarray | None = None
    checked: tuple[np.ndarray, np.ndarray, WindowGeometry] | None = None


@dataclass
class PoolContext:
    """What a pooling's backward pass needs from its forward pass: where it ran, ``cache``
    ``(A_prev, hparameters)``, the mode, the output, and the maxima's taps (NumPy) or oneDNN's
    workspace."""

    backend: str
    cache: tuple[Any, dict[str, Any]]
    mode: str
    output: np.ndarray
    taps: np.ndarray | None = None
    workspace: np.ndarray | None = None
    geom: WindowGeometry | None = None


def onednn_why_not(cheap: str | None) -> str | None:
    """Why oneDNN does not run a pass (or a chain, :mod:`cnnstep.backends.inference`): the
    setting, ``cheap`` (what the kernel's own refusal found), or the library's state (loaded
    once, on the first pass that asks)."""
    backend = setting("backend")
    if backend != "auto":
        return f"the backend setting is {backend!r} (cnnstep.config)"
    if cheap is not None:
        return cheap
    made = library.engine()
    return f"oneDNN is unavailable: {made}" if isinstance(made, str) else None


def conv2d_forward(
    x: Any, W: Any, b: Any, hparameters: dict[str, Any], *, training: bool = False,
    reuse: ConvContext | None = None,
) -> tuple[np.ndarray, ConvContext | None]:
    """A convolution's forward pass (:func:`cnnstep.ops.conv_forward`'s ``Z``) on the kernels
    this pass should use.

    Parameters
    ----------
    x : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev)
    W : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    b : ndarray of shape (1, 1, 1, n_C)
    hparameters : dict
        As :func:`cnnstep.ops.conv_forward`'s.
    training : bool
        Return a context for :func:`conv2d_backward` (else ``None``).
    reuse : ConvContext, optional
        A context whose backward pass is done: its buffers may be filled again.

    Returns
    -------
    Z : ndarray of shape (m, n_H, n_W, n_C)
    context : ConvContext or None
    """
    A_in, W_, b_, geom, dtype = conv_inputs(x, W, b, hparameters, "conv_forward")
    key = ("conv forward", A_in.shape, geom, dtype, W_.shape[3])
    why = onednn_why_not(onednn_conv.refusal(geom, A_in, W_, b_))
    if why is None:
        try:
            Z = onednn_conv.forward(_api(), A_in, W_, b_, geom)
        except RefusedError as exc:
            why = str(exc)
        else:
            record.note(key, ONEDNN)
            ctx = ConvContext(ONEDNN, (x, W, b, hparameters), None, (A_in, W_, geom))
            return Z, (ctx if training else None)
    record.note(key, f"numpy: {why}")
    spare = reuse.windows if reuse is not None else None
    Z, cache, windows = numpy_backend.conv_pass(x, W, b, hparameters, training, spare)
    return Z, (ConvContext("numpy", cache, windows) if training else None)


def conv2d_backward(
    dZ: Any, ctx: ConvContext, need_input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """A convolution's backward pass from the context of its forward pass.

    Parameters
    ----------
    dZ : ndarray of shape (m, n_H, n_W, n_C)
    ctx : ConvContext
        From :func:`conv2d_forward` with ``training=True``.
    need_input_grad : bool
        Compute ``dA_prev`` (a network's first layer does not need it).

    Returns
    -------
    dA_prev : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev), or None
    dW : ndarray of shape (f_h, f_w, n_C_prev, n_C)
    db : ndarray of shape (1, 1, 1, n_C)
    """
    if ctx.backend == ONEDNN and ctx.checked is not None:
        A_in, W_, geom = ctx.checked
        dZ_arr = np.asarray(dZ)
        key = ("conv backward", A_in.shape, geom, dZ_arr.dtype, W_.shape[3])
        why = onednn_why_not(None)
        if dZ_arr.dtype != np.float32 or dZ_arr.shape != (A_in.shape[0], *geom.out_hw,
                                                           W_.shape[3]):
            why = "dZ is not float32 of the output's shape"  # NumPy's kernels say what is wrong
        if why is None:
            try:
                dA, dW, db = onednn_conv.backward(_api(), A_in, W_, geom, dZ_arr,
                                                  need_input_grad)
            except RefusedError as exc:
                why = str(exc)
            else:
                record.note(key, ONEDNN)
                if not (np.isfinite(dW).all() and np.isfinite(db).all()):  # NaN or inf came in
                    dW = numpy_backend.conv_backward_pass(dZ, ctx.cache, None, False)[1]
                return dA, dW, db
        record.note(key, f"numpy: {why}")
    return numpy_backend.conv_backward_pass(dZ, ctx.cache, ctx.windows, need_input_grad)


def pool2d_forward(
    x: Any, hparameters: dict[str, Any], mode: str = "max", *, training: bool = False
) -> tuple[np.ndarray, PoolContext | None]:
    """A pooling's forward pass (:func:`cnnstep.ops.pool_forward`'s ``A``) on the kernels this
    pass should use; with ``training``, a context for :func:`pool2d_backward` (else ``None``).

    x (m, n_H_prev, n_W_prev, n_C); returns A (m, n_H, n_W, n_C) and the context.
    """
    mode = check_pool_mode(mode, "pool_forward")
    if mode != "max":  # no native kernel: NumPy's checks the arguments (once)
        A, cache, taps = numpy_backend.pool_pass(x, hparameters, mode, training)
        record.note((f"{mode} pool forward", np.shape(x), None, A.dtype), f"numpy: {NO_AVG}")
        return A, (PoolContext("numpy", cache, mode, A, taps) if training else None)
    A_in = as_array(x, "A_prev", "pool_forward")
    geom = pool_geometry(A_in, hparameters, "pool_forward")
    key = (f"{mode} pool forward", A_in.shape, geom, A_in.dtype)
    why = onednn_why_not(onednn_pool.refusal(A_in, geom, mode))
    if why is None:
        try:
            A, workspace = onednn_pool.forward(_api(), A_in, geom)
        except RefusedError as exc:
            why = str(exc)
        else:
            record.note(key, ONEDNN)
            ctx = PoolContext(ONEDNN, (x, hparameters), mode, A, None, workspace, geom)
            return A, (ctx if training else None)
    record.note(key, f"numpy: {why}")
    A, cache, taps = numpy_backend.pool_pass(x, hparameters, mode, training)
    return A, (PoolContext("numpy", cache, mode, A, taps) if training else None)


def pool2d_backward(dA: Any, ctx: PoolContext, need_input_grad: bool = True) -> np.ndarray | None:
    """A pooling's backward pass from the context of its forward pass: dA (m, n_H, n_W, n_C)
    in, dA_prev (m, n_H_prev, n_W_prev, n_C) out (``None`` without ``need_input_grad``)."""
    if not need_input_grad:
        return None
    if ctx.backend == ONEDNN and ctx.workspace is not None and ctx.geom is not None:
        A_in = np.asarray(ctx.cache[0])
        dA_arr = np.asarray(dA)
        key = (f"{ctx.mode} pool backward", A_in.shape, ctx.geom, dA_arr.dtype)
        why = onednn_why_not(None)
        if dA_arr.dtype != np.float32 or dA_arr.shape != ctx.output.shape:
            why = "dA is not float32 of the output's shape"
        if why is None:
            try:
                dA_prev = onednn_pool.backward(_api(), A_in, ctx.geom, dA_arr, ctx.workspace)
            except RefusedError as exc:
                why = str(exc)
            else:
                record.note(key, ONEDNN)
                return dA_prev
        record.note(key, f"numpy: {why}")
    return numpy_backend.pool_backward_pass(dA, ctx.cache, ctx.mode, ctx.output, ctx.taps)


def _api() -> Any:
    made = library.engine()
    assert not isinstance(made, str)  # onednn_why_not said it is there
    return made
