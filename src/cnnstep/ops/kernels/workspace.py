"""How much scratch memory the ops may use at once.

Convolution copies each window into a matrix (im2col); for a large batch that matrix is many
times the size of the input. The ops therefore process the batch in blocks of output rows whose
scratch arrays fit in the budget set here (the ``workspace_budget`` setting of
:mod:`cnnstep.config`, default 128 MiB). Results do not depend on the budget
(up to float rounding in the sums over the batch).

Blocks are also kept small on purpose (:data:`CACHE_BLOCK_BYTES`, 4 MiB): a window matrix that is
still in cache when the matrix product reads it costs far less than one that went out to main
memory. So in practice one op's scratch is a few MiB whatever the batch size; the budget is the
upper bound for users who want less.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cnnstep.config import config_context, set_config, setting

#: Target scratch of one block, in bytes: well inside the last-level cache, yet big enough that
#: a multi-threaded matrix product per block is not dominated by waking its threads.
CACHE_BLOCK_BYTES = 4 * 2**20


def get_workspace_budget() -> int:
    """The scratch-memory budget of one op, in bytes (the ``workspace_budget`` setting)."""
    return int(setting("workspace_budget"))


def set_workspace_budget(nbytes: int | None) -> None:
    """Set the scratch-memory budget of one op, in bytes (``None`` restores the default); the
    same as ``cnnstep.config.set_config(workspace_budget=nbytes)``.

    Results do not depend on it (up to float rounding in the sums over the batch). A budget
    smaller than one output row's scratch still works: the rows are then processed one at a
    time.
    """
    set_config(workspace_budget=_checked(nbytes))


def workspace_budget(nbytes: int | None) -> contextlib.AbstractContextManager[None]:
    """Temporarily set the scratch-memory budget: ``with workspace_budget(64 * 2**20): ...``
    (``cnnstep.config.config_context(workspace_budget=nbytes)``)."""
    return config_context(workspace_budget=_checked(nbytes))


def _checked(nbytes: int | None) -> int | None:
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int)
                               or nbytes <= 0):
        raise ValueError(f"workspace budget must be a positive number of bytes, got {nbytes!r}")
    return nbytes


def row_blocks(
    m: int, n_H: int, bytes_per_row: int, target: int | None = None
) -> Iterator[tuple[slice, int, int]]:
    """Blocks of output rows whose scratch (``bytes_per_row`` per output row) fits a target.

    The target is :data:`CACHE_BLOCK_BYTES`, or the budget if that is smaller. A block is either
    several whole examples or, when one example alone is too big, a few rows of one example.

    Parameters
    ----------
    m, n_H : int
        Examples, and output rows per example.
    bytes_per_row : int
        Scratch bytes one output row needs.
    target : int, optional
        Bytes per block (default ``min(CACHE_BLOCK_BYTES, budget)``).

    Yields
    ------
    (examples, h0, h1) : (slice, int, int)
        Examples ``examples`` (a step-1 slice), output rows ``h0:h1`` of each.
    """
    budget = setting("workspace_budget")
    if target is None:
        target = min(CACHE_BLOCK_BYTES, budget)
    target = min(target, budget)
    bytes_per_row = max(1, bytes_per_row)
    per_example = n_H * bytes_per_row
    if per_example <= target:
        step = _even(m, target // per_example)
        for start in range(0, m, step):
            yield slice(start, min(start + step, m)), 0, n_H
        return
    rows = _even(n_H, max(1, target // bytes_per_row))
    for k in range(m):
        for h0 in range(0, n_H, rows):
            yield slice(k, k + 1), h0, min(h0 + rows, n_H)


def _even(n: int, most: int) -> int:
    """The step that splits ``n`` into the fewest parts of at most ``most``, evened out."""
    parts = max(1, -(-n // most))
    return max(1, -(-n // parts))
