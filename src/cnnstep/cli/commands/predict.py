"""``cnnstep predict``: the class of each image file according to a saved model.

It keeps going past an image it cannot read (its line says why; exit 1 at the end), takes
folders and glob patterns, prints the top K classes as text, CSV or JSON, and warns when an
image is far from what the model was trained on (much smaller than its input, or pixel
statistics far from the training data's, e.g. an inverted digit).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.cli.options import add_model_argument, positive_int
from cnnstep.cli.text import csv_cell, for_terminal
from cnnstep.errors import UserError

# Place in `cnnstep --help`.
ORDER = 40


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict the class of image files with a saved model",
        description="Print one line per image: its path, the predicted class and its "
                    "probability. Images are converted to the model's input size and channels. "
                    "An image that cannot be read gets a line saying why; the exit code is 1 "
                    "if any failed.",
    )
    add_model_argument(p)
    p.add_argument("images", metavar="IMAGE", nargs="+",
                   help="PNG/JPEG/BMP/GIF files, folders (their images, recursively) or glob "
                        "patterns such as 'photos/*.jpg'")
    p.add_argument("--top", type=positive_int, default=1, metavar="N",
                   help="show the N most likely classes")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text",
                   help="output format (text: tab-separated)")
    p.set_defaults(handler=run)


def expand(patterns: list[str]) -> list[Path]:
    """Files named by ``patterns``: files as given, folders' images recursively, globs."""
    from cnnstep.data.images import IMAGE_SUFFIXES

    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{path}: no image files in this folder")
            files += found
        elif path.exists() or not glob.has_magic(pattern):
            files.append(path)  # a missing plain path gets its own error line
        else:
            matched = _glob(pattern)
            if not matched:
                raise UserError(f"{pattern}: matches no file")
            files += [p for p in matched if p.is_file()]
    return files


def _glob(pattern: str) -> list[Path]:
    """The paths ``pattern`` matches, ``**`` included, without entering symbolic links to
    folders (``glob.glob`` follows them, so a link to a parent folder never ends)."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first]) if first else Path(".")
    rest = str(Path(*parts[first:]))
    if not root.is_dir():
        return []
    # pathlib's "**" walks real folders only (it never recurses through a symlink)
    return sorted(p for p in root.glob(rest) if not p.name.startswith("."))


def _unusual(path: Path, pixels: np.ndarray, meta: dict, input_hw: tuple[int, int]) -> str | None:
    """Why ``pixels`` look unlike the training data, or None."""
    from cnnstep.data.images import image_size

    h, w = image_size(path)
    if h * 4 <= input_hw[0] or w * 4 <= input_hw[1]:
        return f"the image is {h}x{w}, far smaller than the model's {input_hw[0]}x{input_hw[1]}"
    mean, spread = meta.get("pixel_mean"), meta.get("pixel_mean_std")
    if (isinstance(mean, (int, float)) and isinstance(spread, (int, float))
            and abs(float(pixels.mean()) - mean) > 4 * spread + 0.05):
        return (f"its mean pixel {pixels.mean():.2f} is far from the training images' "
                f"{mean:.2f} (e.g. inverted colours)")
    return None


# Images read and predicted together: enough for the model's threads, a few MB of pixels.
_GROUP = 256


def run(args: argparse.Namespace) -> int:
    from cnnstep.data.images import load_image
    from cnnstep.errors import DataError
    from cnnstep.nn.model import load_model

    model, meta = load_model(args.model, with_metadata=True)
    shape = model.input_shape
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise UserError(f"{args.model} takes inputs of shape {tuple(shape)}; only images of "
                        "shape (H, W, 1) or (H, W, 3) can be read from image files")
    h, w, c = shape
    files = expand(args.images)
    n_out = model.n_classes
    names = model.class_names or [str(k) for k in range(n_out)]
    top = min(args.top, n_out)
    rows: list[dict] = []
    failed = 0
    for start in range(0, len(files), _GROUP):
        images: list[np.ndarray] = []
        waiting: list[tuple[dict, str | None]] = []  # readable images' rows and notes
        for path in files[start:start + _GROUP]:
            try:
                x = load_image(path, size=(h, w), channels=c)
                note = _unusual(path, x, meta, (h, w))
            except DataError as exc:
                failed += 1
                rows.append({"path": str(path), "error": str(exc)})
                continue
            images.append(x)
            rows.append({"path": str(path)})
            waiting.append((rows[-1], note))
        # One call per group: the model's chunks and threads see many images at once.
        probabilities = model.predict_proba(np.stack(images)) if images else []
        for (row, note), p in zip(waiting, probabilities):
            order = np.argsort(-p, kind="stable")[:top]
            row["top"] = [{"class": names[k], "probability": round(float(p[k]), 4)}
                          for k in order]
            if note:
                row["warning"] = note
    _write(rows, args.format, top)
    if failed:
        print(f"cnnstep: {failed} of {len(files)} images could not be read", file=sys.stderr)
    return 1 if failed else 0


def _write(rows: list[dict], fmt: str, top: int) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=1))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        header = ["path"]
        for i in range(1, top + 1):
            header += [f"class_{i}", f"probability_{i}"]
        writer.writerow([*header, "error", "warning"])
        for row in rows:
            cells = [row["path"]]
            for i in range(top):
                t = row.get("top", [])
                cells += [t[i]["class"], f"{t[i]['probability']:.4f}"] if i < len(t) else ["", ""]
            cells += [row.get("error", ""), row.get("warning", "")]
            writer.writerow([csv_cell(cell) for cell in cells])
        return
    for row in rows:
        path = for_terminal(row["path"])
        if "error" in row:
            print(f"{path}\terror: {for_terminal(row['error'])}")
            continue
        ranked = "\t".join(f"{for_terminal(t['class'])}\t{t['probability']:.4f}"
                           for t in row["top"])
        print(f"{path}\t{ranked}")
        if "warning" in row:
            print(f"cnnstep: warning: {path}: {for_terminal(row['warning'])}; the prediction may "
                  "be meaningless", file=sys.stderr)
