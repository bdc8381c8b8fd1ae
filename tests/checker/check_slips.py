"""The classic slips, as edits of ``check_fixtures/correct.py`` (a right loop implementation).

Each broken learner file used by the checker tests is ``correct.py`` with one slip applied, so
the slips live here as small text edits instead of as near-copies of a whole file.
"""

from __future__ import annotations

from pathlib import Path

CORRECT = Path(__file__).parent / "check_fixtures" / "correct.py"

_Z_LINE = "                    Z[i, h, w, c] = conv_single_step(a_slice_prev, weights, biases)\n"
_PAD_LINE = "np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))"


def _lines(*rows: str) -> str:
    """Source lines joined by newlines (no newline after the last)."""
    return "\n".join(rows)


# conv_forward's first lines (the first function to start so), and the newer course template
# of it; the old body stays behind as an unused function.
_SHAPES = _lines("    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape",
                 "    (f, f, n_C_prev, n_C) = W.shape", "    stride")
_CONV_TEMPLATE = _lines(
    "    # Retrieve dimensions from A_prev's shape (approx. 1 line)",
    "    # (m, n_H_prev, n_W_prev, n_C_prev) = None",
    "    # YOUR CODE STARTS HERE", "", "    # YOUR CODE ENDS HERE",
    "    assert Z.shape == (m, n_H, n_W, n_C)", "    cache = (A_prev, W, b, hparameters)",
    "    return Z, cache", "", "", "def _rest_of_the_old_body(A_prev, W, b, hparameters):",
    _SHAPES)
_HYPER = _lines('    stride = hparameters["stride"]', '    pad = hparameters["pad"]',
                "    n_H = int((n_H_prev - f + 2 * pad) / stride) + 1",
                "    n_W = int((n_W_prev - f + 2 * pad) / stride) + 1", "")
_POOL_CORNERS = _lines("for h in range(n_H):", "            vert_start = h * stride",
                       "            vert_end = vert_start + f", "            for w in range(n_W):",
                       "                horiz_start = w * stride",
                       "                horiz_end = horiz_start + f",
                       "                for c in range(n_C):", "                    a_prev_slice")
_MASK = _lines("def create_mask_from_window(x):", "    mask = x == np.max(x)", "    return mask",
               "")
_MASK_TEMPLATE = _lines(
    "def create_mask_from_window(x):", '    """Creates a mask from an input matrix x."""',
    "    # (approx. 1 line)", "    # mask = None", "    # YOUR CODE STARTS HERE", "    ", "",
    "    # YOUR CODE ENDS HERE", "    return mask", "", "",
    "mask = create_mask_from_window(np.random.randn(2, 3))", "")
_POOL_ADD = "dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += ("

