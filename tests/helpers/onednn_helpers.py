"""What the tests of oneDNN's kernels share: a skip where the extra is missing, and a fixture
that turns the kernels on for problems of any size."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cnnstep.ops import onednn, onednn_pool

needs_onednn = pytest.mark.skipif(
    not onednn.available(),
    reason=f"needs onednn-cpu-gomp (the onednn extra) and libgomp.so.1: {onednn.status()}")


@pytest.fixture
def onednn_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """oneDNN's kernels on, however little work a problem holds; the setting restored after."""
    monkeypatch.setattr(onednn, "MIN_WORK", 0)
    monkeypatch.setattr(onednn_pool, "MIN_WORK", 0)
    before = onednn.enabled()
    onednn.set_enabled(True)
    yield
    onednn.set_enabled(before)
