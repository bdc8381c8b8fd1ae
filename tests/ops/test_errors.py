"""Bad input raises ValueError/TypeError naming the argument, what was expected, what was given."""

from __future__ import annotations

import numpy as np
import pytest

import cnnstep
import cnnstep.reference as reference

A = np.zeros((2, 5, 5, 3))
W = np.zeros((3, 3, 3, 4))
b = np.zeros((1, 1, 1, 4))
HP = {"stride": 1, "pad": 1}
POOL = {"f": 2, "stride": 2}


def _conv_cache():
    return cnnstep.conv_forward(A, W, b, HP)[1]


def _pool_cache():
    return cnnstep.pool_forward(A, POOL)[1]


# (id, call(ops), exception type, regex that the message must match)
BAD_INPUTS = [
    ("A_prev rank", lambda o: o.conv_forward(A[0], W, b, HP), ValueError,
     r"A_prev must have 4 dimensions.*got shape \(5, 5, 3\)"),
    ("W rank", lambda o: o.conv_forward(A, W[..., 0], b, HP), ValueError,
     r"W must have 4 dimensions.*got shape \(3, 3, 3\)"),
    ("channel mismatch", lambda o: o.conv_forward(A, np.zeros((3, 3, 2, 4)), b, HP), ValueError,
     r"channel mismatch.*W of shape \(3, 3, 2, 4\).*A_prev of shape \(2, 5, 5, 3\) has 3"),
    ("b shape", lambda o: o.conv_forward(A, W, np.zeros((1, 1, 1, 3)), HP), ValueError,
     r"b must have shape \(1, 1, 1, 4\).*got shape \(1, 1, 1, 3\)"),
    ("window too big", lambda o: o.conv_forward(A, np.zeros((8, 3, 3, 4)), b, HP), ValueError,
     r"window does not fit.*window height 8.*padded A_prev height 7 \(5 \+ pad 1\+1\)"),
    ("dilated window too big",
     lambda o: o.conv_forward(A, W, b, {"stride": 1, "pad": 0, "dilation": 3}), ValueError,
     r"window does not fit.*7 \(3 taps, dilation 3\).*height 5"),
    ("stride 0", lambda o: o.conv_forward(A, W, b, {"stride": 0, "pad": 1}), ValueError,
     r"hparameters\['stride'\] must be >= 1, got 0"),
    ("stride pair 0", lambda o: o.conv_forward(A, W, b, {"stride": (1, 0), "pad": 1}),
     ValueError, r"hparameters\['stride'\]\[1\] must be >= 1, got 0"),
    ("stride float", lambda o: o.conv_forward(A, W, b, {"stride": 1.5, "pad": 1}), TypeError,
     r"hparameters\['stride'\] must be an integer, got 1.5"),
    ("stride triple", lambda o: o.conv_forward(A, W, b, {"stride": (1, 1, 1), "pad": 1}),
     ValueError, r"hparameters\['stride'\] must be an int or a pair \(height, width\)"),
    ("dilation 0", lambda o: o.conv_forward(A, W, b, {"stride": 1, "pad": 1, "dilation": 0}),
     ValueError, r"hparameters\['dilation'\] must be >= 1, got 0"),
    ("negative pad", lambda o: o.conv_forward(A, W, b, {"stride": 1, "pad": -1}), ValueError,
     r"hparameters\['pad'\] must be >= 0, got -1"),
    ("negative pad side",
     lambda o: o.conv_forward(A, W, b, {"stride": 1, "pad": ((0, 1), (-2, 0))}), ValueError,
     r"hparameters\['pad'\]\[0\] must be >= 0, got -2"),
    ("unknown pad word", lambda o: o.conv_forward(A, W, b, {"stride": 1, "pad": "full"}),
     ValueError, r"hparameters\['pad'\] must be .*'same' or 'valid', got 'full'"),
    ("missing pad", lambda o: o.conv_forward(A, W, b, {"stride": 1}), ValueError,
     r"hparameters is missing 'pad'.*expected keys \['stride', 'pad'\].*got \['stride'\]"),
    ("typo key", lambda o: o.conv_forward(A, W, b, {"stride": 1, "pad": 0, "strides": 2}),
     ValueError, r"unknown key\(s\) 'strides' in hparameters"),
    ("hparameters not dict", lambda o: o.conv_forward(A, W, b, [1, 1]), TypeError,
     r"hparameters must be a dict.*got list"),
    ("complex input", lambda o: o.conv_forward(A.astype(complex), W, b, HP), TypeError,
     r"A_prev must hold real numbers.*got dtype complex128"),
    ("string input", lambda o: o.conv_forward("A", W, b, HP), TypeError,
     r"A_prev must be a NumPy array, got str"),
    ("dZ shape", lambda o: o.conv_backward(np.zeros((2, 5, 5, 3)), _conv_cache()), ValueError,
     r"dZ must have the shape of Z, \(2, 5, 5, 4\), got shape \(2, 5, 5, 3\)"),
    ("conv cache", lambda o: o.conv_backward(np.zeros((2, 5, 5, 4)), (A, W)), TypeError,
     r"cache must be the tuple \(A_prev, W, b, hparameters\) returned by conv_forward, "
     r"got tuple of length 2"),
    ("pool cache", lambda o: o.pool_backward(np.zeros((2, 2, 2, 3)), A), TypeError,
     r"cache must be the tuple \(A_prev, hparameters\) returned by pool_forward, got ndarray"),
    ("pool mode", lambda o: o.pool_forward(A, POOL, mode="mean"), ValueError,
     r"mode must be 'max' or 'average', got 'mean'"),
    ("pool backward mode", lambda o: o.pool_backward(np.zeros((2, 2, 2, 3)), _pool_cache(),
                                                      mode="min"), ValueError,
     r"mode must be 'max' or 'average', got 'min'"),
    ("pool missing f", lambda o: o.pool_forward(A, {"stride": 2}), ValueError,
     r"hparameters is missing 'f'"),
    ("pool rank", lambda o: o.pool_forward(A[0], POOL), ValueError,
     r"A_prev must have 4 dimensions.*got shape \(5, 5, 3\)"),
    ("pool window too big", lambda o: o.pool_forward(A, {"f": 6, "stride": 1}), ValueError,
     r"window does not fit.*window height 6.*height 5"),
    ("pool pad >= f", lambda o: o.pool_forward(A, {"f": 2, "stride": 1, "pad": 2}), ValueError,
     r"pooling pad must be smaller than the window.*pad \(2, 2\).*window height of 2"),
    ("pool stride 0", lambda o: o.pool_forward(A, {"f": 2, "stride": 0}), ValueError,
     r"hparameters\['stride'\] must be >= 1, got 0"),
    ("dA shape", lambda o: o.pool_backward(np.zeros((2, 3, 3, 3)), _pool_cache()), ValueError,
     r"dA must have .*\(2, 2, 2, 3\), got shape \(2, 3, 3, 3\)"),
    ("zero_pad rank", lambda o: o.zero_pad(np.zeros((3, 3)), 1), ValueError,
     r"X must have 4 dimensions.*got shape \(3, 3\)"),
    ("zero_pad negative", lambda o: o.zero_pad(A, -1), ValueError, r"pad must be >= 0, got -1"),
    ("zero_pad same", lambda o: o.zero_pad(A, "same"), ValueError,
     r"pad must be an int, a pair or \(\(top, bottom\), \(left, right\)\) here, got 'same'"),
    ("single step shapes", lambda o: o.conv_single_step(np.zeros((3, 3, 2)), np.zeros((3, 3, 3)),
                                                         np.zeros((1, 1, 1))), ValueError,
     r"a_slice_prev and W must have the same shape.*\(3, 3, 2\) and W \(3, 3, 3\)"),
    ("single step b", lambda o: o.conv_single_step(np.zeros((2, 2, 1)), np.zeros((2, 2, 1)),
                                                    np.zeros(2)), ValueError,
     r"b must hold one number.*got shape \(2,\)"),
    ("distribute shape", lambda o: o.distribute_value(1.0, (2, 0)), ValueError,
     r"shape.* must .*positive"),
    ("distribute shape rank", lambda o: o.distribute_value(1.0, 4), ValueError,
     r"shape must be a pair \(n_H, n_W\), got 4"),
    ("mask empty", lambda o: o.create_mask_from_window(np.zeros((0, 0))), ValueError,
     r"x must not be empty"),
]


@pytest.mark.parametrize("ops", [cnnstep, reference], ids=["fast", "reference"])
@pytest.mark.parametrize("call,exc,pattern", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_a_clear_error(ops, call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call(ops)
    func_names = {"conv_forward", "conv_backward", "pool_forward", "pool_backward", "zero_pad",
                  "conv_single_step", "distribute_value", "create_mask_from_window"}
    assert any(str(info.value).startswith(name + ":") for name in func_names), (
        "every message starts with the function's name"
    )
