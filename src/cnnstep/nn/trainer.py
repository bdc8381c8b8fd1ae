"""How a model finds the function that trains it.

The training loop lives a floor above the models: :mod:`cnnstep.train` imports
:mod:`cnnstep.nn`, never the reverse. So :meth:`cnnstep.nn.model.Sequential.fit` does not import
it, and nothing registers it on import either: a model *names* its trainer,
``"cnnstep.train:fit"`` (:data:`DEFAULT_TRAINER`), imported by :func:`resolve_trainer` when
``fit`` is first called, as pandas names its plotting backend. Another trainer is set on a model
(``model.trainer = my_fit``) or given per call (``model.fit(x, y, trainer=my_fit)``), and is
called as ``my_fit(model, x, y, **kwargs)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["DEFAULT_TRAINER", "resolve_trainer"]

#: The trainer of every model unless set otherwise.
DEFAULT_TRAINER = "cnnstep.train:fit"


def resolve_trainer(trainer: str | Callable[..., list[dict]]) -> Callable[..., list[dict]]:
    """The training function ``trainer`` is or names (``"package.module:function"``).

    Raises
    ------
    TypeError
        If ``trainer`` is neither callable nor such a name.
    ValueError
        If the name cannot be imported.
    """
    if callable(trainer):
        return trainer
    if not isinstance(trainer, str) or trainer.count(":") != 1:
        raise TypeError(f"trainer must be a function or 'module:function', got {trainer!r}")
    module_name, _, attr = trainer.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"trainer {trainer!r} cannot be imported ({exc})") from exc
    if not callable(fn):
        raise TypeError(f"trainer {trainer!r} is not a function")
    return fn
