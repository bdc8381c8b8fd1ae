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
