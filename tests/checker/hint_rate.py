"""How many realistic slips get the right hint: ``python tests/checker/hint_rate.py``.

Each slip is an edit of ``check_fixtures/correct.py`` (see ``check_slips.py``) that a learner of
the material makes, with the function that must not pass and words that a right hint contains
(any one of the alternatives). The catalogue of the tests (``check_slips.SLIPS`` and
``test_check.MORE_SLIPS``) is measured too when ``--all`` is given. Prints one row per slip and
the rate; exits 1 below 95 %.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from check_slips import CORRECT  # noqa: E402

# slip -> (edits [(old, new[, count])], function, words: any one of them in the hint)
FURTHER: dict[str, tuple[list[tuple], str, tuple[str, ...]]] = {
    "pad_one_side": ([("(pad, pad), (pad, pad), (0, 0))", "(pad, 0), (pad, 0), (0, 0))")],
                     "zero_pad", ("one side",)),
    "pad_with_ones": ([("constant_values=0", "constant_values=1")], "zero_pad",
                      ("not all zeros",)),
    "pad_edge": ([('mode="constant", constant_values=0', 'mode="edge"')], "zero_pad",
                 ("not all zeros",)),
    "pad_scalar": ([("np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))", "np.pad(X, pad")],
                   "zero_pad", ("pads every axis",)),
    "pad_nothing": ([("    X_pad = np.pad(", "    X_pad = X\n    _unused = np.pad(")],
                    "zero_pad", ("nothing is padded",)),
    "single_step_plus_b": ([("Z = Z + b.item()", "Z = Z + b")], "conv_single_step",
                           ("returns an array", "plain number")),
    "single_step_mean": ([("Z = np.sum(s)", "Z = np.mean(s)")], "conv_single_step",
                         ("np.mean", "mean", "sum")),
    "single_step_minus_b": ([("Z = Z + b.item()", "Z = Z - b.item()")], "conv_single_step",
                            ("subtracted",)),
    "single_step_no_multiply": ([("s = np.multiply(a_slice_prev, W)", "s = a_slice_prev")],
                                "conv_single_step", ("W", "weights", "multipl")),
    "forward_pad_once": ([("n_H = int((n_H_prev - f + 2 * pad) / stride) + 1",
                           "n_H = int((n_H_prev - f + pad) / stride) + 1"),
                          ("n_W = int((n_W_prev - f + 2 * pad) / stride) + 1",
                           "n_W = int((n_W_prev - f + pad) / stride) + 1")],
                         "conv_forward", ("2 * pad", "2*pad", "output size")),
    "forward_end_by_stride": ([("            vert_end = vert_start + f\n",
                                "            vert_end = vert_start + stride\n", 1)],
                              "conv_forward", ("vert_start + f", "window size f", "f x f")),
    "forward_no_padding": ([("A_prev_pad = zero_pad(A_prev, pad)\n    for i in range(m):\n"
                             "        a_prev_pad = A_prev_pad[i]\n        for h in range(n_H):\n"
                             "            vert_start = h * stride\n",
                             "A_prev_pad = A_prev\n    for i in range(m):\n"
                             "        a_prev_pad = A_prev_pad[i]\n        for h in range(n_H):\n"
                             "            vert_start = h * stride\n")],
                           "conv_forward", ("zero_pad", "padded")),
    "forward_one_channel_slice": ([("a_slice_prev = a_prev_pad[vert_start:vert_end, "
                                    "horiz_start:horiz_end, :]",
                                    "a_slice_prev = a_prev_pad[vert_start:vert_end, "
                                    "horiz_start:horiz_end, c]")],
                                  "conv_forward", ("every channel", "all channels", "`:`")),
    "forward_whole_w": ([("Z[i, h, w, c] = conv_single_step(a_slice_prev, weights, biases)",
                          "Z[i, h, w, c] = conv_single_step(a_slice_prev, W, b)")],
                        "conv_forward", ("W[:, :, :, c]", "channel c")),
    "forward_loops_input_size": ([("        for h in range(n_H):\n            vert_start = h * "
                                   "stride\n            vert_end = vert_start + f\n"
                                   "            for w in range(n_W):\n                horiz_start"
                                   " = w * stride\n                horiz_end = horiz_start + f\n"
                                   "                for c in range(n_C):\n                    "
                                   "a_slice_prev",
                                   "        for h in range(n_H_prev):\n            vert_start = "
                                   "h * stride\n            vert_end = vert_start + f\n"
                                   "            for w in range(n_W_prev):\n                "
                                   "horiz_start = w * stride\n                horiz_end = "
                                   "horiz_start + f\n                for c in range(n_C):\n"
                                   "                    a_slice_prev")],
                                 "conv_forward", ("n_H_prev", "range(n_H)")),
    "forward_unpadded_example": ([("a_prev_pad = A_prev_pad[i]\n        for h in range(n_H):\n"
                                   "            vert_start",
                                   "a_prev_pad = A_prev[i]\n        for h in range(n_H):\n"
                                   "            vert_start")],
                                 "conv_forward", ("`a_prev_pad = A_prev[i]`",)),
    "forward_cache_short": ([("cache = (A_prev, W, b, hparameters)", "cache = (A_prev, W, b)")],
                            "conv_forward", ("cache",)),
    "pool_average_sum": ([("A[i, h, w, c] = np.mean(a_prev_slice)",
                           "A[i, h, w, c] = np.sum(a_prev_slice)")],
                         "pool_forward", ("sum", "mean", "average")),
    "pool_end_by_stride": ([("            vert_end = vert_start + f\n"
                             "            for w in range(n_W):\n"
                             "                horiz_start = w * stride\n                horiz_end ="
                             " horiz_start + f\n                for c in range(n_C):\n"
                             "                    a_prev_slice",
                             "            vert_end = vert_start + stride\n            for w in "
                             "range(n_W):\n                horiz_start = w * stride\n"
                             "                horiz_end = horiz_start + stride\n                "
                             "for c in range(n_C):\n                    a_prev_slice")],
                           "pool_forward", ("vert_start + f", "window size f", "f x f")),
    "pool_cache_short": ([("cache = (A_prev, hparameters)", "cache = (A_prev,)")],
                         "pool_forward", ("cache",)),
    "pool_ceil": ([("n_H = int(1 + (n_H_prev - f) / stride)",
                    "n_H = int(np.ceil(1 + (n_H_prev - f) / stride))"),
                   ("n_W = int(1 + (n_W_prev - f) / stride)",
                    "n_W = int(np.ceil(1 + (n_W_prev - f) / stride))")],
                  "pool_forward", ("rounded down",)),
    "backward_db_assign": ([("db[:, :, :, c] += dZ[i, h, w, c]",
                             "db[:, :, :, c] = dZ[i, h, w, c]")],
                           "conv_backward", ("db",)),
    "backward_dw_whole_input": ([("dW[:, :, :, c] += a_slice * dZ[i, h, w, c]",
                                  "dW[:, :, :, c] += W[:, :, :, c] * dZ[i, h, w, c]")],
                                "conv_backward", ("dW",)),
    "backward_no_stride": ([("                    vert_start = h * stride\n                    "
                             "vert_end = vert_start + f\n                    horiz_start = w * "
                             "stride\n                    horiz_end = horiz_start + f\n"
                             "                    a_slice = a_prev_pad",
                             "                    vert_start = h\n                    "
                             "vert_end = vert_start + f\n                    horiz_start = w\n"
                             "                    horiz_end = horiz_start + f\n"
                             "                    a_slice = a_prev_pad")],
                           "conv_backward", ("stride",)),
    "backward_unpadded_slice": ([("a_slice = a_prev_pad[vert_start:vert_end, "
                                  "horiz_start:horiz_end, :]",
                                  "a_slice = A_prev[i, vert_start:vert_end, "
                                  "horiz_start:horiz_end, :]")],
                                "conv_backward", ("padded",)),
    "backward_dz_sum": ([("* dZ[i, h, w, c]\n                    )", "* dZ[i, h, w, :].sum()\n"
                          "                    )")],
                        "conv_backward", ("dZ[i, h, w, c]", "channel")),
    "mask_greater": ([("mask = x == np.max(x)", "mask = x > np.max(x)")],
                     "create_mask_from_window", ("maximum", "max")),
    "mask_argmax": ([("mask = x == np.max(x)", "mask = np.argmax(x)")],
                    "create_mask_from_window", ("not an index",)),
    "mask_ones": ([("mask = x == np.max(x)", "mask = np.ones_like(x)")],
                  "create_mask_from_window", ("maximum", "max")),
    "distribute_precedence": ([("average = dz / (n_H * n_W)", "average = dz / n_H * n_W")],
                              "distribute_value", ("n_H * n_W", "parenthes")),
    "distribute_not_divided": ([("average = dz / (n_H * n_W)", "average = dz")],
                               "distribute_value", ("not divided",)),
    "distribute_inverted": ([("average = dz / (n_H * n_W)", "average = (n_H * n_W) / dz")],
                            "distribute_value", ("dz / (n_H * n_W)",)),
    "distribute_scalar": ([("a = np.ones(shape) * average", "a = average")],
                          "distribute_value", ("returns a number",)),
    "pool_backward_shape_output": ([("shape = (f, f)", "shape = (n_H, n_W)")],
                                   "pool_backward", ("(f, f)", "window")),
    "pool_backward_no_stride": ([("                    vert_start = h * stride\n"
                                  "                    vert_end = vert_start + f\n"
                                  "                    horiz_start = w * stride\n"
                                  "                    horiz_end = horiz_start + f\n"
                                  "                    if mode",
                                  "                    vert_start = h\n"
                                  "                    vert_end = vert_start + f\n"
                                  "                    horiz_start = w\n"
                                  "                    horiz_end = horiz_start + f\n"
                                  "                    if mode")],
                                "pool_backward", ("stride",)),
    "pool_backward_whole_depth": ([("a_prev_slice = a_prev[vert_start:vert_end, "
                                    "horiz_start:horiz_end, c]",
                                    "a_prev_slice = a_prev[vert_start:vert_end, "
                                    "horiz_start:horiz_end, :]")],
                                  "pool_backward", ("every channel",)),
    "pool_backward_da_at_corner": ([("mask * dA[i, h, w, c]",
                                     "mask * dA[i, vert_start, horiz_start, c]")],
                                   "pool_backward", ("dA[i, h, w, c]",)),
    "backward_dz_at_corner": ([("W[:, :, :, c] * dZ[i, h, w, c]",
                                "W[:, :, :, c] * dZ[i, vert_start, horiz_start, c]")],
                              "conv_backward", ("dZ[i, h, w, c]",)),
    "pool_backward_modes_swapped": ([('if mode == "max":\n                        a_prev_slice',
                                      'if mode == "average":\n                        '
                                      'a_prev_slice'),
                                     ('elif mode == "average":\n                        da =',
                                      'elif mode == "max":\n                        da =')],
                                    "pool_backward", ("computes",)),
}


def source(edits: list[tuple]) -> str:
    text = CORRECT.read_text()
    for old, new, *count in edits:
        n = count[0] if count else 1
        assert text.count(old) >= n, old
        text = text.replace(old, new, n)
    return text


def main(argv: list[str]) -> int:
    from cnnstep.checker import check_file

    slips = dict(FURTHER)
    if "--all" in argv:
        from check_slips import SLIPS
        from test_check import MORE_SLIPS
        from test_check import SLIPS as EXPECTED

        for name, (_about, edits) in SLIPS.items():
            if name not in EXPECTED:  # a slip that times out: its verdict is the point
                continue
            wrong, words = EXPECTED[name]
            slips[name] = (edits, next(iter(wrong)), (words,))
        for name, (old, new, function, words) in MORE_SLIPS.items():
            slips[name] = ([(old, new)], function, (words,))
    only = [a for a in argv if not a.startswith("-")]
    right = 0
    with tempfile.TemporaryDirectory() as folder:
        for name, (edits, function, words) in sorted(slips.items()):
            if only and name not in only:
                continue
            path = Path(folder) / f"{name}.py"
            path.write_text(source(edits))
            result = check_file(path, timeout=5).results[function]
            # The hint must say it (a missing function's message is its hint).
            text = result.get("hint", "") if result["status"] != "missing" else \
                result.get("message", "")
            ok = result["status"] != "pass" and any(w in text for w in words)
            right += ok
            print(f"{'ok  ' if ok else 'MISS'} {name:32} {result['status']:8} "
                  f"{result.get('hint', '')[:150]}", flush=True)
            if not ok and "-v" in argv:
                print("     ", result.get("message", "")[:400])
    total = len(only) or len(slips)
    print(f"{right} of {total} slips get the right hint ({100 * right / total:.0f} %)")
    return 0 if right >= 0.95 * total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
