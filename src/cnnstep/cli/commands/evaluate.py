"""``cnnstep evaluate``: accuracy and per-class precision/recall of a saved model."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from cnnstep.cli.options import add_data_arguments, check_shapes, load_dataset
from cnnstep.data.builtin import BUILTINS
from cnnstep.errors import UserError

# Place in `cnnstep --help`.
ORDER = 30

def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy and per-class precision/recall of a saved model",
        description="Score MODEL on the test part of a data set (by default the one it was "
                    "trained on).",
    )
    p.add_argument("model", metavar="MODEL", help="a model.npz written by cnnstep train")
    add_data_arguments(p, "default: the data the model was trained on")
    p.set_defaults(handler=run)


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and support of each class from a confusion matrix (rows: true)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
    return precision, recall, support


def run(args: argparse.Namespace) -> int:
    from cnnstep.nn.model import load_model
    from cnnstep.train.plots import confusion_matrix

    model, meta = load_model(args.model, with_metadata=True)
    data_spec = args.data or meta.get("data")
    if not data_spec:
        raise UserError(f"{args.model} does not record its training data; pass --data")
    if args.data:
        test_data, image_size = args.test_data, args.image_size
        test_fraction = args.test_fraction
        if image_size is None and args.data not in BUILTINS:
            # Images read from files are brought to the size the model takes.
            image_size = tuple(model.input_shape[:2])
    else:  # the model's own data, split the same way
        test_data = args.test_data or meta.get("test_data")
        image_size = args.image_size or meta.get("image_size")
        test_fraction = args.test_fraction or meta.get("test_fraction")
    data = load_dataset(data_spec, test_data, image_size, test_fraction)
    check_shapes(model, data, args.model)
    if not len(data.y_test):
        raise UserError(f"{data.name} has no test images to evaluate on")
    names = model.class_names or data.class_names
    result = model.evaluate(data.x_test, data.y_test)
    y_pred = model.predict(data.x_test)
    n = max(len(names), model.output_shape[-1])
    cm = confusion_matrix(data.y_test, y_pred, n)
    precision, recall, support = per_class_scores(cm)
    print(f"{args.model} on {data.name} ({len(data.y_test)} test images): "
          f"accuracy {result['accuracy']:.2%}, loss {result['loss']:.4f}")
    width = max(5, *(len(str(c)) for c in names))
    print(f"{'class':<{width}}  precision   recall  support")
    for k in range(n):
        if support[k] == 0 and cm[:, k].sum() == 0:
            continue
        label = names[k] if k < len(names) else str(k)
        p = "-" if np.isnan(precision[k]) else f"{precision[k]:.2%}"
        r = "-" if np.isnan(recall[k]) else f"{recall[k]:.2%}"
        print(f"{label:<{width}}  {p:>9}  {r:>7}  {support[k]:>7}")
    return 0
