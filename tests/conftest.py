"""Shared test settings and helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# Helpers shared by tests in several folders (writers of small data files, ...).
sys.path.insert(0, str(Path(__file__).parent / "helpers"))

# Property tests run the reference loops, which are slow on purpose: no per-example deadline.
settings.register_profile(
    "default", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# The checker's messages follow the locale (LANG=es_* gives Spanish): the tests pin English and
# ask for Spanish explicitly where they test it.
for _variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_variable, None)
os.environ["LANG"] = "C.UTF-8"
