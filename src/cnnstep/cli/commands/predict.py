"""``cnnstep predict``: the class of each image file according to a saved model."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

# Place in `cnnstep --help`.
ORDER = 40

def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict the class of image files with a saved model",
        description="Print one line per image: its path, the predicted class and its "
                    "probability. Images are converted to the model's input size and channels.",
    )
    p.add_argument("model", metavar="MODEL", help="a model.npz written by cnnstep train")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG/JPEG/BMP/GIF files")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cnnstep.data.images import load_image
    from cnnstep.nn.model import load_model

    model = load_model(args.model)
    h, w, c = model.input_shape
    if c not in (1, 3):
        from cnnstep.errors import UserError

        raise UserError(f"{args.model} takes {c}-channel inputs; only 1 or 3 can be read "
                        "from image files")
    x = np.stack([load_image(path, size=(h, w), channels=c) for path in args.images])
    probs = model.predict_proba(x)
    names = model.class_names or [str(k) for k in range(probs.shape[1])]
    for path, p in zip(args.images, probs):
        k = int(p.argmax())
        print(f"{path}\t{names[k] if k < len(names) else k}\t{p[k]:.4f}")
    return 0
