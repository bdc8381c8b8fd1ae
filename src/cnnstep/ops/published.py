"""The published results of the step-by-step material, as data.

Each :class:`PublishedCase` describes its inputs as data (the seed, what ``np.random.randn``
draws in order, the other arguments), rebuilds them exactly as the material does, and lists the
values a correct function reproduces. The test suite, ``cnnstep demo`` and ``cnnstep check`` (its
published cases) all read this one list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The positional arguments of each function, by input name; a tuple is a cache built from
# those inputs.
ARGUMENT_NAMES: dict[str, tuple[Any, ...]] = {
    "zero_pad": ("X", "pad"),
    "conv_single_step": ("a_slice_prev", "W", "b"),
    "conv_forward": ("A_prev", "W", "b", "hparameters"),
    "conv_backward": ("dZ", ("A_prev", "W", "b", "hparameters")),
    "pool_forward": ("A_prev", "hparameters", "mode"),
    "create_mask_from_window": ("x",),
    "distribute_value": ("dz", "shape"),
    "pool_backward": ("dA", ("A_prev", "hparameters"), "mode"),
}


def draw_inputs(seed: int | None, draws: Sequence[tuple[str, str, tuple[int, ...]]],
                fixed: Mapping[str, Any], ops: Any = None) -> dict[str, Any]:
    """The input values of a case, drawn as the material draws them.

    Parameters
    ----------
    seed : int or None
        ``np.random.seed(seed)`` before the draws (a private generator with the same stream).
    draws : sequence of (name, kind, shape)
        In order: ``kind`` ``"randn"`` (standard normal) or ``"ints"`` (integers 0..2 as floats,
        so that windows hold ties).
    fixed : mapping
        The other inputs by name. ``"x"`` becomes a float array; ``"dZ_from_forward": True``
        makes ``dZ`` the ``Z`` of ``ops.conv_forward`` on the drawn inputs (as the material's
        ``conv_backward`` example does).
    ops : module, optional
        Supplies ``conv_forward`` for ``dZ_from_forward``.

    Returns
    -------
    dict
        Input name to value (fresh arrays).
    """
    rng = np.random.RandomState(seed) if seed is not None else None
    out: dict[str, Any] = {}
    for name, kind, shape in draws:
        assert rng is not None, "draws need a seed"
        out[name] = rng.randn(*shape) if kind == "randn" else \
            rng.randint(0, 3, size=shape).astype(float)
    for name, value in fixed.items():
        if name == "x":
            out[name] = np.array(value, dtype=float)
        elif name == "hparameters":
            out[name] = dict(value)
        elif name != "dZ_from_forward":
            out[name] = value
    if fixed.get("dZ_from_forward"):
        out["dZ"], _ = ops.conv_forward(out["A_prev"].copy(), out["W"].copy(), out["b"].copy(),
                                        dict(out["hparameters"]))
    return out


def call_arguments(function: str, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """The positional arguments of ``function`` for these input values (arrays and dicts
    copied: a function may write into its inputs)."""
    if function not in ARGUMENT_NAMES:
        raise ValueError(f"function: expected one of {tuple(ARGUMENT_NAMES)}, got {function!r}")

    def value(name: Any) -> Any:
        if isinstance(name, tuple):
            return tuple(value(n) for n in name)
        v = values[name]
        if isinstance(v, np.ndarray):
            return v.copy()
        return dict(v) if isinstance(v, dict) else v

    return tuple(value(name) for name in ARGUMENT_NAMES[function])


@dataclass(frozen=True)
class PublishedCase:
    """One published example.

    Attributes
    ----------
    function : str
        Which of the eight functions it exercises.
    name : str
        A short name (``"published"``, ``"published, pad 0"``), as ``cnnstep check`` reports it.
    label : str
        The inputs in words, e.g. ``"seed 1, A_prev (2,5,7,4), W (3,3,4,8), pad 1, stride 2"``.
    seed : int or None
        The material's ``np.random.seed``.
    draws : tuple of (name, kind, shape)
        What is drawn after the seed, in order (see :func:`draw_inputs`).
    fixed : dict
        The other inputs by name.
    expected : dict
        Quantity name → published value (a number, an array, or a shape tuple).
    observe : callable
        ``observe(result)`` returns the same quantities computed from the function's result.
    """

    function: str
    name: str
    label: str
    seed: int | None
    draws: tuple[tuple[str, str, tuple[int, ...]], ...]
    fixed: dict[str, Any]
    expected: dict[str, Any]
    observe: Callable[[Any], dict[str, Any]]

    def inputs(self, ops: Any) -> tuple[Any, ...]:
        """The argument tuple; ``ops`` supplies ``conv_forward`` where an input is built from
        its result (normally :mod:`cnnstep`)."""
        return call_arguments(self.function, draw_inputs(self.seed, self.draws, self.fixed, ops))


def _randn(*named: tuple[str, tuple[int, ...]]) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    return tuple((name, "randn", shape) for name, shape in named)


_CONV = _randn(("A_prev", (2, 5, 7, 4)), ("W", (3, 3, 4, 8)), ("b", (1, 1, 1, 8)))

PUBLISHED_CASES: tuple[PublishedCase, ...] = (
    PublishedCase(
        "zero_pad", "published, pad 3", "seed 1, x (4,3,3,2), pad 3",
        1, _randn(("X", (4, 3, 3, 2))), {"pad": 3},
        {"shape": (4, 9, 9, 2)},
        lambda r: {"shape": np.shape(r)},
    ),
    PublishedCase(
        "zero_pad", "published, pad 2", "seed 1, x (4,3,3,2), pad 2",
        1, _randn(("X", (4, 3, 3, 2))), {"pad": 2},
        {"shape": (4, 7, 7, 2), "x_pad[1,1]": np.zeros((7, 2))},
        lambda r: {"shape": np.shape(r), "x_pad[1,1]": np.asarray(r)[1, 1]},
    ),
    PublishedCase(
        "conv_single_step", "published", "seed 1, a_slice_prev (4,4,3), W (4,4,3), b (1,1,1)",
        1, _randn(("a_slice_prev", (4, 4, 3)), ("W", (4, 4, 3)), ("b", (1, 1, 1))), {},
        {"Z": -6.999089450680221},
        lambda r: {"Z": r},
    ),
    PublishedCase(
        "conv_forward", "published",
        "seed 1, A_prev (2,5,7,4), W (3,3,4,8), b (1,1,1,8), pad 1, stride 2",
        1, _CONV, {"hparameters": {"stride": 2, "pad": 1}},
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
        "conv_forward", "published, pad 0",
        "seed 1, A_prev (2,5,7,4), W (3,3,4,8), b (1,1,1,8), pad 0, stride 2",
        1, _CONV, {"hparameters": {"stride": 2, "pad": 0}},
        {"shape(Z)": (2, 2, 3, 8)},
        lambda r: {"shape(Z)": np.shape(r[0])},
    ),
    PublishedCase(
        "pool_forward", "published", "seed 1, A_prev (2,5,5,3), f 3, stride 1, mode max",
        1, _randn(("A_prev", (2, 5, 5, 3))), {"hparameters": {"f": 3, "stride": 1}, "mode": "max"},
        {
            "shape(A)": (2, 3, 3, 3),
            "A[1,1]": np.array([[1.96710175, 0.84616065, 1.27375593],
                                [1.96710175, 0.84616065, 1.23616403],
                                [1.62765075, 1.12141771, 1.2245077]]),
        },
        lambda r: {"shape(A)": np.shape(r[0]), "A[1,1]": np.asarray(r[0])[1, 1]},
    ),
    PublishedCase(
        "pool_forward", "published", "seed 1, A_prev (2,5,5,3), f 3, stride 1, mode average",
        1, _randn(("A_prev", (2, 5, 5, 3))),
        {"hparameters": {"f": 3, "stride": 1}, "mode": "average"},
        {
            "shape(A)": (2, 3, 3, 3),
            "A[1,1]": np.array([[0.44497696, -0.00261695, -0.31040307],
                                [0.50811474, -0.23493734, -0.23961183],
                                [0.11872677, 0.17255229, -0.22112197]]),
        },
        lambda r: {"shape(A)": np.shape(r[0]), "A[1,1]": np.asarray(r[0])[1, 1]},
    ),
    PublishedCase(
        "conv_backward", "published",
        "seed 1, A_prev (10,4,4,3), W (2,2,3,8), b (1,1,1,8), pad 2, stride 2, dZ = Z",
        1, _randn(("A_prev", (10, 4, 4, 3)), ("W", (2, 2, 3, 8)), ("b", (1, 1, 1, 8))),
        {"hparameters": {"stride": 2, "pad": 2}, "dZ_from_forward": True},
        {"mean(dA)": 1.4524377775388075, "mean(dW)": 1.7269914583139097,
         "mean(db)": 7.839232564616838},
        lambda r: {"mean(dA)": np.mean(r[0]), "mean(dW)": np.mean(r[1]),
                   "mean(db)": np.mean(r[2])},
    ),
    PublishedCase(
        "create_mask_from_window", "published", "x = [[-1,2,3],[2,-3,2],[1,5,-2]]",
        None, (), {"x": [[-1, 2, 3], [2, -3, 2], [1, 5, -2]]},
        {"mask": np.array([[False, False, False], [False, False, False],
                           [False, True, False]])},
        lambda r: {"mask": np.asarray(r)},
    ),
    PublishedCase(
        "distribute_value", "published", "dz 2, shape (2,2)",
        None, (), {"dz": 2, "shape": (2, 2)},
        {"a": np.full((2, 2), 0.5)},
        lambda r: {"a": np.asarray(r)},
    ),
    PublishedCase(
        "pool_backward", "published",
        "seed 1, A_prev (5,5,3,2), f 2, stride 1, dA randn (5,4,2,2), mode max",
        1, _randn(("A_prev", (5, 5, 3, 2)), ("dA", (5, 4, 2, 2))),
        {"hparameters": {"f": 2, "stride": 1}, "mode": "max"},
        {"dA_prev[1,1]": np.array([[0.0, 0.0], [5.05844394, -1.68282702], [0.0, 0.0]])},
        lambda r: {"dA_prev[1,1]": np.asarray(r)[1, 1]},
    ),
    PublishedCase(
        "pool_backward", "published",
        "seed 1, A_prev (5,5,3,2), f 2, stride 1, dA randn (5,4,2,2), mode average",
        1, _randn(("A_prev", (5, 5, 3, 2)), ("dA", (5, 4, 2, 2))),
        {"hparameters": {"f": 2, "stride": 1}, "mode": "average"},
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
