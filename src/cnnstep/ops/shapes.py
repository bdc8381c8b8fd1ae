"""Shapes and window geometry from shapes alone, without an array: what layers need to know
their output shape before anything runs, and what ``cnnstep explain shapes`` prints."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops.geometry import WindowGeometry, conv_geometry, pool_geometry


def _shaped(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only stand-in of ``shape`` that allocates nothing (every stride is 0)."""
    return np.broadcast_to(np.empty((), dtype=np.float32), shape)


def conv_output_shape(input_shape: tuple[int, ...], kernel_shape: tuple[int, ...],
                      hparameters: Any, func: str = "conv_forward") -> tuple[int, int, int]:
    """The shape of one example of ``Z`` for a convolution, without running it.

    Parameters
    ----------
    input_shape : (n_H_prev, n_W_prev, n_C_prev)
    kernel_shape : (f_h, f_w, n_C_prev, n_C)
    hparameters : dict
        As for ``conv_forward``; checked the same way, with the same errors.

    Returns
    -------
    (n_H, n_W, n_C)
    """
    n_C = int(kernel_shape[3]) if len(kernel_shape) == 4 else 0
    geom = conv_window_geometry(input_shape, kernel_shape, hparameters, func)
    return geom.out_hw[0], geom.out_hw[1], n_C


def conv_window_geometry(input_shape: tuple[int, ...], kernel_shape: tuple[int, ...],
                         hparameters: Any, func: str = "conv_forward") -> WindowGeometry:
    """The :class:`WindowGeometry` of a convolution (padding resolved), from shapes alone.

    Parameters
    ----------
    input_shape : (n_H_prev, n_W_prev, n_C_prev)
    kernel_shape : (f_h, f_w, n_C_prev, n_C)
    hparameters : dict
        As for ``conv_forward``.
    """
    n_C = int(kernel_shape[3]) if len(kernel_shape) == 4 else 0
    return conv_geometry(_shaped((0, *input_shape)), _shaped(tuple(kernel_shape)),
                         _shaped((1, 1, 1, n_C)), hparameters, func)


def pool_output_shape(input_shape: tuple[int, ...], hparameters: Any,
                      func: str = "pool_forward") -> tuple[int, int, int]:
    """The shape of one example of ``A`` for a pooling, without running it.

    Parameters
    ----------
    input_shape : (n_H_prev, n_W_prev, n_C)
    hparameters : dict
        As for ``pool_forward``.

    Returns
    -------
    (n_H, n_W, n_C)
    """
    geom = pool_window_geometry(input_shape, hparameters, func)
    return geom.out_hw[0], geom.out_hw[1], int(input_shape[-1])


def pool_window_geometry(input_shape: tuple[int, ...], hparameters: Any,
                         func: str = "pool_forward") -> WindowGeometry:
    """The :class:`WindowGeometry` of a pooling (padding resolved), from shapes alone.

    Parameters
    ----------
    input_shape : (n_H_prev, n_W_prev, n_C)
    hparameters : dict
        As for ``pool_forward``.
    """
    return pool_geometry(_shaped((0, *input_shape)), hparameters, func)
