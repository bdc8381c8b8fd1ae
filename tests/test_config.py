"""cnnstep.config: one place for the process's settings; the older setters are wrappers of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import cnnstep
import cnnstep.ops
import cnnstep.ops.onednn
from cnnstep.backends import onednn as backend_onednn
from cnnstep.config import (
    DEFAULT_WORKSPACE_BUDGET,
    config_context,
    get_config,
    set_config,
    setting,
)


def test_the_settings_and_their_defaults_in_a_fresh_process():
    code = "import json, cnnstep.config as c; print(json.dumps(c.get_config()))"
    env = {k: v for k, v in os.environ.items() if k not in ("CNNSTEP_ONEDNN",)}
    fresh = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, env=env, check=True).stdout)
    assert fresh == {"threads": 1, "workspace_budget": DEFAULT_WORKSPACE_BUDGET,
                     "memory_budget": None, "backend": "auto"}
    off = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, env={**env, "CNNSTEP_ONEDNN": "0"},
                                    check=True).stdout)
    assert off["backend"] == "numpy"


def test_get_config_is_a_copy():
    got = get_config()
    got["threads"] = 99
    assert get_config()["threads"] != 99


@pytest.mark.parametrize("name, bad, message", [
    ("threads", 0, "threads: expected a positive number of threads, got 0"),
    ("threads", 1.5, "threads: expected a positive number"),
    ("threads", True, "threads: expected a positive number"),
    ("workspace_budget", -1, "workspace_budget: expected a positive number of bytes"),
    ("workspace_budget", "1M", "workspace_budget: expected a positive number of bytes"),
    ("memory_budget", "lots", "memory_budget must be a size such as 4G"),
    ("backend", "cuda", "backend: expected one of 'auto', 'numpy', got 'cuda'"),
])
def test_a_bad_value_names_the_setting_and_changes_nothing(name, bad, message):
    before = get_config()
    with pytest.raises(ValueError, match=message):
        set_config(threads=2, **{name: bad}) if name != "threads" else set_config(**{name: bad})
    assert get_config() == before


def test_an_unknown_setting_is_a_type_error():
    with pytest.raises(TypeError, match="no setting named 'thread'; the settings are threads"):
        set_config(thread=2)


def test_config_context_restores_what_it_changed_even_after_an_error():
    before = get_config()
    with pytest.raises(KeyError), config_context(threads=3, memory_budget="8M"):
        assert setting("threads") == 3 and setting("memory_budget") == 8 << 20
        assert cnnstep.memory_budget() == 8 << 20
        raise KeyError("inside")
    assert get_config() == before


def test_the_older_setters_are_wrappers_of_the_settings():
    before = get_config()
    try:
        cnnstep.ops.set_num_threads(2)
        assert setting("threads") == 2 and cnnstep.ops.get_num_threads() == 2
        cnnstep.set_workspace_budget(1 << 20)
        assert setting("workspace_budget") == 1 << 20 == cnnstep.get_workspace_budget()
        with cnnstep.workspace_budget(4096):
            assert setting("workspace_budget") == 4096
        assert setting("workspace_budget") == 1 << 20
        cnnstep.set_workspace_budget(None)
        assert setting("workspace_budget") == DEFAULT_WORKSPACE_BUDGET
        cnnstep.set_memory_budget("3M")
        assert setting("memory_budget") == 3 << 20 == cnnstep.memory_budget()
        for module in (cnnstep.ops.onednn, backend_onednn):
            module.set_enabled(False)
            assert setting("backend") == "numpy" and not backend_onednn.enabled()
            module.set_enabled(True)
            assert setting("backend") == "auto"
            assert backend_onednn.enabled() == backend_onednn.available()
            with pytest.raises(TypeError, match="flag: expected True or False"):
                module.set_enabled("no")
        with pytest.raises(ValueError, match="n: expected a positive number of threads"):
            cnnstep.ops.set_num_threads(0)
        with pytest.raises(ValueError, match="workspace budget must be a positive number"):
            cnnstep.set_workspace_budget(0)
        with pytest.raises(ValueError, match="n_bytes must be"):
            cnnstep.set_memory_budget("-1")
    finally:
        set_config(**before)


def test_the_settings_survive_json_and_set_config_in_another_process():
    """What a worker process gets: ``get_config()`` as JSON, applied by ``set_config``."""
    with config_context(threads=3, workspace_budget=12345, memory_budget="7M", backend="numpy"):
        sent = json.dumps(get_config())
    code = ("import json, sys, cnnstep.config as c; c.set_config(**json.loads(sys.argv[1])); "
            "print(json.dumps(c.get_config()))")
    got = subprocess.run([sys.executable, "-c", code, sent], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(got) == json.loads(sent)
