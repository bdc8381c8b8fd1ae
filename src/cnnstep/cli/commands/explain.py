"""``cnnstep explain``: trace one operation on a random input and write it as .html or .txt."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep import explain
from cnnstep.cli.options import non_negative_int, pad_value, positive_int
from cnnstep.errors import UserError
from cnnstep.explain.trace import check_size
from cnnstep.fileio import atomic_write

# Place in `cnnstep --help`.
ORDER = 60

FORMATS = (".html", ".txt", ".gif", ".png")
OPERATIONS = ("pad", "conv", "pool", "conv-backward", "pool-backward")
# `explain pad` with no --pad shows one ring of zeros (padding by 0 would show nothing).
PAD_DEFAULTS = {"pad": 1}


def _steps(args: argparse.Namespace) -> int:
    """How many steps the trace will have, from the shapes alone (nothing is allocated)."""
    from cnnstep.ops.shapes import conv_output_shape, pool_output_shape

    h, w, c = args.input
    if min(h, w, c) < 1:
        raise ValueError(f"--input: expected three positive sizes H W C, got {h} {w} {c}")
    if args.op == "pad":
        return h * w * c
    if args.op in ("conv", "conv-backward"):
        hp = {"stride": args.stride, "pad": args.pad, "dilation": args.dilation}
        return math.prod(conv_output_shape((h, w, c), (args.f, args.f, c, args.filters), hp,
                                           "explain"))
    hp = {"f": args.f, "stride": args.stride, "pad": args.pad}
    return math.prod(pool_output_shape((h, w, c), hp, "explain"))


def _trace(args: argparse.Namespace) -> explain.Trace:
    if args.pad is None:
        args.pad = PAD_DEFAULTS.get(args.op, 0)
    # refused before the input is drawn: --input 30000 30000 3 would be gigabytes
    check_size(_steps(args), f"explain {args.op}")
    rng = np.random.default_rng(args.seed)
    h, w, c = args.input
    A = np.round(rng.standard_normal((1, h, w, c)), 2)
    if args.op == "pad":
        return explain.zero_pad(A, args.pad)
    if args.op in ("conv", "conv-backward"):
        W = np.round(rng.standard_normal((args.f, args.f, c, args.filters)), 2)
        b = np.round(rng.standard_normal((1, 1, 1, args.filters)), 2)
        hp = {"stride": args.stride, "pad": args.pad, "dilation": args.dilation}
        if args.op == "conv":
            return explain.conv_forward(A, W, b, hp)
        Z = explain.conv_forward(A, W, b, hp).output
        dZ = np.round(rng.standard_normal(Z.shape), 2)
        return explain.conv_backward(dZ, (A, W, b, hp))
    hp = {"f": args.f, "stride": args.stride, "pad": args.pad}
    if args.op == "pool":
        return explain.pool_forward(A, hp, mode=args.mode)
    out = explain.pool_forward(A, hp, mode=args.mode).output
    dA = np.round(rng.standard_normal(out.shape), 2)
    return explain.pool_backward(dA, (A, hp), mode=args.mode)


def _shapes(args: argparse.Namespace) -> int:
    from cnnstep.explain.shapes import describe_shapes
    from cnnstep.nn.architectures import ARCHITECTURES, build_architecture
    from cnnstep.nn.model import load_model

    if args.model and args.arch:
        raise UserError("explain shapes: give a MODEL file or --arch, not both")
    if args.model:
        model = load_model(args.model)
    else:
        arch = args.arch or "default"
        if arch not in ARCHITECTURES:
            raise UserError(f"--arch {arch}: not a built-in architecture "
                            f"({', '.join(ARCHITECTURES)})")
        try:
            model = build_architecture(arch, tuple(args.input), args.classes)
        except ValueError as exc:
            raise UserError(f"--arch {arch} does not fit --input {' '.join(map(str, args.input))}: "
                            f"{exc}") from None
    print(describe_shapes(model), end="")
    return 0


def _model_page(args: argparse.Namespace) -> int:
    from cnnstep.explain.page import model_page_from_files
    from cnnstep.nn.model import load_model

    if not args.model:
        raise UserError(f"explain {args.op}: give an image after the model file "
                        "(cnnstep explain MODEL.npz IMAGE --out page.html)")
    if not args.out or Path(args.out).suffix.lower() != ".html":
        raise UserError("explain MODEL IMAGE: --out must name an .html file")
    model = load_model(args.op)
    try:
        page = model_page_from_files(model, args.model)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    atomic_write(args.out, lambda fh: fh.write(page.encode("utf-8")))
    print(f"{args.model} through {args.op}: {len(model.layers)} layers written to {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.op == "shapes":
        return _shapes(args)
    if args.op not in OPERATIONS:
        if args.op.endswith(".npz") or Path(args.op).is_file():
            return _model_page(args)
        raise UserError(f"explain: expected one of {', '.join(OPERATIONS)}, shapes, or a model "
                        f"file, got {args.op!r}")
    if args.model:
        raise UserError(f"explain {args.op}: MODEL is only for 'explain shapes'")
    suffix = Path(args.out).suffix.lower() if args.out else ".txt"
    if suffix not in FORMATS:
        raise UserError(f"explain: --out must end in one of {', '.join(FORMATS)}, "
                        f"got {args.out!r}")
    try:
        trace = _trace(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if suffix in (".gif", ".png"):
        from cnnstep.explain import gif

        try:
            if suffix == ".gif":
                gif.save_gif(trace, args.out)
                print(f"{trace.operation}: {len(trace.steps)} frames written to {args.out}")
            else:
                names = gif.save_pngs(trace, args.out)
                print(f"{trace.operation}: {len(names)} frames written to {names[0]} ...")
        except ImportError as exc:
            raise UserError(str(exc)) from None
        return 0
    text = explain.render_html(trace) if suffix == ".html" else explain.render_text(trace)
    if not args.out:
        print(text, end="")
        return 0
    atomic_write(args.out, lambda fh: fh.write(text.encode("utf-8")))
    print(f"{trace.operation}: {len(trace.steps)} steps written to {args.out}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain", help="see each step of an operation, computed by running it",
        description="Trace zero padding, convolution or pooling (forward or backward) on a "
        "random input and write every step as an interactive page (.html), an animation (.gif), "
        "frames (.png) or text (.txt). 'explain shapes' shows how each layer's output size comes "
        "out and the same padding in PyTorch, TensorFlow/Keras and ONNX.")
    parser.add_argument("op", metavar="WHAT",
                        help=f"{', '.join(OPERATIONS)}, shapes [MODEL], or MODEL IMAGE (a model "
                             "file and an image: every layer's output as one .html page)")
    parser.add_argument("model", nargs="?", metavar="MODEL|IMAGE",
                        help="shapes: a model.npz (instead of --arch); after MODEL: the image")
    parser.add_argument("--arch", metavar="NAME",
                        help="shapes: a built-in architecture (default: default)")
    parser.add_argument("--classes", type=positive_int, default=10, metavar="N",
                        help="shapes: the number of classes --arch is built for")
    parser.add_argument("--input", nargs=3, type=positive_int, default=(5, 5, 1),
                        metavar=("H", "W", "C"),
                        help="height, width and channels of the random input (shapes: of "
                             "--arch's input)")
    parser.add_argument("--filters", type=positive_int, default=1, metavar="N",
                        help="conv: the number of filters (output channels)")
    parser.add_argument("--f", type=positive_int, default=3, metavar="N",
                        help="conv, pool: the window's size (N x N)")
    parser.add_argument("--stride", type=positive_int, default=1, metavar="N",
                        help="conv, pool: the window's step")
    parser.add_argument("--dilation", type=positive_int, default=1, metavar="N",
                        help="conv: the spacing of the window's taps (1: next to each other)")
    parser.add_argument("--pad", type=pad_value, metavar="P",
                        help='zero padding: an integer, "same" or "valid" (conv, pool) '
                             "(default: 1 for pad, 0 otherwise)")
    parser.add_argument("--mode", choices=("max", "average"), default="max",
                        help="pool, pool-backward: the pooling's reduction")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                        help="seed of the random input, weights and gradients")
    parser.add_argument("--out", metavar="FILE",
                        help="output file (.html, .txt, .gif, or .png for one file per step); "
                             "text on stdout if omitted")
    parser.set_defaults(handler=run)
