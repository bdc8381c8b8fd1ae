"""The one window helper under convolution and pooling.

A window op reads, for every output cell ``(h, w)``, the ``f_h x f_w`` taps of the padded input at
rows ``h*s_h + i*d_h`` and columns ``w*s_w + j*d_w``. :func:`window_view` exposes exactly that as a
strided view (no copy); convolution copies it once into a matrix for one GEMM (:func:`im2col`),
pooling reduces over its tap axes. Backward passes scatter tap by tap through
:meth:`~cnnstep.geometry.WindowGeometry.tap`, adding (never assigning) where windows overlap.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnstep.geometry import WindowGeometry


def window_view(A_pad: np.ndarray, geom: WindowGeometry) -> np.ndarray:
    """All windows of a padded input, as a read-only view.

    Parameters
    ----------
    A_pad : ndarray of shape (m, n_H_prev + pads, n_W_prev + pads, n_C)
        The padded input.
    geom : WindowGeometry

    Returns
    -------
    ndarray of shape (m, n_H, n_W, f_h, f_w, n_C)
        ``[k, h, w, i, j, c]`` is tap ``(i, j)`` of window ``(h, w)`` of example ``k``,
        channel ``c``.
    """
    (e_h, e_w), (s_h, s_w), (d_h, d_w) = geom.extent, geom.stride, geom.dilation
    n_H, n_W = geom.out_hw
    view = sliding_window_view(A_pad, (e_h, e_w), axis=(1, 2))  # (m, ., ., n_C, e_h, e_w)
    view = view[:, : (n_H - 1) * s_h + 1 : s_h, : (n_W - 1) * s_w + 1 : s_w, :, ::d_h, ::d_w]
    return view.transpose(0, 1, 2, 4, 5, 3)


def im2col(A_pad: np.ndarray, geom: WindowGeometry, out: np.ndarray | None = None) -> np.ndarray:
    """Copy every window into one row of a matrix, taps in ``(i, j, c)`` order.

    The column order matches ``W.reshape(f_h * f_w * n_C_prev, n_C)``, so a convolution is then a
    single matrix product with no transposed copy of ``W``.

    Parameters
    ----------
    A_pad : ndarray of shape (m, n_H_prev + pads, n_W_prev + pads, n_C_prev)
    geom : WindowGeometry
    out : ndarray, optional
        Buffer of at least ``m * n_H * n_W * f_h * f_w * n_C_prev`` elements to reuse.

    Returns
    -------
    ndarray of shape (m * n_H * n_W, f_h * f_w * n_C_prev)
    """
    m, n_C = A_pad.shape[0], A_pad.shape[3]
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    shape = (m, n_H, n_W, f_h, f_w, n_C)
    size = m * n_H * n_W * f_h * f_w * n_C
    if (f_h, f_w) == (1, 1) and geom.stride == (1, 1) and A_pad.flags.c_contiguous:
        return A_pad.reshape(m * n_H * n_W, n_C)  # a 1x1 convolution needs no copy at all
    cols = (
        np.empty(shape, dtype=A_pad.dtype)
        if out is None
        else out.reshape(-1)[:size].reshape(shape)
    )
    np.copyto(cols, window_view(A_pad, geom))
    return cols.reshape(m * n_H * n_W, f_h * f_w * n_C)


def col2im_add(dcols: np.ndarray, geom: WindowGeometry, dA_pad: np.ndarray) -> None:
    """Scatter-add window gradients back onto the padded input (the adjoint of :func:`im2col`).

    Parameters
    ----------
    dcols : ndarray of shape (m * n_H * n_W, f_h * f_w * n_C)
        Gradient with respect to each window's taps.
    geom : WindowGeometry
    dA_pad : ndarray of shape (m, n_H_prev + pads, n_W_prev + pads, n_C)
        Accumulated in place; windows that overlap add up.
    """
    m, n_C = dA_pad.shape[0], dA_pad.shape[3]
    (n_H, n_W), (f_h, f_w) = geom.out_hw, geom.kernel
    d6 = dcols.reshape(m, n_H, n_W, f_h, f_w, n_C)
    for i in range(f_h):
        for j in range(f_w):
            rows, cols = geom.tap(i, j)
            dA_pad[:, rows, cols, :] += d6[:, :, :, i, j, :]
