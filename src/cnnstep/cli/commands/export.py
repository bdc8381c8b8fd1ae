"""``cnnstep export``: a saved model as an ONNX graph or as PyTorch/Keras safetensors weights."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnstep.cli.options import add_model_argument

# Place in `cnnstep --help`: after check.
ORDER = 60

SUFFIX = {"onnx": ".onnx", "safetensors": ".safetensors"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a saved model to ONNX, or its weights to PyTorch/Keras safetensors",
        description="Write a model trained by cnnstep in a format other tools read: an ONNX "
                    "graph (ONNX Runtime; input 'input', float32 NHWC images) or a safetensors "
                    "file of weights named and laid out for PyTorch (the twin nn.Sequential's "
                    "state dict) or Keras.",
    )
    add_model_argument(p)
    p.add_argument("--format", choices=sorted(SUFFIX), required=True, help="what to write")
    p.add_argument("--layout", choices=["torch", "keras"],
                   help="tensor names and layout of a safetensors file (default: torch)")
    p.add_argument("--out", metavar="PATH",
                   help="output file (default: MODEL with the format's suffix)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cnnstep.errors import UserError
    from cnnstep.interop.extras import MissingExtraError
    from cnnstep.nn.model import load_model

    if args.layout is not None and args.format != "safetensors":
        raise UserError("--layout applies to --format safetensors only")
    source = Path(args.model)
    out = Path(args.out) if args.out else source.with_suffix(SUFFIX[args.format])
    if out.exists() and out.resolve() == source.resolve():
        raise UserError(f"--out {out} is the model file itself; choose another path")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file path")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists; use --force to replace it")
    model = load_model(source)
    try:
        if args.format == "onnx":
            from cnnstep.interop.onnx_export import to_onnx

            to_onnx(model, out)
            what = "ONNX graph (input 'input': float32 NHWC images)"
        else:
            from cnnstep.interop.weights import save_weights

            layout = args.layout or "torch"
            save_weights(model, out, layout=layout)
            what = f"weights in {layout} layout"
    except MissingExtraError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"{source}: cannot export: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: {what}")
    return 0
