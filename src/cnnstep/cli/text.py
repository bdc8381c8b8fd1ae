"""What the CLI prints of text that came from files: names of images, classes and models.

A class name in a model file or a file name in a folder is whatever its author wrote: a
terminal escape sequence (``ESC]0;...`` retitles the window, others recolour or move the
cursor), a newline that forges a second output line, or a spreadsheet formula (``=HYPERLINK``).
Everything printed from such sources goes through :func:`for_terminal` or :func:`csv_cell`.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included: they would forge columns and lines), DEL, C1 controls,
# and the Unicode line and paragraph separators and bidirectional overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

#: Characters a spreadsheet reads as the start of a formula when a cell begins with them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\n``...)."""
    return _CONTROL.sub(_escape, str(text))


def csv_cell(text: str) -> str:
    """``text`` safe for a CSV cell that a spreadsheet opens: a leading ``=``, ``+``, ``-``,
    ``@``, tab or carriage return gets a ``'`` before it (OWASP's advice), so it is shown as
    text and never evaluated. The CSV writer quotes the rest."""
    text = str(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
