"""Grading on a Dask distributed cluster: one task per submission, each checked on a worker in
the same sandbox as a local run; the records come back here, are appended to the gradebook's
record as they arrive, and are the same as a local run's (the learner's code is seeded the same
way, the paths are shown as given here).

The workers need cnnstep installed and read the submissions at the same absolute paths (a shared
file system). An interrupted run cancels the tasks not started; a task already running on a
worker finishes there (Dask cannot stop it), and its record is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnstep.checker.i18n import gettext as _
from cnnstep.errors import UserError
from cnnstep.grading.single import grade_one


def grade_on_dask(address: str, run: Any, todo: list[int], settings: dict,
                  check: Callable[..., Any]) -> None:
    """Grade ``run.subs[i]`` for each ``i`` in ``todo`` on the cluster at ``address``."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UserError(_("--scheduler needs Dask: pip install 'cnnstep[dask]'")) from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise UserError(_("--scheduler {address}: cannot connect ({why})").format(
            address=address, why=exc)) from None
    futures = {}
    try:
        for i in todo:
            sub = run.subs[i]
            future = client.submit(grade_one, sub.path.resolve(), sub.label, settings,
                                   run.points, check, pure=False)
            futures[future] = i
        for future in as_completed(list(futures)):
            run.done(futures[future], future.result())
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        client.close()
