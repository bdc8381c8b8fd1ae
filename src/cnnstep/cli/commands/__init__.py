"""One module per ``cnnstep`` sub-command; each defines ``ORDER`` and ``register(subparsers)``.

May import: anything in cnnstep (through the rooms' public names) and :mod:`cnnstep.cli.options`.
"""
