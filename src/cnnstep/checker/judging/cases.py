"""The cases each of the eight functions is run on: the published ones, then small ones that
expose the classic slips.

Every case is data: which arrays to draw (``np.random.seed`` then ``randn``/``randint`` in the
listed order, as the original material does), the other arguments, and *tags* saying what is
special about it ("pad0", "stride", "remainder", "nonsquare", ...). The hints use the tags: a
function that fails exactly on the cases sharing a tag probably makes the slip that tag names.
The small cases come in families: a base case and variants that change one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnstep.checker.i18n import N_
from cnnstep.checker.i18n import gettext as _
from cnnstep.ops import functional
from cnnstep.ops.published import PUBLISHED_CASES, call_arguments, draw_inputs

# The eight functions, in the order of the material (and of the report).
FUNCTIONS = tuple(functional.__all__)

# Older names a learner's file may use instead.
# Helpers first, so that a caller's failure can be blamed on a helper already known to fail.
CHECK_ORDER = ("zero_pad", "conv_single_step", "create_mask_from_window", "distribute_value",
               "conv_forward", "pool_forward", "conv_backward", "pool_backward")

ALIASES = {"conv_single_step": ("convolve_window",)}

# What each function returns, for messages ("dW differs").
OUTPUT_NAMES = {
    "zero_pad": ("X_pad",),
    "conv_single_step": ("Z",),
    "conv_forward": ("Z", "cache"),
    "conv_backward": ("dA_prev", "dW", "db"),
    "pool_forward": ("A", "cache"),
    "create_mask_from_window": ("mask",),
    "distribute_value": ("a",),
    "pool_backward": ("dA_prev",),
}

# What the tags mean, in words, for "fails only when ...".
TAG_WORDS = {
    "pad0": N_("pad = 0"),
    "stride": N_("stride > 1"),
    "remainder": N_("the stride does not divide (n_H_prev - f + 2*pad)"),
    "nonsquare": N_("the input is not square (n_H != n_W)"),
    "batch1": N_("there is a single example (m = 1)"),
    "channel1": N_("there is a single channel"),
    "overlap": N_("windows overlap (stride < f)"),
    "avg3": N_("average pooling uses a 3x3 window"),
    "average": N_("mode = 'average'"),
    "max": N_("mode = 'max'"),
    "ties": N_("a window holds tied maxima"),
}


@dataclass(frozen=True)
class Case:
    """One call of one function.

    ``draws`` are generated in order after ``np.random.seed(seed)``: ``(name, "randn", shape)``
    or ``(name, "ints", shape)`` (small integers, so windows hold ties). ``fixed`` holds the other
    arguments (ints, dicts, literal lists).
    """

    function: str
    label: str
    seed: int | None
    draws: tuple = ()
    fixed: dict = field(default_factory=dict)
    tags: frozenset = frozenset()
    published: bool = False

    def sort_key(self) -> tuple[int, int, int]:
        """Simplest first: fewest special features (tags), then fewest input values, then
        not-published first. The failure reported is the first failing case in this order."""
        size = 0
        for _name, _kind, shape in self.draws:
            size += int(np.prod(shape))
        for value in self.fixed.values():
            if isinstance(value, list):
                size += int(np.asarray(value).size)
        return (len(self.tags), size, int(self.published))

    def title(self) -> str:
        """The label in the current language ("published, pad 0" keeps its numbers)."""
        if self.published:
            return self.label.replace("published", _("published"), 1)
        return _(self.label)

    def describe(self) -> str:
        """A one-line description: shapes and hyperparameters."""
        parts = [f"{name} {tuple(shape)}" for name, _kind, shape in self.draws if name != "dZ"]
        for name, value in self.fixed.items():
            if name == "hparameters":
                parts.append(", ".join(f"{k} {v}" for k, v in value.items()))
            elif name == "mode":
                parts.append(f"mode {value!r}")
            elif name == "x":
                parts.append(f"x = {value}")
            elif name == "dZ_from_forward":
                parts.append(_("dZ = Z from conv_forward"))
            else:
                parts.append(f"{name} {value}")
        return "; ".join(parts)

    def code(self) -> str:
        """Python lines that rebuild the inputs and make the call, for the learner to try."""
        lines = []
        if self.seed is not None:
            lines.append(f"np.random.seed({self.seed})")
        for name, kind, shape in self.draws:
            dims = ", ".join(str(d) for d in shape)
            if kind == "randn":
                lines.append(f"{name} = np.random.randn({dims})")
            else:
                lines.append(f"{name} = np.random.randint(0, 3, size=({dims},)).astype(float)")
        for name, value in self.fixed.items():
            if name == "x":
                lines.append(f"x = np.array({value}, dtype=float)")
            elif name not in ("dZ_from_forward",):
                lines.append(f"{name} = {value!r}")
        call = {
            "zero_pad": "X_pad = zero_pad(X, pad)",
            "conv_single_step": "Z = conv_single_step(a_slice_prev, W, b)",
            "conv_forward": "Z, cache = conv_forward(A_prev, W, b, hparameters)",
            "conv_backward": "dA_prev, dW, db = conv_backward(dZ, (A_prev, W, b, hparameters))",
            "pool_forward": "A, cache = pool_forward(A_prev, hparameters, mode)",
            "create_mask_from_window": "mask = create_mask_from_window(x)",
            "distribute_value": "a = distribute_value(dz, shape)",
            "pool_backward": "dA_prev = pool_backward(dA, (A_prev, hparameters), mode)",
        }[self.function]
        if self.fixed.get("dZ_from_forward"):
            lines.append("dZ, _ = conv_forward(A_prev, W, b, hparameters)  # Z itself as dZ")
        lines.append(call)
        return "\n".join(lines)

    def values(self, reference: Any) -> dict[str, Any]:
        """Build fresh input values (``reference`` supplies conv_forward for a published dZ)."""
        return draw_inputs(self.seed, self.draws, self.fixed, reference)


def arguments(function: str, values: dict[str, Any]) -> tuple[Any, ...]:
    """The positional arguments of ``function`` for these input values (copies: a function may
    write into its inputs)."""
    return call_arguments(function, values)


def _published_tags(function: str, values: dict[str, Any]) -> frozenset[str]:
    """What is special about a published case, from its inputs (the same tags as the small
    cases: stride > 1, pad 0, a non-square input, windows that overlap)."""
    hp = values.get("hparameters", {})
    tags = set()
    if hp.get("stride", 1) > 1:
        tags.add("stride")
    if hp.get("pad") == 0 and function.startswith("conv"):
        tags.add("pad0")
    first = values.get("A_prev", values.get("X"))
    if first is not None and first.ndim == 4 and first.shape[1] != first.shape[2]:
        tags.add("nonsquare")
    f = hp.get("f", values["W"].shape[0] if "W" in values else 0)
    if function in ("pool_forward", "pool_backward", "conv_backward") and hp.get("stride", f) < f:
        tags.add("overlap")
    if "mode" in values:
        tags.add(values["mode"])
    return frozenset(tags)


def _published(function: str) -> list[Case]:
    """The material's published examples of ``function`` (from :mod:`cnnstep.ops.published`)."""
    cases = []
    for pub in PUBLISHED_CASES:
        if pub.function == function:
            values = draw_inputs(pub.seed, pub.draws, {**pub.fixed, "dZ_from_forward": False})
            cases.append(Case(function, pub.name, pub.seed, pub.draws, dict(pub.fixed),
                              _published_tags(function, values), published=True))
    return cases


