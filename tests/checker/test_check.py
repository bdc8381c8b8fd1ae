"""`cnnstep check` end to end: learner files run in a child process and judged per function."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from check_slips import SLIPS as SLIP_EDITS
from check_slips import broken_source, write_broken

from cnnstep import reference
from cnnstep.checker import check_file, format_table, to_json
from cnnstep.checker.judging.cases import FUNCTIONS, arguments, cases_for
from cnnstep.cli.main import main
from cnnstep.cli.options import MISSING_FILE

FIXTURES = Path(__file__).parent / "check_fixtures"


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """``broken[slip]``: the path of correct.py with that slip applied (see check_slips.py)."""
    folder = tmp_path_factory.mktemp("broken")
    return {slip: write_broken(slip, folder) for slip in SLIP_EDITS}


def about_the_file(warnings: list[str]) -> list[str]:
    """The warnings about the learner's file, without the one saying that bubblewrap is missing
    on this machine (``--isolation auto`` falls back to process limits and says so)."""
    return [w for w in warnings if not w.startswith("bubblewrap (bwrap) is not available")]


def statuses(outcome) -> dict[str, str]:
    return {name: outcome.results[name]["status"] for name in FUNCTIONS}


def only_wrong(outcome) -> dict[str, str]:
    return {n: s for n, s in statuses(outcome).items() if s != "pass"}


def test_a_correct_loop_implementation_passes_all_eight():
    outcome = check_file(FIXTURES / "correct.py")
    assert only_wrong(outcome) == {}
    # Its `x == max(x)` mask is accepted on ties, with a note about gradients.
    assert "gradient" in outcome.results["create_mask_from_window"]["note"]
    assert "first maximum" in outcome.results["pool_backward"]["note"]
    # The driver code (missing loader, prints, a huge loop) was skipped, not run.
    assert about_the_file(outcome.warnings) == []
    assert outcome.skipped_statements >= 3


# fixture -> (the function(s) that must not pass, with status, and words the hint must contain)
SLIPS = {
    "unpad_pad0": ({"conv_backward": "error"}, "[pad:-pad]"),
    "stride_corners": ({"conv_forward": "fail"}, "h * stride"),
    "activation_inside": ({"conv_forward": "fail"}, "no activation inside"),
    "distribute_sum": ({"distribute_value": "fail", "pool_backward": "fail"}, "n_H + n_W"),
    "assign_not_accumulate": ({"pool_backward": "fail"}, "`+=`, not `=`"),
    "global_variable": ({"zero_pad": "error", "conv_forward": "error", "conv_backward": "error"},
                        "global variable"),
    "np_float": ({"conv_single_step": "error", "conv_forward": "error"}, "np.float"),
    "float_b": ({"conv_single_step": "error", "conv_forward": "error"}, "b.item()"),
    "template_none": ({"create_mask_from_window": "fail", "pool_backward": "error"}, "None"),
    "zero_pad_all_axes": ({"zero_pad": "fail", "conv_forward": "error", "conv_backward": "error"},
                          "pads every axis"),
    "nonsquare_mixup": ({"pool_forward": "fail"}, "height and width are mixed up"),
    "remainder_ceil": ({"conv_forward": "error"}, "rounded down"),
    "bias_every_element": ({"conv_single_step": "fail", "conv_forward": "fail"},
                           "b is added to every element"),
    "channels_first": ({"zero_pad": "fail", "conv_forward": "error", "conv_backward": "error"},
                       "channels-first"),
    "corners_by_f": ({"pool_forward": "fail"}, "not by the window size f"),
    "float_n_H": ({"pool_forward": "error"}, "`n_H = 1 + (n_H_prev - f) / stride` (line 56)"),
    "h_for_w": ({"conv_forward": "fail"}, "`horiz_start = h * stride` (line 41)"),
    "hardcoded_example": ({"conv_forward": "fail"}, "`A_prev_pad[1]` (line 36)"),
    "misnamed_zero_pad": ({"zero_pad": "missing"}, "did you mean `zero_pad`"),
    "np_asscalar": ({"conv_single_step": "error", "conv_forward": "error"}, "`x.item()`"),
    "randn_gradients": ({"conv_backward": "fail"}, "`dW = np.random.randn(*W.shape)`"),
    "stride_ignored": ({"conv_forward": "fail"}, 'never reads `hparameters["stride"]`'),
    "stride_unset": ({"conv_forward": "error"}, '`stride = hparameters["stride"]`'),
    "template_empty": ({"create_mask_from_window": "missing", "pool_backward": "error"},
                       "still the template"),
    "template_empty_conv": ({"conv_forward": "missing"}, "still the template"),
    "whole_channel": ({"pool_forward": "fail"}, "whole channel"),
    "whole_depth": ({"pool_forward": "fail"}, "takes every channel"),
}

# Where a caller fails only through a helper, its hint must say so.
HELPER_BLAME = {
    "distribute_sum": {"pool_backward": "distribute_value"},
    "global_variable": {"conv_forward": "zero_pad", "conv_backward": "zero_pad"},
    "np_float": {"conv_forward": "conv_single_step"},
    "float_b": {"conv_forward": "conv_single_step"},
    "template_none": {"pool_backward": "create_mask_from_window"},
    "zero_pad_all_axes": {"conv_forward": "zero_pad", "conv_backward": "zero_pad"},
    "bias_every_element": {"conv_forward": "conv_single_step"},
    "np_asscalar": {"conv_forward": "conv_single_step"},
    "template_empty": {"pool_backward": "create_mask_from_window"},
}


@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_each_classic_slip_fails_on_the_right_function_with_the_right_hint(slip, broken):
    outcome = check_file(broken[slip])
    wrong, words = SLIPS[slip]
    assert only_wrong(outcome) == wrong
    first = next(name for name in FUNCTIONS if name in wrong)
    result = outcome.results[first]
    assert words in result.get("hint", "") + result["message"], result
    if result["status"] != "missing":
        # Enough to reproduce it: the case, what was expected, what came back.
        assert result["case"]["label"] and result["case"]["code"]
        assert result["expected"] is not None and result["got"] is not None
    for caller, helper in HELPER_BLAME.get(slip, {}).items():
        hint = outcome.results[caller]["hint"]
        assert f"only because it calls your `{helper}`" in hint, hint


def test_a_caller_wrong_on_its_own_names_every_failing_helper_in_good_grammar(tmp_path):
    path = tmp_path / "three.py"
    path.write_text(broken_source("activation_inside", "np_asscalar", "zero_pad_all_axes"))
    hint = check_file(path).results["conv_forward"]["hint"]
    assert "no activation inside" in hint
    assert hint.endswith("it also calls your `conv_single_step` and `zero_pad`, which fail on "
                         "their own"), hint
    path.write_text(broken_source("activation_inside", "np_asscalar"))
    hint = check_file(path).results["conv_forward"]["hint"]
    assert hint.endswith("it also calls your `conv_single_step`, which fails on its own"), hint


def test_wrong_values_report_shape_max_difference_and_first_index(broken):
    result = check_file(broken["stride_corners"]).results["conv_forward"]
    assert result["case"]["label"] == "stride 2"  # the simplest failing case
    assert result["diff"]["part"] == "Z"
    assert result["diff"]["max_abs"] > 0
    assert len(result["diff"]["first_index"]) == 4
    assert result["expected"]["shape"] == result["got"]["shape"] == [2, 3, 3, 2]
    # The reproduction code rebuilds exactly that case.
    namespace = {"np": np, "conv_forward": reference.conv_forward}
    exec(result["case"]["code"], namespace)
    assert namespace["Z"].shape == (2, 3, 3, 2)


def test_errors_point_at_the_learners_line(broken):
    result = check_file(broken["float_b"]).results["conv_single_step"]
    assert result["error"]["type"] == "TypeError"
    assert result["error"]["line"] == "Z = Z + float(b)"
    assert result["error"]["where"].startswith("line ")


def test_an_endless_loop_times_out_there_and_the_rest_are_still_checked(broken):
    start = time.monotonic()
    outcome = check_file(broken["infinite_loop"], timeout=1)
    elapsed = time.monotonic() - start
    assert only_wrong(outcome) == {"conv_backward": "timeout"}
    # One time limit (1 CPU second), not one per function: a bound no busy machine breaks.
    assert elapsed < 60


def test_a_loop_that_swallows_the_alarm_is_killed_and_the_rest_still_checked(tmp_path):
    source = (FIXTURES / "correct.py").read_text().replace(
        "def distribute_value(dz, shape):\n",
        "def distribute_value(dz, shape):\n    while True:\n        try:\n"
        "            while True:\n                pass\n        except BaseException:\n"
        "            pass\n")
    path = tmp_path / "stubborn.py"
    path.write_text(source)
    outcome = check_file(path, timeout=1)
    wrong = only_wrong(outcome)
    # pool_backward calls the endless distribute_value on its average cases, so it cannot
    # finish either.
    assert wrong == {"distribute_value": "timeout", "pool_backward": "timeout"}
    assert "`distribute_value`" in outcome.results["pool_backward"]["hint"]


def test_a_crash_in_one_function_does_not_stop_the_others(tmp_path):
    source = (FIXTURES / "correct.py").read_text().replace(
        "def zero_pad(X, pad):\n", "def zero_pad(X, pad):\n    import os\n    os._exit(3)\n")
    path = tmp_path / "crash.py"
    path.write_text(source)
    outcome = check_file(path, timeout=5)
    result = outcome.results["zero_pad"]
    assert result["status"] == "error" and "crashed" in result["message"]
    # Callers of zero_pad crash the same way; everything else is checked normally.
    assert only_wrong(outcome) == {"zero_pad": "error", "conv_forward": "error",
                                   "conv_backward": "error"}


def test_a_definition_that_hangs_while_loading_is_skipped_with_a_warning(tmp_path):
    source = (FIXTURES / "correct.py").read_text() + (
        # The class body turns the child's alarm off: only the parent can stop it.
        "\n\nclass Stuck:\n    import signal\n    signal.signal(signal.SIGPROF, signal.SIG_IGN)\n"
        "    while True:\n        pass\n")
    path = tmp_path / "stuck.py"
    path.write_text(source)
    outcome = check_file(path, timeout=1)
    assert only_wrong(outcome) == {}
    (warning,) = about_the_file(outcome.warnings)
    assert warning.startswith("line ") and "skipped" in warning


def test_missing_functions_the_old_name_and_failed_imports(tmp_path):
    source = (
        "import numpy as np\nimport not_a_module_xyz as nm\n\n"
        "def convolve_window(a_slice_prev, W, b):\n"
        "    return np.sum(a_slice_prev * W) + b.item()\n\n"
        "def zero_pad(X, pad):\n    return nm.pad(X, pad)\n\n"
        "distribute_value = None\n"
    )
    path = tmp_path / "partial.py"
    path.write_text(source)
    outcome = check_file(path)
    results = outcome.results
    assert results["conv_single_step"]["status"] == "pass"
    assert results["conv_single_step"]["defined_as"] == "convolve_window"
    assert results["conv_forward"]["status"] == "missing"
    assert results["distribute_value"]["status"] == "missing"
    assert "not a function" in results["distribute_value"]["message"]
    assert results["zero_pad"]["status"] == "error"
    assert any("not_a_module_xyz" in w for w in outcome.warnings)


def test_a_notebook_is_checked_like_the_equivalent_python_file():
    notebook = check_file(FIXTURES / "learner_notebook.ipynb")
    script = check_file(FIXTURES / "learner_notebook_equivalent.py")
    assert statuses(notebook) == statuses(script)
    assert only_wrong(notebook) == {"distribute_value": "fail", "pool_backward": "fail"}
    for name in FUNCTIONS:
        a, b = notebook.results[name], script.results[name]
        assert a.get("hint") == b.get("hint")
        assert a.get("message") == b.get("message")
    # The failed `from public_tests import *` is a warning in both; magics and shell lines are
    # not (they are simply skipped).
    assert len(about_the_file(notebook.warnings)) == len(about_the_file(script.warnings)) == 1
    assert "public_tests" in about_the_file(notebook.warnings)[0]


def test_the_checkers_published_cases_are_the_published_list():
    # One source: every published case the checker runs is an entry of ops.published, drawn
    # the same way, and none is missing.
    from cnnstep.ops.published import PUBLISHED_CASES

    ours = [c for f in FUNCTIONS for c in cases_for(f) if c.published]
    assert len(ours) == len(PUBLISHED_CASES)
    for case, published in zip(sorted(ours, key=lambda c: (c.function, repr(c.fixed))),
                               sorted(PUBLISHED_CASES, key=lambda c: (c.function, repr(c.fixed)))):
        assert case.function == published.function
        got, want = arguments(case.function, case.values(reference)), published.inputs(reference)
        assert repr(got) == repr(want)


def test_reference_passes_its_own_battery():
    from cnnstep.checker.judging.compare import compare
    from cnnstep.ops import functional

    for name in FUNCTIONS:
        for case in cases_for(name):
            values = case.values(reference)
            expected = getattr(reference, name)(*arguments(name, values))
            got = getattr(functional, name)(*arguments(name, values))
            verdict = compare(name, got, expected, values, case.tags)
            assert verdict["ok"] and verdict.get("note") is None, (name, case.label)


def test_functions_imported_from_cnnstep_do_not_count(tmp_path):
    path = tmp_path / "ref.py"
    path.write_text("from cnnstep.ops.reference import *\n")
    outcome = check_file(path)
    assert set(statuses(outcome).values()) == {"missing"}


# --- the command line ---------------------------------------------------------------------


def test_cli_exit_codes_and_table(capsys, broken):
    assert main(["check", str(FIXTURES / "correct.py")]) == 0
    out = capsys.readouterr().out
    assert "8 of 8 functions pass." in out
    assert main(["check", str(broken["distribute_sum"])]) == 1
    out = capsys.readouterr().out
    assert "6 of 8 functions pass." in out
    assert "distribute_value          fail" in out
    assert "hint" in out and "try it" in out


def test_cli_json(capsys, broken):
    assert main(["check", "--json", str(broken["unpad_pad0"])]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 8 and data["passed"] == 7
    assert set(data["functions"]) == set(FUNCTIONS)
    entry = data["functions"]["conv_backward"]
    assert entry["status"] == "error"
    assert {"status", "case", "expected", "got", "hint"} <= set(entry)
    assert entry["case"]["inputs"].endswith("stride 2, pad 0")
    assert about_the_file(data["warnings"]) == []


@pytest.mark.parametrize("content, suffix", [(None, ".py"), ("def f(:\n", ".py"),
                                             ("{nope", ".ipynb")])
def test_cli_unreadable_file_is_one_line_and_exit_2(tmp_path, capsys, content, suffix):
    path = tmp_path / f"learner{suffix}"
    if content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnstep: error:") and err.count("\n") == 1


def test_cli_missing_file_has_the_wording_of_every_command(tmp_path, capsys):
    missing = tmp_path / "missing.py"
    for lang, wording in (("en", MISSING_FILE), ("es", "{path}: no existe el archivo")):
        assert main(["check", str(missing), "--lang", lang]) == 2
        assert capsys.readouterr().err == f"cnnstep: error: {wording.format(path=missing)}\n"


def test_cli_rejects_a_bad_timeout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--timeout", "0", str(FIXTURES / "correct.py")])
    assert exit_info.value.code == 2


def test_format_table_and_json_agree(broken):
    outcome = check_file(broken["nonsquare_mixup"])
    data = to_json(outcome)
    table = format_table(outcome)
    assert data["passed"] == 7
    assert "pool_forward              fail" in table
    assert data["functions"]["pool_forward"]["hint"].split(":")[0] in table.replace("\n", " ")


# More slips, made on the fly from the correct file: (old, new, function, words in the hint).
MORE_SLIPS = {
    "conv_backward_assign": (
        "da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += (",
        "da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] = (",
        "conv_backward", "`+=`, not `=`"),
    "conv_backward_dw_assign": (
        "dW[:, :, :, c] += a_slice", "dW[:, :, :, c] = a_slice", "conv_backward", "dW must add"),
    "forward_returns_z_only": (
        "    cache = (A_prev, W, b, hparameters)\n    return Z, cache",
        "    return Z", "conv_forward", "return Z, cache"),
    "pool_modes_swapped": (
        'if mode == "max":\n                        A[i, h, w, c] = np.max',
        'if mode == "average":\n                        A[i, h, w, c] = np.max',
        "pool_forward", "computes the"),
    "mask_of_minimum": ("mask = x == np.max(x)", "mask = x == np.min(x)",
                        "create_mask_from_window", "minimum"),
    "no_bias": ("Z = Z + b.item()", "Z = Z", "conv_single_step", "bias b is not added"),
}


@pytest.mark.parametrize("slip", sorted(MORE_SLIPS))
def test_more_slips_get_their_hint(tmp_path, slip):
    old, new, function, words = MORE_SLIPS[slip]
    source = (FIXTURES / "correct.py").read_text()
    assert source.count(old) == 1
    path = tmp_path / f"{slip}.py"
    path.write_text(source.replace(old, new))
    result = check_file(path).results[function]
    assert result["status"] in ("fail", "error")
    assert words in result["hint"], result["hint"]


def test_a_function_in_a_notebook_cell_that_does_not_parse_is_an_error_naming_the_cell(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell("import numpy as np"),
             new_code_cell("def distribute_value(dz, shape):\n    return np.ones(shape) * dz /\n")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells), str(path))
    outcome = check_file(path)
    result = outcome.results["distribute_value"]
    assert result["status"] == "error"
    assert "cell 2, line 2" in result["message"]
    assert "cell 2" in result["hint"] and "syntax error" in result["hint"]
    assert outcome.results["zero_pad"]["status"] == "missing"


def test_the_child_has_a_memory_limit(tmp_path):
    # np.empty reserves address space without touching it: harmless if the limit were missing.
    path = tmp_path / "greedy.py"
    path.write_text("import numpy as np\n\ndef zero_pad(X, pad):\n"
                    "    return np.empty((10**6, 10**3))\n")
    result = check_file(path, memory_limit=2 * 1024**3).results["zero_pad"]
    assert result["status"] == "error"
    assert result["error"]["type"] == "MemoryError"
    assert "memory" in result["hint"]


def test_a_caller_that_hangs_in_a_hanging_helper_is_told_so(tmp_path):
    source = (FIXTURES / "correct.py").read_text().replace(
        "def distribute_value(dz, shape):\n", "def distribute_value(dz, shape):\n"
        "    while True:\n        pass\n")
    path = tmp_path / "hangs.py"
    path.write_text(source)
    outcome = check_file(path, timeout=1)
    assert only_wrong(outcome) == {"distribute_value": "timeout", "pool_backward": "timeout"}
    assert "only because it calls your `distribute_value`" in \
        outcome.results["pool_backward"]["hint"]


def test_a_timeout_names_the_case_that_hangs(tmp_path):
    source = (FIXTURES / "correct.py").read_text().replace(
        "    X_pad = np.pad(", "    while pad == 0:\n        pass\n    X_pad = np.pad(")
    path = tmp_path / "hang_at_pad0.py"
    path.write_text(source)
    outcome = check_file(path, timeout=1)
    result = outcome.results["zero_pad"]
    assert result["status"] == "timeout"
    assert result["case"]["label"] == "pad 0"
