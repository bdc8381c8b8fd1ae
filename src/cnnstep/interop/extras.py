"""Optional libraries, imported when first needed, with a one-line error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional library is not installed; the message says which extra brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    Parameters
    ----------
    module : str
        Dotted module name, such as ``"onnx.helper"``.
    extra : str
        The cnnstep extra that installs it, such as ``"onnx"``.
    purpose : str
        What needs it, for the message (``"ONNX export"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}: pip install 'cnnstep[{extra}]'"
        ) from exc
