"""``cnnstep.checker.check_functions``: the in-notebook API for nbgrader and Otter-Grader."""

from __future__ import annotations

import linecache
import math

import numpy as np
import pytest
from check_slips import CORRECT, broken_source

from cnnstep.checker import FUNCTIONS, check_functions

DRIVER = "# Driver code"


def notebook(source: str, name: str) -> dict:
    """Run ``source`` as a notebook cell would: its code registered with linecache (as IPython
    does), so that ``inspect.getsource`` finds it. Returns the cell's globals."""
    filename = f"<ipython-input-{name}>"
    source = source.split(DRIVER)[0]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def correct():
    return notebook(CORRECT.read_text(), "correct")


def test_a_correct_notebook_passes_every_function_and_scores(correct, capfd):
    outcome = check_functions(correct)
    assert outcome.statuses == {name: "pass" for name in FUNCTIONS}
    assert outcome.score() == 8.0
    assert outcome.score({"conv_backward": 3, "pool_backward": 2.5}) == 11.5
    for name in FUNCTIONS:
        outcome.assert_pass(name)  # nothing raised
    assert "8 of 8 functions pass" in outcome.text() and str(outcome) == outcome.text()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # nbgrader scores a cell with stderr output as 0


def test_a_slip_fails_with_its_hint_in_the_assertion(capfd):
    namespace = notebook(broken_source("distribute_sum"), "slip")
    outcome = check_functions(namespace)
    assert outcome.statuses["distribute_value"] == "fail"
    assert outcome.statuses["pool_backward"] == "fail"
    assert outcome.score() == 6.0
    assert outcome.score({"distribute_value": 2}) == 6.0
    with pytest.raises(AssertionError) as failed:
        outcome.assert_pass("distribute_value")
    message = str(failed.value)
    assert message.startswith("distribute_value: fail")
    assert "divide by the number of cells" in message and "try it" in message
    outcome.assert_pass("zero_pad")
    assert capfd.readouterr().err == ""


def test_a_subset_and_the_list_form_carry_the_helpers_they_call(correct):
    outcome = check_functions([correct["conv_forward"]], functions=["conv_forward"])
    assert outcome.statuses == {"conv_forward": "pass"}  # zero_pad and conv_single_step came too
    assert outcome.score() == 1.0
    assert "1 of 1 functions passes" in outcome.text()
    with pytest.raises(ValueError, match="name: expected one of the checked functions"):
        outcome.assert_pass("zero_pad")
    with pytest.raises(ValueError, match="points: 'zero_pad' is not one of the checked"):
        outcome.score({"zero_pad": 1})


def test_a_helper_of_the_learners_own_and_a_constant_travel_with_the_function():
    source = (
        "import numpy as np\n"
        "from numpy import maximum as biggest\n"
        "TWO = 2\n"
        "def half_sum(shape):\n"
        "    return shape[0] * shape[1] * TWO / TWO\n"
        "def distribute_value(dz, shape):\n"
        "    return np.ones(shape) * dz / half_sum(shape) + 0 * biggest(0, 0)\n"
    )
    outcome = check_functions(notebook(source, "helper"), functions=["distribute_value"])
    assert outcome.statuses == {"distribute_value": "pass"}, outcome.text()


def test_functions_without_source_are_errors_not_crashes(correct):
    namespace = dict(correct)
    exec("def zero_pad(X, pad):\n    return X\n", namespace)  # no source anywhere
    namespace["distribute_value"] = lambda dz, shape: np.ones(shape) * dz / math.prod(shape)
    namespace["create_mask_from_window"] = np.max  # not a Python function at all
    outcome = check_functions(namespace)
    assert outcome.statuses["zero_pad"] == "error"
    assert "source cannot be found" in outcome.results["zero_pad"]["message"]
    assert outcome.statuses["distribute_value"] == "error"
    assert "not one `def` statement" in outcome.results["distribute_value"]["message"]
    assert outcome.statuses["create_mask_from_window"] == "error"
    assert outcome.statuses["conv_single_step"] == "pass"
    assert check_functions({}).statuses == {name: "missing" for name in FUNCTIONS}


def test_the_report_is_html_escaped_and_speaks_spanish():
    source = "def zero_pad(X, pad):\n    raise ValueError('<script>alert(1)</script>')\n"
    outcome = check_functions(notebook(source, "xss"), functions=["zero_pad"], lang="es")
    page = outcome._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "función" in page and "error" in page
    assert "0 de 1 funciones son correctas" in outcome.text()


def test_bad_arguments_name_themselves(correct):
    with pytest.raises(ValueError, match="functions: expected names among"):
        check_functions(correct, functions=["conv"])
    with pytest.raises(ValueError, match="timeout"):
        check_functions(correct, timeout=0)
    with pytest.raises(TypeError, match="namespace: expected a dict"):
        check_functions(42)
    with pytest.raises(TypeError, match="namespace: expected functions in the list"):
        check_functions([1, 2])
    with pytest.raises(ValueError, match="lang"):
        check_functions(correct, lang="de")


def test_nothing_reaches_stderr_in_the_fallback_even_from_noisy_learner_code(monkeypatch, capfd):
    """nbgrader scores a cell with stderr output as 0: neither the fallback from bubblewrap
    nor a learner's function that writes to stderr or warns may leak into the caller's fd 2."""
    from cnnstep.checker import FALLBACK_WARNING, check

    monkeypatch.setattr(check, "resolve_isolation", lambda requested: "process")
    source = CORRECT.read_text().split(DRIVER)[0] + (
        "\nimport sys, warnings\n"
        "def zero_pad(X, pad):\n"
        "    print('noise on stderr', file=sys.stderr)\n"
        "    warnings.warn('a learner warning')\n"
        "    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='constant')\n")
    outcome = check_functions(notebook(source, "noisy"), functions=["zero_pad"])
    assert outcome.statuses == {"zero_pad": "pass"}
    assert outcome.isolation == "process" and outcome.warnings[0] == FALLBACK_WARNING
    out, err = capfd.readouterr()
    assert err == "" and "noise" not in out
