"""``check_functions`` checks the code that runs, every outcome prints, and the nbgrader cell
keeps within nbgrader's 30-second limit (issue 25 point 6, issue 24's nbgrader items)."""

from __future__ import annotations

import linecache
import time

import pytest
from check_slips import CORRECT

from cnnstep.checker import check_functions

SOURCE = CORRECT.read_text().split("# Driver code")[0]


def cell(source: str, name: str) -> dict:
    filename = f"<ipython-input-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


WRONG = "def zero_pad(X, pad):\n    return X\n"


def test_a_function_whose_source_lies_is_an_error_not_a_pass():
    right = cell(SOURCE, "right")["zero_pad"]
    attacks = {}
    wrapped = cell(WRONG, "w1")
    wrapped["zero_pad"].__wrapped__ = right  # inspect.getsource would follow it
    attacks["__wrapped__"] = wrapped
    moved = cell(SOURCE + "\n" + WRONG.replace("zero_pad", "zero_pad_wrong"), "w2")
    code = moved["zero_pad_wrong"].__code__
    moved["zero_pad"].__code__ = code.replace(co_name="zero_pad",
                                              co_firstlineno=right.__code__.co_firstlineno)
    attacks["co_firstlineno"] = moved
    defaults = cell("def zero_pad(X, pad=1):\n    return X if pad == 0 else X[:0]\n", "w3")
    defaults["zero_pad"].__defaults__ = (0,)
    attacks["__defaults__"] = defaults
    fake = {"__name__": "__main__"}
    exec(compile(WRONG, "<ipython-input-right>", "exec"), fake)  # a right cell's file name
    attacks["co_filename"] = fake
    for what, namespace in attacks.items():
        result = check_functions(namespace, functions=["zero_pad"]).results["zero_pad"]
        assert result["status"] != "pass", what


def test_a_global_with_a_lying_repr_is_not_written_back():
    class Sneaky(int):
        def __repr__(self) -> str:
            return "1"

    namespace = cell("def zero_pad(X, pad):\n    import numpy as np\n    return np.pad(X, "
                     "((0, 0), (P, P), (P, P), (0, 0)))\n", "g")
    namespace["P"] = Sneaky(0)
    result = check_functions(namespace, functions=["zero_pad"]).results["zero_pad"]
    assert result["status"] != "pass"


def test_an_object_array_prints_and_asserts_without_raising():
    namespace = cell("import numpy as np\ndef zero_pad(X, pad):\n    return np.array([1, 'a'],"
                     " dtype=object)\n", "obj")
    outcome = check_functions(namespace, functions=["zero_pad"])
    assert outcome.statuses == {"zero_pad": "fail"}
    assert "zero_pad" in str(outcome) and outcome._repr_html_()
    with pytest.raises(AssertionError, match="zero_pad"):
        outcome.assert_pass("zero_pad")


def test_partial_credit_is_what_nbgrader_reads():
    outcome = check_functions(cell(SOURCE, "pc"), functions=["zero_pad", "distribute_value"])
    assert outcome.partial_credit({"zero_pad": 2}) == 3
    wrong = check_functions(cell(WRONG, "pc0"), functions=["zero_pad"])
    with pytest.raises(AssertionError):
        wrong.partial_credit()  # nbgrader would give full credit for an output of 0


def test_the_all_eight_cell_ends_within_nbgraders_limit_with_three_hanging_functions():
    hang = "    while True:\n        pass\n"
    source = SOURCE
    for name in ("zero_pad", "conv_single_step", "distribute_value"):
        head = next(line for line in source.splitlines() if line.startswith(f"def {name}("))
        source = source.replace(head + "\n", head + "\n" + hang, 1)
    start = time.monotonic()
    outcome = check_functions(cell(source, "hangs"))
    elapsed = time.monotonic() - start
    # The default total is 20 wall-clock seconds, which is the point: nbgrader stops a cell
    # after 30 s whatever the load.
    assert elapsed < 30
    assert {outcome.statuses[n] for n in ("zero_pad", "conv_single_step",
                                          "distribute_value")} == {"timeout"}
