"""``cnnstep evaluate``: accuracy and per-class precision/recall of a saved model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from cnnstep.cli.options import add_data_arguments, add_model_argument, check_shapes, load_dataset
from cnnstep.cli.text import for_terminal
from cnnstep.data.builtin import BUILTINS
from cnnstep.errors import UserError

# Place in `cnnstep --help`.
ORDER = 30

def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy and per-class precision/recall of a saved model",
        description="Score MODEL on the test part of a data set (by default the one it was "
                    "trained on); a file holding only a test part (test_set_x/test_set_y, "
                    "x_test/y_test, t10k-* files, a folder holding only test/) is scored whole.",
    )
    add_model_argument(p)
    add_data_arguments(p, "default: the data the model was trained on")
    p.add_argument("--all", action="store_true",
                   help="score every image of the data set (train and test parts), e.g. a "
                        "folder that is all test data")
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


def labels_by_name(model: Any, data_names: list[str], y: np.ndarray, source: str) -> np.ndarray:
    """``y`` (indices into ``data_names``) as indices of the model's classes, matched by name.

    A folder of ``cat``/``dog`` scored by a model of ``dog``/``cat`` must not compare index to
    index. Names the model does not know are an error listing them.
    """
    if not model.class_names or not data_names or list(model.class_names) == list(data_names):
        return y
    index = {name: k for k, name in enumerate(model.class_names)}
    unknown = [n for k, n in enumerate(data_names) if n not in index and (y == k).any()]
    if unknown:
        raise UserError(
            f"{source}: class{'es' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"unknown to the model, which knows {', '.join(map(repr, model.class_names))}"
        )
    mapping = np.array([index.get(n, -1) for n in data_names], dtype=np.int64)
    return mapping[y]


def run(args: argparse.Namespace) -> int:
    from cnnstep.nn.model import load_model
    from cnnstep.train.plots import confusion_matrix

    model, meta = load_model(args.model, with_metadata=True)
    data_spec = args.data or meta.get("data")
    if not data_spec:
        raise UserError(f"{args.model} does not record its training data; pass --data")
    if not isinstance(data_spec, str):
        raise UserError(f"{args.model}: its metadata names data {data_spec!r}; pass --data")
    if not args.data:
        # a path written in a model file decides what is read: say so
        print(f"data: {for_terminal(data_spec)} (recorded in {args.model}; choose other data "
              "with --data)", file=sys.stderr)
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
    # a file of only test images (test_set_x/test_set_y, x_test/y_test, t10k-*, test/) is
    # read as it is: all of it is scored
    data = load_dataset(data_spec, test_data, image_size, test_fraction, allow_test_only=True)
    x, y = data.x_test, data.y_test
    if args.all:
        x, y = np.concatenate([data.x_train, x]), np.concatenate([data.y_train, y])
    if not len(y):
        raise UserError(f"{data.name} has no test images to evaluate on")
    y = labels_by_name(model, data.class_names, y, data.name)  # before counting classes
    check_shapes(model, data, args.model)
    names = model.class_names or data.class_names
    result, y_pred = model.evaluate(x, y, return_predictions=True)  # one pass over x
    n = max(len(names), model.n_classes)
    cm = confusion_matrix(y, y_pred, n)
    precision, recall, support = per_class_scores(cm)
    part = f"all {len(y)} images, --all" if args.all else f"{len(y)} test images"
    print(f"{args.model} on {data.name} ({part}): "
          f"accuracy {result['accuracy']:.2%}, loss {result['loss']:.4f}")
    width = max(5, *(len(for_terminal(c)) for c in names))
    print(f"{'class':<{width}}  precision   recall  support")
    for k in range(n):
        if support[k] == 0 and cm[:, k].sum() == 0:
            continue
        label = for_terminal(names[k]) if k < len(names) else str(k)
        p = "-" if np.isnan(precision[k]) else f"{precision[k]:.2%}"
        r = "-" if np.isnan(recall[k]) else f"{recall[k]:.2%}"
        print(f"{label:<{width}}  {p:>9}  {r:>7}  {support[k]:>7}")
    return 0
