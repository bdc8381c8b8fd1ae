"""How a check reads: the :class:`~cnnstep.checker.reports.outcome.Outcome` (statuses, score,
assertions) and the report as a table, JSON or HTML (``report``).

May import: :mod:`cnnstep.checker.judging` and everything it may import.
"""
