"""The published results of the step-by-step material, as data.

Each :class:`PublishedCase` rebuilds its inputs exactly as the material does (``np.random.seed``,
then ``np.random.randn`` in order) and lists the values a correct function reproduces. The test
suite, ``cnnstep demo`` and ``cnnstep check`` all use these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PublishedCase:
    """One published example.

    Attributes
    ----------
    function : str
        Which of the eight functions it exercises.
    label : str
        The inputs in words, e.g. ``"seed 1, A_prev (2,5,7,4), W (3,3,4,8), pad 1, stride 2"``.
    inputs : callable
        ``inputs(ops)`` returns the argument tuple; ``ops`` provides the functions a case needs to
        build its inputs (``conv_forward``, ``pool_forward``), normally :mod:`cnnstep`.
    expected : dict
        Quantity name → published value (a number, an array, or a shape tuple).
    observe : callable
        ``observe(result)`` returns the same quantities computed from the function's result.
    """

    function: str
    label: str
    inputs: Callable[[Any], tuple[Any, ...]]
    expected: dict[str, Any]
    observe: Callable[[Any], dict[str, Any]]


def _seeded(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    np.random.seed(seed)
    return [np.random.randn(*s) for s in shapes]


def _conv_backward_inputs(ops: Any) -> tuple[Any, ...]:
    A_prev, W, b = _seeded(1, (10, 4, 4, 3), (2, 2, 3, 8), (1, 1, 1, 8))
    Z, cache = ops.conv_forward(A_prev, W, b, {"pad": 2, "stride": 2})
    return Z, cache


def _pool_backward_inputs(ops: Any, mode: str) -> tuple[Any, ...]:
    (A_prev,) = _seeded(1, (5, 5, 3, 2))
    _, cache = ops.pool_forward(A_prev, {"stride": 1, "f": 2}, mode)
    dA = np.random.randn(5, 4, 2, 2)
    return dA, cache, mode


PUBLISHED_CASES: tuple[PublishedCase, ...] = (
    PublishedCase(
        "zero_pad", "seed 1, x (4,3,3,2), pad 3",
        lambda ops: (*_seeded(1, (4, 3, 3, 2)), 3),
        {"shape": (4, 9, 9, 2)},
        lambda r: {"shape": np.shape(r)},
    ),
    PublishedCase(
        "zero_pad", "seed 1, x (4,3,3,2), pad 2",
        lambda ops: (*_seeded(1, (4, 3, 3, 2)), 2),
        {"shape": (4, 7, 7, 2), "x_pad[1,1]": np.zeros((7, 2))},
        lambda r: {"shape": np.shape(r), "x_pad[1,1]": np.asarray(r)[1, 1]},
    ),
    PublishedCase(
        "conv_single_step", "seed 1, a_slice_prev (4,4,3), W (4,4,3), b (1,1,1)",
        lambda ops: tuple(_seeded(1, (4, 4, 3), (4, 4, 3), (1, 1, 1))),
        {"Z": -6.999089450680221},
        lambda r: {"Z": r},
    ),
    PublishedCase(
        "conv_forward", "seed 1, A_prev (2,5,7,4), W (3,3,4,8), b (1,1,1,8), pad 1, stride 2",
        lambda ops: (*_seeded(1, (2, 5, 7, 4), (3, 3, 4, 8), (1, 1, 1, 8)),
                     {"pad": 1, "stride": 2}),
        {
            "shape(Z)": (2, 3, 4, 8),
            "mean(Z)": 0.5511276474566768,
            "Z[0,2,1]": np.array([-2.17796037, 8.07171329, -0.5772704, 3.36286738,
                                  4.48113645, -2.89198428, 10.99288867, 3.03171932]),
        },
        lambda r: {"shape(Z)": np.shape(r[0]), "mean(Z)": np.mean(r[0]),
                   "Z[0,2,1]": np.asarray(r[0])[0, 2, 1]},
    ),
    PublishedCase(
        "conv_forward", "seed 1, A_prev (2,5,7,4), W (3,3,4,8), b (1,1,1,8), pad 0, stride 2",
        lambda ops: (*_seeded(1, (2, 5, 7, 4), (3, 3, 4, 8), (1, 1, 1, 8)),
                     {"pad": 0, "stride": 2}),
        {"shape(Z)": (2, 2, 3, 8)},
        lambda r: {"shape(Z)": np.shape(r[0])},
    ),
    PublishedCase(
        "pool_forward", "seed 1, A_prev (2,5,5,3), f 3, stride 1, mode max",
        lambda ops: (*_seeded(1, (2, 5, 5, 3)), {"stride": 1, "f": 3}, "max"),
        {
            "shape(A)": (2, 3, 3, 3),
            "A[1,1]": np.array([[1.96710175, 0.84616065, 1.27375593],
                                [1.96710175, 0.84616065, 1.23616403],
                                [1.62765075, 1.12141771, 1.2245077]]),
        },
        lambda r: {"shape(A)": np.shape(r[0]), "A[1,1]": np.asarray(r[0])[1, 1]},
    ),
    PublishedCase(
        "pool_forward", "seed 1, A_prev (2,5,5,3), f 3, stride 1, mode average",
        lambda ops: (*_seeded(1, (2, 5, 5, 3)), {"stride": 1, "f": 3}, "average"),
        {
            "shape(A)": (2, 3, 3, 3),
            "A[1,1]": np.array([[0.44497696, -0.00261695, -0.31040307],
                                [0.50811474, -0.23493734, -0.23961183],
                                [0.11872677, 0.17255229, -0.22112197]]),
        },
        lambda r: {"shape(A)": np.shape(r[0]), "A[1,1]": np.asarray(r[0])[1, 1]},
    ),
    PublishedCase(
        "conv_backward",
        "seed 1, A_prev (10,4,4,3), W (2,2,3,8), b (1,1,1,8), pad 2, stride 2, dZ = Z",
        _conv_backward_inputs,
        {"mean(dA)": 1.4524377775388075, "mean(dW)": 1.7269914583139097,
         "mean(db)": 7.839232564616838},
        lambda r: {"mean(dA)": np.mean(r[0]), "mean(dW)": np.mean(r[1]),
                   "mean(db)": np.mean(r[2])},
    ),
    PublishedCase(
        "create_mask_from_window", "x = [[-1,2,3],[2,-3,2],[1,5,-2]]",
        lambda ops: (np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]]),),
        {"mask": np.array([[False, False, False], [False, False, False],
                           [False, True, False]])},
        lambda r: {"mask": np.asarray(r)},
    ),
    PublishedCase(
        "distribute_value", "dz 2, shape (2,2)",
        lambda ops: (2, (2, 2)),
        {"a": np.full((2, 2), 0.5)},
        lambda r: {"a": np.asarray(r)},
    ),
    PublishedCase(
        "pool_backward",
        "seed 1, A_prev (5,5,3,2), f 2, stride 1, dA randn (5,4,2,2), mode max",
        lambda ops: _pool_backward_inputs(ops, "max"),
        {"dA_prev[1,1]": np.array([[0.0, 0.0], [5.05844394, -1.68282702], [0.0, 0.0]])},
        lambda r: {"dA_prev[1,1]": np.asarray(r)[1, 1]},
    ),
    PublishedCase(
        "pool_backward",
        "seed 1, A_prev (5,5,3,2), f 2, stride 1, dA randn (5,4,2,2), mode average",
        lambda ops: _pool_backward_inputs(ops, "average"),
        {"dA_prev[1,1]": np.array([[0.08485462, 0.2787552], [1.26461098, -0.25749373],
                                   [1.17975636, -0.53624893]])},
        lambda r: {"dA_prev[1,1]": np.asarray(r)[1, 1]},
    ),
)


def tolerance(expected: Any) -> float:
    """How close an observed value must be to a published one.

    Published scalars are full precision: 1e-9. Published arrays were printed with 8 decimals,
    so the exact values lie within half a unit of the last printed digit of them: 5e-9 (that is,
    the observed array rounds to the printed one).
    """
    return 1e-9 if np.ndim(expected) == 0 else 5e-9 + 1e-12


def matches(expected: Any, got: Any) -> bool:
    """Whether an observed quantity equals its published value (shapes exactly, numbers to
    :func:`tolerance`)."""
    if isinstance(expected, tuple):
        return tuple(got) == expected if isinstance(got, tuple) else False
    try:
        got_arr = np.asarray(got, dtype=float if np.asarray(expected).dtype != bool else bool)
    except (TypeError, ValueError):
        return False
    exp_arr = np.asarray(expected)
    if got_arr.shape != exp_arr.shape:
        return False
    if exp_arr.dtype == bool:
        return bool(np.array_equal(got_arr, exp_arr))
    return bool(np.allclose(got_arr, exp_arr, rtol=0, atol=tolerance(expected)))
