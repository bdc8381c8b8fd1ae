"""Files that the documentation's examples read, made in their folder by a page's test-setup
comment (``<!-- test-setup fixtures.model("model.npz") -->``; see ``tests/docs/docs_blocks.py``).

Each is small and quick to make, and made the same way every time (fixed seeds).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORRECT_LEARNER = HERE.parent / "checker" / "check_fixtures" / "correct.py"


def model(path: str = "model.npz", arch: str = "default", input_shape=(28, 28, 1),
          classes: int = 10, trained_on: str | None = None, epochs: int = 1) -> Path:
    """A model file: ``arch`` built for ``input_shape`` and ``classes`` (untrained), or, with
    ``trained_on`` (a built-in data set such as ``"digits"``), trained on it for ``epochs``
    and recording it, so that ``cnnstep evaluate MODEL`` finds its data."""
    from cnnstep.nn.architectures import build_architecture

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if trained_on is None:
        names = [str(k) for k in range(classes)]
        net = build_architecture(arch, tuple(input_shape), classes, seed=0)
        net.class_names = names
        net.save(target)
        return target
    from cnnstep.cli.main import main

    code = main(["train", "--data", trained_on, "--arch", arch, "--epochs", str(epochs),
                 "--threads", "1", "--no-plots", "--out", str(target.parent), "--overwrite"])
    if code != 0:
        raise RuntimeError(f"fixtures.model: training on {trained_on} ended with {code}")
    return target.parent / "model.npz"


def image(path: str = "digit.png", size=(28, 28), channels: int = 1, seed: int = 0) -> Path:
    """A PNG image: a light stroke on a dark background (as MNIST's digits are)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    pixels = np.zeros((h, w, channels), dtype=np.uint8)
    pixels[h // 5: h - h // 5, w // 2 - max(1, w // 14): w // 2 + max(1, w // 14)] = 255
    pixels = np.clip(pixels.astype(int) + rng.integers(0, 30, pixels.shape), 0, 255)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if channels == 1 else "RGB"
    Image.fromarray(pixels.astype(np.uint8).squeeze(), mode=mode).save(target)
    return target


def image_folder(path: str = "photos", classes=("cat", "dog"), per_class: int = 6,
                 size=(16, 16)) -> Path:
    """A folder of labelled RGB pictures, one sub-folder per class."""
    root = Path(path)
    for k, name in enumerate(classes):
        for i in range(per_class):
            image(str(root / name / f"{i}.png"), size=size, channels=3, seed=100 * k + i)
    return root


def learner_file(path: str = "my_functions.py") -> Path:
    """A learner's ``.py`` file with the eight functions written right (all eight pass)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CORRECT_LEARNER, target)
    return target


def learner_notebook(path: str = "my_notebook.ipynb") -> Path:
    """The same eight functions as a Jupyter notebook, one cell each."""
    import nbformat

    source = CORRECT_LEARNER.read_text(encoding="utf-8")
    cells = [nbformat.v4.new_code_cell(chunk.strip()) for chunk in source.split("\n\n\n")
             if chunk.strip()]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(target))
    return target


def npz_data(path: str = "mine.npz", n: int = 60, size=(8, 8), classes: int = 3) -> Path:
    """An ``.npz`` with ``x_train``/``y_train`` (and ``class_names``): learnable blobs."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    x = rng.random((n, *size, 1), dtype=np.float32) * np.float32(0.3)
    for i, c in enumerate(y):
        x[i, :, c * size[1] // classes:(c + 1) * size[1] // classes] += np.float32(0.6)
    target = Path(path)
    np.savez(target, x_train=np.clip(x, 0, 1), y_train=y,
             class_names=np.array([f"class{c}" for c in range(classes)]))
    return target
