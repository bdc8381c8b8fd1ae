"""The ``cnnstep`` command line: :mod:`~cnnstep.cli.main` (the entry point and one-line errors),
:mod:`~cnnstep.cli.options` (argument types and options shared by several commands) and
:mod:`~cnnstep.cli.commands` (one module per sub-command, found by name).

May import: anything in cnnstep. Nothing imports the CLI.
"""
