"""``cnnstep export``: a saved model as an ONNX graph, a Keras ``.keras`` file, a PyTorch
``torch.export`` program, or its weights as PyTorch/Keras safetensors."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnstep.cli.options import add_model_argument

# Place in `cnnstep --help`: after check.
ORDER = 60

SUFFIX = {"onnx": ".onnx", "keras": ".keras", "torch": ".pt2", "safetensors": ".safetensors"}

#: What each format's file is, for the last line.
WHAT = {
    "onnx": "ONNX graph (input 'input': float32 NHWC images)",
    "keras": "Keras model (keras.models.load_model reads it; input float32 NHWC images)",
    "torch": "PyTorch program (torch.export.load(path).module(); input float32 NHWC images)",
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a saved model to ONNX, Keras or PyTorch, or its weights to safetensors",
        description="Write a model trained by cnnstep in a format other tools read, with no "
                    "code of yours: an ONNX graph (ONNX Runtime), a .keras file "
                    "(keras.models.load_model, any backend), a PyTorch torch.export program "
                    "(.pt2: torch.export.load), all taking float32 NHWC images and giving class "
                    "probabilities; or a safetensors file of weights named and laid out for "
                    "PyTorch or Keras.",
    )
    add_model_argument(p)
    p.add_argument("--format", choices=sorted(SUFFIX), required=True, help="what to write")
    p.add_argument("--layout", choices=["torch", "keras"],
                   help="tensor names and layout of a safetensors file (default: torch)")
    p.add_argument("--out", metavar="PATH",
                   help="output file (default: MODEL with the format's suffix)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(handler=run)


def _writer(args: argparse.Namespace) -> tuple[Callable[[Any, Path], Any], str]:
    """The function writing ``args.format`` and what it writes."""
    if args.format == "onnx":
        from cnnstep.interop.onnx_export import to_onnx

        return to_onnx, WHAT["onnx"]
    if args.format == "keras":
        from cnnstep.interop.keras_export import pick_keras_backend, save_keras

        pick_keras_backend()  # this process is ours: Keras on a backend that is installed
        return save_keras, WHAT["keras"]
    if args.format == "torch":
        from cnnstep.interop.torch_export import save_torch

        return save_torch, WHAT["torch"]
    from cnnstep.interop.weights import save_weights

    layout = args.layout or "torch"
    return (lambda model, out: save_weights(model, out, layout=layout)), \
        f"weights in {layout} layout"


def run(args: argparse.Namespace) -> int:
    from cnnstep.errors import UserError
    from cnnstep.interop.extras import MissingExtraError
    from cnnstep.nn.model import load_model

    if args.layout is not None and args.format != "safetensors":
        raise UserError("--layout applies to --format safetensors only")
    source = Path(args.model)
    out = Path(args.out) if args.out else source.with_suffix(SUFFIX[args.format])
    if args.format == "keras" and out.suffix != ".keras":
        raise UserError(f"--out {out}: a Keras model file must end in .keras (Keras reads no "
                        "other)")
    if out.exists() and out.resolve() == source.resolve():
        raise UserError(f"--out {out} is the model file itself; choose another path")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file path")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists; use --force to replace it")
    model = load_model(source)
    try:
        write, what = _writer(args)
        write(model, out)
    except MissingExtraError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(f"{source}: cannot export: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: {what}")
    return 0