# slip -> (what goes wrong, [(text in correct.py, replacement[, how many occurrences]), ...]);
# an edit changes the first occurrence only unless it says how many.
SLIPS: dict[str, tuple[str, list[tuple]]] = {
    "bias_every_element": (
        "conv_single_step adds b to every element before the sum (the 2017 template)",
        [("s = np.multiply(a_slice_prev, W)", "s = np.multiply(a_slice_prev, W) + b"),
         ("Z = Z + b.item()", "Z = float(Z)")],
    ),
    "channels_first": (
        "zero_pad and conv_forward treat the arrays as channels-first (m, n_C, n_H, n_W)",
        [(_PAD_LINE, "np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad))"),
         (_SHAPES, _SHAPES.replace("n_H_prev, n_W_prev, n_C_prev",
                                   "n_C_prev, n_H_prev, n_W_prev"))],
    ),
    "corners_by_f": (
        "pool_forward moves the window corners by f instead of by the stride",
        [(_POOL_CORNERS, _POOL_CORNERS.replace("* stride", "* f"))],
    ),
    "float_n_H": (
        "pool_forward divides with / so n_H is a float and np.zeros raises",
        [("n_H = int(1 + (n_H_prev - f) / stride)", "n_H = 1 + (n_H_prev - f) / stride")],
    ),
    "h_for_w": (
        "conv_forward computes the horizontal corner from h",
        [("                horiz_start = w * stride\n",
          "                horiz_start = h * stride\n")],
    ),
    "hardcoded_example": (
        "conv_forward always takes example 1 of the padded batch",
        [("a_prev_pad = A_prev_pad[i]", "a_prev_pad = A_prev_pad[1]")],
    ),
    "misnamed_zero_pad": (
        "zero_pad is defined as zeros_pad (and called by that name)",
        [("def zero_pad(X, pad):", "def zeros_pad(X, pad):"),
         ("A_prev_pad = zero_pad(", "A_prev_pad = zeros_pad(", 2),
         ("dA_prev_pad = zero_pad(", "dA_prev_pad = zeros_pad(")],
    ),
    "np_asscalar": (
        "conv_single_step uses np.asscalar, removed from NumPy",
        [("Z = Z + b.item()", "Z = Z + np.asscalar(b)")],
    ),
    "randn_gradients": (
        "conv_backward starts dW from random numbers instead of zeros",
        [("dW = np.zeros(W.shape)", "dW = np.random.randn(*W.shape)")],
    ),
    "stride_ignored": (
        "conv_forward never reads the stride",
        [(_HYPER, _lines('    pad = hparameters["pad"]', "    n_H = n_H_prev - f + 2 * pad + 1",
                         "    n_W = n_W_prev - f + 2 * pad + 1", "")),
         ("            vert_start = h * stride\n", "            vert_start = h\n"),
         ("                horiz_start = w * stride\n", "                horiz_start = w\n")],
    ),
    "stride_unset": (
        "conv_forward uses stride without reading it from hparameters",
        [(_HYPER, _HYPER.replace('    stride = hparameters["stride"]\n', ""))],
    ),
    "template_empty": (
        "create_mask_from_window is still the newer template, and a notebook cell set `mask`",
        [(_MASK, _MASK_TEMPLATE)],
    ),
    "template_empty_conv": (
        "conv_forward is still the newer template (no global to fall back on)",
        [(_SHAPES, _CONV_TEMPLATE)],
    ),
    "whole_channel": (
        "pool_forward slices the whole channel instead of the window",
        [("a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]",
          "a_prev_slice = A_prev[i, :, :, c]")],
    ),
    "whole_depth": (
        "pool_forward slices every channel instead of channel c",
        [("a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]",
          "a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, :]")],
    ),
    "activation_inside": (
        "conv_forward applies a ReLU before returning",
        [(_Z_LINE, _Z_LINE + "    Z = np.maximum(Z, 0)\n")],
    ),
    "assign_not_accumulate": (
        "pool_backward assigns (=) where it must add (+=)",
        [(_POOL_ADD, _POOL_ADD.replace("+=", "="), 2)],  # both modes
    ),
    "distribute_sum": (
        "distribute_value divides by n_H + n_W",
        [("average = dz / (n_H * n_W)", "average = dz / (n_H + n_W)")],
    ),
    "float_b": (
        "conv_single_step calls float() on the (1, 1, 1) bias",
        [("Z = Z + b.item()", "Z = Z + float(b)")],
    ),
    "global_variable": (
        "zero_pad pads the notebook's global x instead of its parameter X",
        [("np.random.seed(1)\n", "np.random.seed(1)\nx = np.random.randn(4, 3, 3, 2)\n"),
         (_PAD_LINE, _PAD_LINE.replace("(X,", "(x,"))],
    ),
    "infinite_loop": (
        "conv_backward never returns",
        [("    (m, n_H, n_W, n_C) = dZ.shape\n",
          "    (m, n_H, n_W, n_C) = dZ.shape\n    while True:\n        pass\n")],
    ),
    "nonsquare_mixup": (
        "pool_forward computes n_W from the height",
        [("n_W = int(1 + (n_W_prev - f) / stride)", "n_W = int(1 + (n_H_prev - f) / stride)")],
    ),
    "np_float": (
        "conv_single_step uses np.float, removed from NumPy",
        [("Z = Z + b.item()", "Z = Z + np.float(b)")],
    ),
    "remainder_ceil": (
        "conv_forward rounds the output size up",
        [("n_H = int((n_H_prev - f + 2 * pad) / stride) + 1",
          "n_H = int(np.ceil((n_H_prev - f + 2 * pad) / stride)) + 1"),
         ("n_W = int((n_W_prev - f + 2 * pad) / stride) + 1",
          "n_W = int(np.ceil((n_W_prev - f + 2 * pad) / stride)) + 1")],
    ),
    "stride_corners": (
        "conv_forward leaves the stride out of the window corners",
        [("            vert_start = h * stride\n", "            vert_start = h\n"),
         ("                horiz_start = w * stride\n", "                horiz_start = w\n")],
    ),
    "template_none": (
        "create_mask_from_window still has the template's None",
        [("mask = x == np.max(x)", "mask = None")],
    ),
    "unpad_pad0": (
        "conv_backward un-pads with [pad:-pad] (empty at pad 0)",
        [("da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]",
          "da_prev_pad[pad:-pad, pad:-pad, :]")],
    ),
    "zero_pad_all_axes": (
        "zero_pad pads the example and channel axes too",
        [(_PAD_LINE, "np.pad(X, ((pad, pad), (pad, pad), (pad, pad), (pad, pad))")],
    ),
}


def broken_source(*slips: str) -> str:
    """``correct.py`` with each of ``slips`` applied in turn; every edit must find its text."""
    source = CORRECT.read_text()
    for slip in slips:
        for old, new, *count in SLIPS[slip][1]:
            n = count[0] if count else 1
            assert source.count(old) >= n, f"{slip}: {old!r} is not in the file {n} time(s)"
            source = source.replace(old, new, n)
    described = "; ".join(SLIPS[slip][0] for slip in slips)
    return f"# A learner's file with classic slips: {described}.\n" + source


def write_broken(slip: str, folder: Path) -> Path:
    """Write the broken learner file ``broken_<slip>.py`` into ``folder``."""
    path = folder / f"broken_{slip}.py"
    path.write_text(broken_source(slip))
    return path
