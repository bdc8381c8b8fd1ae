"""Reading a learner's code, never running it: a regular file under a size cap (``files``), a
``.py`` file or notebook split into units and the statements safe to run (``loader``), and a
program built from a notebook's live functions (``functions``).

May import: :mod:`cnnstep.checker.i18n` and the top-level modules.
"""