def _conv_out(n: int, f: int, pad: int, stride: int) -> int:
    return (n - f + 2 * pad) // stride + 1


def _conv_case(function, label, seed, a_shape, f, n_c, stride, pad, tags, published=False,
               dz_from_forward=False):
    m, n_h, n_w, n_c_prev = a_shape
    draws = [("A_prev", "randn", a_shape), ("W", "randn", (f, f, n_c_prev, n_c)),
             ("b", "randn", (1, 1, 1, n_c))]
    fixed: dict = {"hparameters": {"stride": stride, "pad": pad}}
    if function == "conv_backward":
        if dz_from_forward:
            fixed["dZ_from_forward"] = True
        else:
            out = (m, _conv_out(n_h, f, pad, stride), _conv_out(n_w, f, pad, stride), n_c)
            draws.append(("dZ", "randn", out))
    return Case(function, label, seed, tuple(draws), fixed, frozenset(tags), published)


def _pool_case(function, label, seed, a_shape, f, stride, mode, tags, published=False,
               kind="randn"):
    m, n_h, n_w, n_c = a_shape
    draws = [("A_prev", kind, a_shape)]
    if function == "pool_backward":
        out = (m, (n_h - f) // stride + 1, (n_w - f) // stride + 1, n_c)
        draws.append(("dA", "randn", out))
    fixed = {"hparameters": {"f": f, "stride": stride}, "mode": mode}
    return Case(function, label, seed, tuple(draws), fixed, frozenset(tags) | {mode}, published)


def _zero_pad_cases() -> list[Case]:
    def case(label, seed, shape, pad, tags, published=False):
        return Case("zero_pad", label, seed, (("X", "randn", shape),), {"pad": pad},
                    frozenset(tags), published)

    return _published("zero_pad") + [
        case(N_("base"), 2, (2, 3, 3, 2), 1, ()),
        case(N_("pad 0"), 3, (2, 3, 3, 2), 0, ("pad0",)),
        case(N_("non-square"), 4, (2, 2, 4, 2), 1, ("nonsquare",)),
        case(N_("one example"), 5, (1, 3, 3, 2), 1, ("batch1",)),
        case(N_("one channel"), 6, (2, 3, 3, 1), 2, ("channel1",)),
    ]


def _conv_single_step_cases() -> list[Case]:
    def case(label, seed, shape, tags, published=False):
        draws = (("a_slice_prev", "randn", shape), ("W", "randn", shape),
                 ("b", "randn", (1, 1, 1)))
        return Case("conv_single_step", label, seed, draws, {}, frozenset(tags), published)

    return _published("conv_single_step") + [
        case(N_("base"), 2, (3, 3, 2), ()),
        case(N_("one channel"), 3, (2, 2, 1), ("channel1",)),
        case(N_("non-square"), 4, (2, 3, 2), ("nonsquare",)),
    ]


def _conv_cases(function: str) -> list[Case]:
    backward = function == "conv_backward"
    if backward:
        # Base: f 2, stride 2: windows that do not overlap, so `=` for `+=` shows only on the
        # overlap case.
        cases = _published(function) + [
            _conv_case(function, N_("base"), 11, (2, 4, 4, 3), 2, 2, 2, 1, ("stride",)),
            _conv_case(function, N_("overlapping windows (f 3, stride 1)"), 12, (2, 4, 4, 3), 3, 2,
                       1, 1, ("overlap",)),
            _conv_case(function, N_("pad 0"), 13, (2, 4, 4, 3), 2, 2, 2, 0, ("stride", "pad0")),
            _conv_case(function, N_("stride with a remainder"), 14, (2, 6, 6, 2), 3, 2, 3, 1,
                       ("stride", "remainder")),
            _conv_case(function, N_("non-square"), 15, (2, 4, 6, 3), 2, 2, 2, 1,
                       ("stride", "nonsquare")),
            _conv_case(function, N_("one example"), 16, (1, 4, 4, 3), 2, 2, 2, 1,
                       ("stride", "batch1")),
            _conv_case(function, N_("one channel"), 17, (2, 4, 4, 1), 2, 1, 2, 1,
                       ("stride", "channel1")),
        ]
        return cases
    return _published(function) + [
        _conv_case(function, N_("base"), 21, (2, 4, 4, 3), 3, 2, 1, 1, ()),
        _conv_case(function, N_("pad 0"), 22, (2, 4, 4, 3), 3, 2, 1, 0, ("pad0",)),
        _conv_case(function, N_("stride 2"), 23, (2, 5, 5, 3), 3, 2, 2, 1, ("stride",)),
        _conv_case(function, N_("stride with a remainder"), 24, (2, 6, 6, 2), 3, 2, 3, 1,
                   ("stride", "remainder")),
        _conv_case(function, N_("non-square"), 25, (2, 4, 6, 3), 3, 2, 1, 1, ("nonsquare",)),
        _conv_case(function, N_("one example"), 26, (1, 4, 4, 3), 3, 2, 1, 1, ("batch1",)),
        _conv_case(function, N_("one channel"), 27, (2, 4, 4, 1), 3, 1, 1, 1, ("channel1",)),
    ]


def _pool_cases(function: str) -> list[Case]:
    cases: list[Case] = []
    published = _published(function)
    for mode in ("max", "average"):
        cases += [c for c in published if c.fixed["mode"] == mode]
        cases += [
            _pool_case(function, N_("base"), 31, (2, 4, 4, 2), 2, 2, mode, ("stride",)),
            _pool_case(function, N_("overlapping windows (f 3, stride 1)"), 32, (2, 4, 4, 2), 3, 1,
                       mode, ("overlap",) + (("avg3",) if mode == "average" else ())),
            _pool_case(function, N_("3x3 windows"), 33, (2, 6, 6, 2), 3, 3, mode,
                       ("stride",) + (("avg3",) if mode == "average" else ())),
            _pool_case(function, N_("stride with a remainder"), 34, (2, 5, 5, 2), 2, 2, mode,
                       ("stride", "remainder")),
            _pool_case(function, N_("non-square"), 35, (2, 4, 6, 2), 2, 2, mode,
                       ("stride", "nonsquare")),
            _pool_case(function, N_("one example"), 36, (1, 4, 4, 2), 2, 2, mode,
                       ("stride", "batch1")),
            _pool_case(function, N_("one channel"), 37, (2, 4, 4, 1), 2, 2, mode,
                       ("stride", "channel1")),
        ]
    if function == "pool_backward":
        cases.append(_pool_case(function, N_("tied values"), 38, (2, 4, 4, 2), 2, 2, "max",
                                ("stride", "ties"), kind="ints"))
    return cases


def _mask_cases() -> list[Case]:
    def case(label, x, tags, published=False):
        return Case("create_mask_from_window", label, None, (), {"x": x}, frozenset(tags),
                    published)

    return _published("create_mask_from_window") + [
        case(N_("2x2"), [[0.5, -1.5], [2.5, 1.0]], ()),
        case(N_("all negative"), [[-3.0, -1.0], [-2.0, -5.0]], ()),
        case(N_("non-square"), [[0.0, 4.0, 1.0], [2.0, -1.0, 3.0]], ("nonsquare",)),
        case(N_("tied maxima"), [[1.0, 3.0], [3.0, 0.0]], ("ties",)),
    ]


def _distribute_cases() -> list[Case]:
    def case(label, dz, shape, tags, published=False):
        return Case("distribute_value", label, None, (), {"dz": dz, "shape": shape},
                    frozenset(tags), published)

    return _published("distribute_value") + [
        case(N_("3x3"), 3.0, (3, 3), ("avg3",)),
        case(N_("non-square"), 1.5, (2, 3), ("nonsquare",)),
        case(N_("negative"), -0.75, (2, 2), ()),
    ]


def cases_for(function: str) -> list[Case]:
    """All cases of one function, published ones first."""
    if function == "zero_pad":
        return _zero_pad_cases()
    if function == "conv_single_step":
        return _conv_single_step_cases()
    if function in ("conv_forward", "conv_backward"):
        return _conv_cases(function)
    if function in ("pool_forward", "pool_backward"):
        return _pool_cases(function)
    if function == "create_mask_from_window":
        return _mask_cases()
    if function == "distribute_value":
        return _distribute_cases()
    raise ValueError(f"function: expected one of {FUNCTIONS}, got {function!r}")
