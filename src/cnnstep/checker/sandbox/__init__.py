"""Running a learner's code: the isolation (``isolation``: bubblewrap or process limits, with the
``seccomp`` filter), the standalone child script (``child``), the messages both ways
(``protocol``), the CPU-time and waiting limits (``watch``), one child's session (``session``)
and the runner that checks function after function (``runner``, which judges nothing: a
:class:`~cnnstep.checker.sandbox.runner.Judge` is handed to it).

May import: :mod:`cnnstep.checker.source`, :mod:`cnnstep.checker.i18n` and the top-level
modules.
"""

from cnnstep.checker.sandbox.isolation import bubblewrap_mode, can_drop_to_nobody

__all__ = ["bubblewrap_mode", "can_drop_to_nobody"]
