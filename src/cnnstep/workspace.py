"""How much scratch memory the ops may use at once.

Convolution copies each window into a matrix (im2col); for a large batch that matrix is many
times the size of the input. The ops therefore process the batch in chunks whose scratch arrays
fit in the budget set here (default 128 MiB). Results do not depend on the budget.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_DEFAULT_BUDGET = 128 * 2**20
_budget = _DEFAULT_BUDGET


def get_workspace_budget() -> int:
    """The scratch-memory budget of one op, in bytes."""
    return _budget


def set_workspace_budget(nbytes: int | None) -> None:
    """Set the scratch-memory budget of one op, in bytes (``None`` restores the default).

    A budget smaller than one example's scratch still works: the batch is then processed one
    example at a time.
    """
    global _budget
    if nbytes is None:
        _budget = _DEFAULT_BUDGET
        return
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError(f"workspace budget must be a positive number of bytes, got {nbytes!r}")
    _budget = nbytes


@contextlib.contextmanager
def workspace_budget(nbytes: int | None) -> Iterator[None]:
    """Temporarily set the scratch-memory budget: ``with workspace_budget(64 * 2**20): ...``."""
    old = _budget
    set_workspace_budget(nbytes)
    try:
        yield
    finally:
        set_workspace_budget(old)


def batch_chunks(m: int, bytes_per_example: int) -> Iterator[slice]:
    """Slices of ``range(m)`` whose scratch (``bytes_per_example`` each) fits the budget."""
    step = max(1, _budget // max(1, bytes_per_example))
    for start in range(0, m, step):
        yield slice(start, min(start + step, m))
