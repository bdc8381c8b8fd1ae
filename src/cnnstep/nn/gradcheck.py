"""Numerical gradient checking of layers and models (central differences in float64)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstep.nn.layers.base import walk


def _parts(obj: Any) -> list[Any]:
    """A layer or model, and every layer in it (the layers inside containers too)."""
    if hasattr(obj, "layers"):
        return [obj, *walk(obj.layers)]
    paths = obj.paths() if hasattr(obj, "paths") else {}
    return [obj, *walk(layer for path in paths.values() for layer in path)]


def _rngs(obj: Any) -> list[np.random.Generator]:
    """Random generators a layer or model draws from (dropout), to replay the same draws."""
    found: list[np.random.Generator] = []
    for item in _parts(obj):
        rng = getattr(item, "rng", None)
        if isinstance(rng, np.random.Generator) and all(rng is not r for r in found):
            found.append(rng)
    return found


def _to_float64(obj: Any) -> Any:
    """A float64 copy of a layer or model (float32 is too coarse for finite differences)."""
    obj = copy.deepcopy(obj)
    for item in _parts(obj):
        for attr in ("params", "state"):
            arrays = getattr(item, attr, None)
            if isinstance(arrays, dict):
                for k, v in list(arrays.items()):
                    if np.asarray(v).dtype.kind == "f":
                        arrays[k] = np.asarray(v, dtype=np.float64)
        if hasattr(item, "dtype") and hasattr(item, "layers"):
            item.dtype = np.dtype(np.float64)
    return obj


def numerical_gradient(
    loss: Callable[[], float], x: np.ndarray, eps: float = 1e-6, entries: np.ndarray | None = None
) -> np.ndarray:
    """Central differences ``(loss(x + eps) - loss(x - eps)) / (2 eps)``, one entry at a time.

    Parameters
    ----------
    loss : callable
        ``loss() -> float``, reading ``x`` (which is nudged in place and restored).
    x : ndarray, float64
        The variable; must be writeable and contiguous.
    eps : float
        Finite-difference step.
    entries : ndarray of int, optional
        Flat indices to differentiate (default: all).

    Returns
    -------
    ndarray
        Shaped like ``x`` when ``entries`` is None, else one value per entry.
    """
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient: x must be contiguous (it is nudged in place)")
    idx = np.arange(flat.size) if entries is None else np.asarray(entries)
    num = np.empty(idx.size)
    for n, k in enumerate(idx):
        old = flat[k]
        flat[k] = old + eps
        plus = loss()
        flat[k] = old - eps
        minus = loss()
        flat[k] = old
        num[n] = (plus - minus) / (2 * eps)
    return num.reshape(x.shape) if entries is None else num


def gradient_check(
    layer: Any,
    x: np.ndarray,
    *,
    eps: float = 1e-6,
    max_entries: int | None = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Compare a layer's (or model's) backward pass with central differences.

    The check uses the scalar loss ``L = sum(forward(x) * R)`` for a fixed random ``R``, so
    ``dL/doutput = R``. It runs on a float64 copy of ``layer``; the original is not changed.
    Random layers (dropout) replay the same draws at every evaluation.

    Parameters
    ----------
    layer : Layer or Sequential
        Anything with ``forward(x, training)``, ``backward(dout)``, ``params`` and ``grads``.
        An unbuilt layer or model is built for ``x.shape[1:]`` first (it is changed).
        Must already be built.
    x : ndarray
        Input batch.
    eps : float, default 1e-6
        Finite-difference step.
    max_entries : int or None, default 200
        Check at most this many randomly chosen entries of ``x`` and of each parameter
        (None: all of them).
    seed : int
        Seed of ``R`` and of the choice of entries.

    Returns
    -------
    dict of str to float
        Relative error ``||num - ana|| / (||num|| + ||ana||)`` over the checked entries, for
        ``"x"`` and for every parameter name (0 when both are zero). Values below about 1e-6
        mean the gradients agree.
    """
    x = np.array(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis, shape (m, ...), got shape {x.shape}")
    if getattr(layer, "input_shape", "") is None:  # an unbuilt layer or model: build it for x
        if hasattr(layer, "layers"):
            layer.build(x.shape[1:])
        else:
            layer.build(x.shape[1:], np.random.default_rng(seed), np.float64)
    layer = _to_float64(layer)
    rng = np.random.default_rng(seed)
    generators = _rngs(layer)
    saved = [g.bit_generator.state for g in generators]

    def forward() -> np.ndarray:
        for g, s in zip(generators, saved):
            g.bit_generator.state = s
        return layer.forward(x, training=True)

    out = forward()
    R = rng.standard_normal(out.shape)
    dx = layer.backward(R)
    analytic = {"x": np.asarray(dx)}
    params = layer.params  # for a Sequential, "layer.name" keys
    grads = layer.grads
    analytic.update({k: np.array(grads[k], dtype=np.float64) for k in params})

    def loss() -> float:
        return float(np.sum(forward() * R))

    errors = {}
    for name, arr in [("x", x), *params.items()]:
        flat = arr.reshape(-1)
        idx = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            idx = rng.choice(flat.size, size=max_entries, replace=False)
        num = numerical_gradient(loss, arr, eps, idx)
        ana = analytic[name].reshape(-1)[idx]
        scale = np.linalg.norm(num) + np.linalg.norm(ana)
        errors[name] = float(np.linalg.norm(num - ana) / scale) if scale > 0 else 0.0
    return errors
