"""PyTorch as the numerical oracle: forward passes and every gradient, on many configurations."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import cnnstep
from cnnstep.ops.geometry import conv_geometry, pool_geometry

torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_num_threads(1)

TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-4)}


def _nchw(x: np.ndarray, grad: bool = False):
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return t.requires_grad_(grad)


def _nhwc(t) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def torch_conv(A_prev, W, b, dZ, geom):
    """Z and (dA_prev, dW, db) from PyTorch, with our resolved padding applied explicitly."""
    x = _nchw(A_prev, grad=True)
    w = torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))).requires_grad_()
    bias = torch.from_numpy(b.reshape(-1).copy()).requires_grad_()
    (t, bt), (lt, r) = geom.pad
    z = F.conv2d(F.pad(x, (lt, r, t, bt)), w, bias, stride=geom.stride, dilation=geom.dilation)
    z.backward(_nchw(dZ))
    dW = w.grad.numpy().transpose(2, 3, 1, 0)
    return _nhwc(z), _nhwc(x.grad), dW, bias.grad.numpy().reshape(1, 1, 1, -1)


def torch_pool(A_prev, dA, geom, mode):
    """A and dA_prev from PyTorch; padded cells never win a max and never count in a mean."""
    x = _nchw(A_prev, grad=True)
    (t, bt), (lt, r) = geom.pad
    if mode == "max":
        a = F.max_pool2d(F.pad(x, (lt, r, t, bt), value=-np.inf), geom.kernel, geom.stride)
    else:
        ones = torch.ones_like(x)
        total = F.avg_pool2d(F.pad(x, (lt, r, t, bt)), geom.kernel, geom.stride)
        count = F.avg_pool2d(F.pad(ones, (lt, r, t, bt)), geom.kernel, geom.stride)
        a = total / count
    a.backward(_nchw(dA))
    return _nhwc(a), _nhwc(x.grad)


# (m, n_H_prev, n_W_prev, n_C_prev, n_C, kernel (f_h, f_w), stride, pad, dilation)
NAMED_CONV_CASES = {
    "pad0": (2, 6, 6, 3, 4, (3, 3), 1, 0, 1),
    "stride2-divides": (2, 7, 7, 2, 3, (3, 3), 2, 0, 1),
    "stride2-remainder": (2, 8, 8, 2, 3, (3, 3), 2, 0, 1),
    "stride3-remainder-pad1": (1, 9, 10, 2, 2, (2, 2), 3, 1, 1),
    "per-axis-stride": (2, 9, 8, 2, 3, (3, 3), (2, 1), 1, 1),
    "per-axis-pad": (2, 5, 6, 2, 3, (3, 3), 1, (2, 0), 1),
    "asymmetric-pad": (2, 5, 6, 2, 3, (3, 3), 2, ((0, 2), (1, 0)), 1),
    "same-odd": (2, 7, 7, 3, 4, (3, 3), 1, "same", 1),
    "same-even-kernel": (2, 7, 6, 3, 4, (4, 4), 1, "same", 1),
    "same-stride2": (2, 9, 8, 2, 3, (3, 3), 2, "same", 1),
    "same-stride2-even": (2, 9, 8, 2, 3, (4, 2), 2, "same", 1),
    "same-dilated": (1, 9, 9, 2, 2, (3, 3), 1, "same", 2),
    "valid": (2, 6, 7, 2, 3, (3, 3), 1, "valid", 1),
    "dilation2": (2, 9, 9, 2, 3, (3, 3), 1, 0, 2),
    "dilation-per-axis": (1, 9, 9, 2, 3, (2, 3), (1, 2), 1, (3, 1)),
    "non-square-kernel": (2, 6, 8, 3, 2, (2, 4), 1, 1, 1),
    "1x1": (2, 5, 5, 4, 3, (1, 1), 1, 0, 1),
    "1x1-stride2": (2, 5, 6, 4, 3, (1, 1), 2, 0, 1),
    "kernel-equals-input": (3, 4, 4, 2, 2, (4, 4), 1, 0, 1),
    "batch1-channel1": (1, 6, 5, 1, 1, (3, 2), 1, 1, 1),
    "published-backward": (10, 4, 4, 3, 8, (2, 2), 2, 2, 1),
}


def _random_conv_cases(n: int, seed: int = 2024):
    rng = np.random.default_rng(seed)
    cases = {}
    while len(cases) < n:
        f = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        kind = rng.integers(0, 4)
        if kind == 0:
            pad = int(rng.integers(0, 3))
        elif kind == 1:
            pad = ((int(rng.integers(0, 3)), int(rng.integers(0, 3))),
                   (int(rng.integers(0, 3)), int(rng.integers(0, 3))))
        else:
            pad = ["same", "valid"][kind - 2]
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 11)), int(rng.integers(1, 11)),
                 int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        try:
            conv_geometry(np.empty(shape[:4]), np.empty((*f, shape[3], shape[4])),
                          np.empty((1, 1, 1, shape[4])),
                          {"stride": stride, "pad": pad, "dilation": dil})
        except ValueError:
            continue  # the window does not fit: covered by the error tests
        cases[f"random{len(cases)}"] = (*shape, f, stride, pad, dil)
    return cases


CONV_CASES = {**NAMED_CONV_CASES, **_random_conv_cases(30)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_matches_torch(case, dtype):
    m, H, W_, C, n_C, kernel, stride, pad, dilation = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    A_prev = rng.standard_normal((m, H, W_, C)).astype(dtype)
    W = rng.standard_normal((*kernel, C, n_C)).astype(dtype)
    b = rng.standard_normal((1, 1, 1, n_C)).astype(dtype)
    hp = {"stride": stride, "pad": pad, "dilation": dilation}
    Z, cache = cnnstep.conv_forward(A_prev, W, b, hp)
    assert Z.dtype == dtype
    dZ = rng.standard_normal(Z.shape).astype(dtype)
    dA_prev, dW, db = cnnstep.conv_backward(dZ, cache)
    geom = conv_geometry(A_prev, W, b, hp)
    Zt, dAt, dWt, dbt = torch_conv(A_prev, W, b, dZ, geom)
    tol = TOL[dtype]
    np.testing.assert_allclose(Z, Zt, **tol)
    np.testing.assert_allclose(dA_prev, dAt, **tol)
    np.testing.assert_allclose(dW, dWt, **tol)
    np.testing.assert_allclose(db, dbt, **tol)
    for got, like in ((dA_prev, A_prev), (dW, W), (db, b)):
        assert got.shape == like.shape and got.dtype == dtype


# (m, n_H_prev, n_W_prev, n_C, f, stride, pad)
NAMED_POOL_CASES = {
    "f2s2": (2, 6, 6, 3, 2, 2, 0),
    "f3s1-overlap": (2, 5, 5, 3, 3, 1, 0),
    "f3s2-remainder": (2, 8, 7, 2, 3, 2, 0),
    "f2s1": (2, 5, 5, 2, 2, 1, 0),
    "non-square": (2, 7, 9, 2, (2, 3), (1, 2), 0),
    "pad1": (2, 6, 6, 2, 3, 1, 1),
    "pad1-stride2": (2, 7, 6, 2, 3, 2, 1),
    "asym-pad": (2, 6, 5, 2, 3, 2, ((0, 1), (2, 0))),
    "same-f2s2-odd": (2, 7, 7, 2, 2, 2, "same"),
    "same-f3s1": (2, 5, 6, 2, 3, 1, "same"),
    "same-f8s8": (1, 20, 20, 2, 8, 8, "same"),
    "f1": (2, 4, 4, 2, 1, 1, 0),
    "global": (3, 4, 5, 2, (4, 5), 1, 0),
    "batch1-channel1": (1, 6, 6, 1, 2, 2, 0),
}


def _random_pool_cases(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    cases = {}
    while len(cases) < n:
        f = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        kind = rng.integers(0, 3)
        if kind == 0:
            pad = ((int(rng.integers(0, f[0])), int(rng.integers(0, f[0]))),
                   (int(rng.integers(0, f[1])), int(rng.integers(0, f[1]))))
        else:
            pad = ["same", "valid"][kind - 1]
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 11)), int(rng.integers(1, 11)),
                 int(rng.integers(1, 4)))
        try:
            pool_geometry(np.empty(shape), {"f": f, "stride": stride, "pad": pad})
        except ValueError:
            continue
        cases[f"random{len(cases)}"] = (*shape, f, stride, pad)
    return cases


POOL_CASES = {**NAMED_POOL_CASES, **_random_pool_cases(25)}


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pool_matches_torch(case, dtype, mode):
    m, H, W_, C, f, stride, pad = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    A_prev = rng.standard_normal((m, H, W_, C)).astype(dtype)
    hp = {"f": f, "stride": stride, "pad": pad}
    A, cache = cnnstep.pool_forward(A_prev, hp, mode=mode)
    assert A.dtype == dtype
    dA = rng.standard_normal(A.shape).astype(dtype)
    dA_prev = cnnstep.pool_backward(dA, cache, mode=mode)
    At, dAt = torch_pool(A_prev, dA, pool_geometry(A_prev, hp), mode)
    np.testing.assert_allclose(A, At, **TOL[dtype])
    np.testing.assert_allclose(dA_prev, dAt, **TOL[dtype])
    assert dA_prev.shape == A_prev.shape and dA_prev.dtype == dtype


def test_torch_symmetric_padding_average_excludes_pad():
    """Cross-check the exclusion rule against PyTorch's own count_include_pad=False."""
    rng = np.random.default_rng(0)
    A_prev = rng.standard_normal((2, 6, 7, 3))
    A, _ = cnnstep.pool_forward(A_prev, {"f": 3, "stride": 2, "pad": 1}, mode="average")
    At = F.avg_pool2d(_nchw(A_prev), 3, 2, padding=1, count_include_pad=False)
    np.testing.assert_allclose(A, _nhwc(At), rtol=1e-12)
    A, _ = cnnstep.pool_forward(A_prev, {"f": 3, "stride": 2, "pad": 1}, mode="max")
    np.testing.assert_allclose(A, _nhwc(F.max_pool2d(_nchw(A_prev), 3, 2, padding=1)))


def test_max_pool_ties_match_torch():
    """On heavily tied data both route each window's gradient to the same (first) maximum."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        A_prev = rng.integers(0, 3, size=(2, 7, 6, 3)).astype(np.float64)
        f, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        hp = {"f": f, "stride": s, "pad": int(rng.integers(0, f // 2 + 1))}
        A, cache = cnnstep.pool_forward(A_prev, hp)
        dA = rng.standard_normal(A.shape)
        At, dAt = torch_pool(A_prev, dA, pool_geometry(A_prev, hp), "max")
        # Same cells receive gradient; only the order of additions may differ.
        np.testing.assert_allclose(cnnstep.pool_backward(dA, cache), dAt, rtol=0, atol=1e-12)
