"""Judging what came back: the cases and their expected values (``cases``), the comparison
(``compare``), the verdicts (``judge``) and the hints: from exceptions and failing-case patterns
(``hints``), from wrong values, one small function per checked function (``value_hints``), and
from the learner's source (``slips``).

May import: :mod:`cnnstep.checker.sandbox`, :mod:`cnnstep.checker.source`,
:mod:`cnnstep.checker.i18n`, :mod:`cnnstep.ops` and the top-level modules.
"""
