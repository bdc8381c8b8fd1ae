"""Equal up to float rounding: a tolerance derived from the dtype and the reduction length.

Where a BLAS or oneDNN kernel chooses its own order of summation (it does: OpenBLAS's Haswell
kernels round a row differently with the number of rows in the product and with its own thread
count), two results of the same sums can differ in their last bits. They can never differ by
more than this: a sum of ``n`` products computed in *any* order lies within
``gamma_n * sum(|terms|)`` of the exact sum, with ``gamma_n = n * u / (1 - n * u)`` and ``u``
the unit roundoff of the dtype (Higham, *Accuracy and Stability of Numerical Algorithms*,
section 3.1; fused multiply-adds only round less). Two orders therefore differ by at most twice
that. The bound is per element, so a large element does not hide an error in a small one.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def gamma(n: int, dtype: Any) -> float:
    """Higham's ``gamma_n`` for ``dtype``: the relative error bound of a sum of ``n`` terms."""
    u = float(np.finfo(dtype).eps) / 2
    nu = n * u
    if nu >= 1:
        raise ValueError(f"n = {n} terms is too many for a bound in {np.dtype(dtype).name}")
    return nu / (1 - nu)


def assert_equal_up_to_rounding(got: Any, want: Any, abs_sums: Any, n: int,
                                dtype: Any = None) -> None:
    """``got`` and ``want`` are the same sums of at most ``n`` terms, up to rounding.

    Parameters
    ----------
    got, want : ndarray
        The two results (same shape).
    abs_sums : ndarray
        For each element, the sum of the absolute values of its terms (computed in float64,
        for example by the same op on ``abs`` of its inputs).
    n : int
        The largest number of terms (products, plus a bias) of any element.
    dtype : dtype, optional
        The precision the sums were computed in (default: ``got``'s).
    """
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    bound = 2 * gamma(n, dtype or got.dtype) * np.asarray(abs_sums, dtype=np.float64)
    # the rounding of the final result to the dtype itself, once each
    bound += float(np.finfo(dtype or got.dtype).eps) * np.abs(want.astype(np.float64))
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape) if diff.size else ()
    assert np.all(diff <= bound), (
        f"{int(np.sum(diff > bound))} of {diff.size} elements differ by more than rounding "
        f"allows: at {worst} |{got[worst]} - {want[worst]}| = {diff[worst]:.3g} > "
        f"{bound[worst]:.3g}")


def conv_abs_sums(A_prev: Any, W: Any, b: Any, hparameters: dict, dZ: Any = None) -> Any:
    """The sums of absolute terms of a convolution's forward pass, or of its three gradients.

    Returns ``Z_abs`` (the forward's), or ``(dA_abs, dW_abs, db_abs)`` when ``dZ`` is given: the
    same ops on absolute values, in float64 (every term is then non-negative, so the op's
    result is the sum of the absolute terms, whatever the order).
    """
    from cnnstep import conv_backward, conv_forward

    A, Wa, ba = (np.abs(np.asarray(x, dtype=np.float64)) for x in (A_prev, W, b))
    Z_abs, cache = conv_forward(A, Wa, ba, hparameters)
    if dZ is None:
        return Z_abs
    return conv_backward(np.abs(np.asarray(dZ, dtype=np.float64)), cache)


def conv_terms(A_prev: Any, W: Any, dZ: Any) -> int:
    """The largest number of terms in any element of a convolution's forward or gradients:
    ``f_h * f_w * n_C_prev + 1`` (forward), ``m * n_H * n_W`` (``dW``, ``db``) and
    ``f_h * f_w * n_C`` (``dA_prev``)."""
    f_h, f_w, n_C_prev, n_C = np.shape(W)
    m, n_H, n_W, _ = np.shape(dZ)
    return max(f_h * f_w * n_C_prev + 1, m * n_H * n_W, f_h * f_w * n_C)
