"""The classic slips, as edits of ``check_fixtures/correct.py`` (a right loop implementation).

Each broken learner file used by the checker tests is ``correct.py`` with one slip applied, so
the slips live here as small text edits instead of as near-copies of a whole file.
"""

from __future__ import annotations

from pathlib import Path

CORRECT = Path(__file__).parent / "check_fixtures" / "correct.py"

_Z_LINE = "                    Z[i, h, w, c] = conv_single_step(a_slice_prev, weights, biases)\n"
_PAD_LINE = "np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))"
_POOL_ADD = "dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += ("

# slip -> (what goes wrong, [(text in correct.py, replacement[, how many occurrences]), ...]);
# an edit changes the first occurrence only unless it says how many.
SLIPS: dict[str, tuple[str, list[tuple]]] = {
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


def broken_source(slip: str) -> str:
    """``correct.py`` with ``slip`` applied; every edit must find its text."""
    description, edits = SLIPS[slip]
    source = CORRECT.read_text()
    for old, new, *count in edits:
        n = count[0] if count else 1
        assert source.count(old) >= n, f"{slip}: {old!r} is not in correct.py {n} time(s)"
        source = source.replace(old, new, n)
    return f"# A learner's file with one classic slip: {description}.\n" + source


def write_broken(slip: str, folder: Path) -> Path:
    """Write the broken learner file ``broken_<slip>.py`` into ``folder``."""
    path = folder / f"broken_{slip}.py"
    path.write_text(broken_source(slip))
    return path
