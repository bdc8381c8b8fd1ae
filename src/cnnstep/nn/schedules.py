"""Learning-rate schedules: the learning rate at each step of a run, by name.

A schedule is ``lr(base_lr, step, total_steps) -> float``; :data:`SCHEDULES` holds them by name
(the choices of ``cnnstep train --schedule``). Adding one is one decorated function.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[float, int, int], float]

#: Registered schedules by name.
SCHEDULES: dict[str, Schedule] = {}


def register_schedule(name: str) -> Callable[[Schedule], Schedule]:
    """Register ``fn(base_lr, step, total_steps) -> lr`` under ``name``."""
    def decorate(fn: Schedule) -> Schedule:
        SCHEDULES[name] = fn
        return fn
    return decorate


@register_schedule("cosine")
def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Learning rate at ``step`` of a cosine decay from ``base_lr`` to 0 over ``total_steps``."""
    if total_steps <= 0:
        return base_lr
    frac = min(max(step / total_steps, 0.0), 1.0)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * frac))


@register_schedule("constant")
def constant_lr(base_lr: float, step: int, total_steps: int) -> float:
    """``base_lr`` at every step."""
    return base_lr


def get_schedule(name: str) -> Schedule:
    """The schedule registered as ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name]
