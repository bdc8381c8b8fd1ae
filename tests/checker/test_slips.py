"""The source patterns behind the hints (:mod:`cnnstep.checker.judging.slips`), on small
functions."""

from __future__ import annotations

import ast

import pytest

from cnnstep.checker.judging.slips import removed_numpy_hint, source_hint, untouched_template


def _fn(source: str):
    return ast.parse(source).body[0], source.split("\n")


@pytest.mark.parametrize("body, untouched", [
    ("    # YOUR CODE STARTS HERE\n\n    # YOUR CODE ENDS HERE\n    return mask\n", True),
    ("    ### START CODE HERE ### (1 line)\n    mask = None\n    ### END CODE HERE ###\n"
     "    return mask\n", True),
    ("    # EMPIEZA TU CÓDIGO AQUÍ\n    pass\n    # TERMINA TU CÓDIGO AQUÍ\n    return mask\n",
     True),
    ("    # YOUR CODE STARTS HERE\n    mask = x == x.max()\n    # YOUR CODE ENDS HERE\n"
     "    return mask\n", False),
    ("    mask = None\n    return mask\n", False),  # no markers: a placeholder, not a template
])
def test_an_untouched_template_has_only_comments_and_placeholders_between_markers(body,
                                                                                  untouched):
    node, lines = _fn("def create_mask_from_window(x):\n" + body)
    assert untouched_template(node, lines) is untouched


def test_removed_numpy_names_get_their_replacement():
    assert "`x.item()`" in removed_numpy_hint("module 'numpy' has no attribute 'asscalar'")
    assert "`np.nan`" in removed_numpy_hint("`np.NaN` was removed in the NumPy 2.0 release.")
    assert removed_numpy_hint("module 'numpy' has no attribute 'banana'") is None


@pytest.mark.parametrize("function, source, words", [
    ("pool_forward", "def f(A_prev, hparameters):\n    f = hparameters['f']\n"
     "    stride = hparameters['stride']\n    vert_start = h * f\n", "not by the window size f"),
    ("conv_forward", "def f(A_prev, W, b, hparameters):\n    pad = hparameters['pad']\n"
     "    vert_start = h * stride\n", "`stride` is used but never set"),
    ("conv_backward", "def f(dZ, cache):\n    stride = hparameters['stride']\n"
     "    pad = hparameters['pad']\n    db = np.empty(b.shape)\n", "must start from zeros"),
    ("conv_forward", "def f(A_prev, W, b, hparameters):\n    stride = hparameters['stride']\n"
     "    pad = hparameters['pad']\n    (m, n_C_prev, n_H_prev, n_W_prev) = A_prev.shape\n",
     "channels-first"),
])
def test_source_patterns(function, source, words):
    node, _ = _fn(source)
    hint = source_hint(function, node, lambda n: f"line {n}")
    assert hint is not None and words in hint, hint


def test_a_correct_looking_function_gets_no_source_hint():
    node, _ = _fn("def f(A_prev, hparameters):\n    f = hparameters['f']\n"
                  "    stride = hparameters['stride']\n    a_prev_pad = A_prev[i, :, :, :]\n"
                  "    vert_start = h * stride\n    horiz_start = w * stride\n")
    assert source_hint("pool_forward", node, lambda n: f"line {n}") is None


# The window's slips, each with words of its hint (a line of the function is enough).
WINDOW_SLIPS = [
    ("conv_forward", "    vert_end = vert_start + stride\n", "it ends f after its corner"),
    ("pool_forward", "    horiz_end = horiz_start + stride\n", "it ends f after its corner"),
    ("conv_forward", "    n_H = int((n_H_prev - f + pad) / stride) + 1\n", "on both sides"),
    ("conv_forward", "    a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end,"
                     " c]\n", "takes one channel of the input"),
    ("conv_backward", "    a_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, :]\n",
     "slices the input before padding"),
    ("conv_forward", "    a_prev = A_prev[i]\n    a_slice_prev = a_prev[vert_start:vert_end, "
                     "horiz_start:horiz_end, :]\n", "slices the input before padding"),
    ("conv_forward", "    A_prev_pad = A_prev\n", "unpadded: pad it first"),
    ("conv_forward", "    a_prev_pad = A_prev[i]\n", "unpadded: pad it first"),
    ("conv_forward", "    Z[i, h, w, c] = conv_single_step(a_slice_prev, W, b)\n",
     "every filter"),
    ("pool_forward", "    for h in range(n_H_prev):\n        pass\n", "`range(n_H)`"),
    ("conv_backward", "    x = W[:, :, :, c] * dZ[i, vert_start, horiz_start, c]\n",
     "`dZ[i, h, w, c]`"),
    ("pool_backward", "    x = mask * dA[i, vert_start, horiz_start, c]\n", "`dA[i, h, w, c]`"),
    ("pool_backward", "    shape = (n_H, n_W)\n", "`(f, f)`"),
]


@pytest.mark.parametrize("function, body, words", WINDOW_SLIPS)
def test_the_windows_slips(function, body, words):
    node, _ = _fn("def f(A_prev, W, b, hparameters):\n    stride = hparameters['stride']\n"
                  "    pad = hparameters['pad']\n    f = hparameters['f']\n" + body)
    hint = source_hint(function, node, lambda n: f"line {n}")
    assert hint is not None and words in hint, hint


@pytest.mark.parametrize("function, body", [
    # Right code, written otherwise than the material: no hint.
    ("conv_forward", "    a_prev = A_prev_pad[i]\n    a_slice_prev = a_prev[vert_start:vert_end,"
                     " horiz_start:horiz_end, 0:n_C_prev]\n"),
    ("conv_forward", "    n_H = (n_H_prev - f + pad * 2) // stride + 1\n"),
    ("conv_forward", "    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[..., c], b[..., c])\n"),
    ("pool_backward", "    da = distribute_value(dA[i, h, w, c], (f, f))\n"),
])
def test_right_code_written_otherwise_gets_no_window_hint(function, body):
    node, _ = _fn("def f(A_prev, W, b, hparameters):\n    stride = hparameters['stride']\n"
                  "    pad = hparameters['pad']\n    f = hparameters['f']\n" + body)
    assert source_hint(function, node, lambda n: f"line {n}") is None
