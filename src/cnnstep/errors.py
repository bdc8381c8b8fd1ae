"""Exceptions that cnnstep raises on purpose.

Array functions raise plain ``ValueError``/``TypeError`` (what NumPy users expect).
Everything a user can get wrong at the command line or in a file is a :class:`UserError`,
which the CLI prints as one line and turns into exit code 2.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a path, an option, a file); never a bug in cnnstep."""


class DataError(UserError, ValueError):
    """A data set or model file that cannot be read: missing, corrupt or inconsistent.

    The message names the file and what is wrong with it.
    """
