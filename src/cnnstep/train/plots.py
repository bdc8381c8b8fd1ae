"""PNG plots of a training run (needs the ``plot`` extra: matplotlib).

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global
backend switch) and written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.errors import UserError
from cnnstep.fileio import atomic_write


def _figure(width: float, height: float, tiles: bool = False) -> Any:
    """A figure; ``tiles`` for a grid of images without axes, laid out by fixed margins
    (the constrained layout takes 1.2 s to place a grid of 33 titled images, a fifth of a
    default ``cnnstep train``; the tiles need no text measured to fit)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError("plots need matplotlib: pip install 'cnnstep[plot]'") from exc
    fig = Figure(figsize=(width, height), dpi=100, layout=None if tiles else "constrained")
    if tiles:
        top = 1 - 0.45 / height  # room for the title above the grid
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top, wspace=0.15,
                            hspace=0.45)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    return path


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of examples of class ``i`` predicted as ``j``, shape (n, n)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and accuracy (training and validation) per epoch, side by side.

    Records of runs from before validation metrics were named ``val_*`` (``test_accuracy``)
    are drawn too.
    """
    epochs = [h["epoch"] for h in history]
    fig = _figure(9, 3.5)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o", label="train")
    val_loss = [h.get("val_loss") for h in history]
    if any(v is not None for v in val_loss):
        ax_loss.plot(epochs, [np.nan if v is None else v for v in val_loss], marker="o",
                     label="validation")
        ax_loss.legend()
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], marker="o", label="train")
    val = [h.get("val_accuracy", h.get("test_accuracy")) for h in history]
    if any(v is not None for v in val):
        ax_acc.plot(epochs, [np.nan if v is None else v for v in val], marker="o",
                    label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, Path(path))


def plot_confusion(cm: np.ndarray, class_names: list[str], path: str | Path) -> Path:
    """The confusion matrix as a heat map with counts."""
    n = cm.shape[0]
    size = min(3 + 0.5 * n, 14)
    fig = _figure(size, size * 0.9)
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ticks = np.arange(n)
    ax.set_xticks(ticks, class_names, rotation=90 if n > 10 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true",
           title=f"Confusion matrix (accuracy {np.trace(cm) / max(cm.sum(), 1):.2%})")
    if n <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if cm[i, j] > threshold else "black")
    return _save(fig, Path(path))


def _grid(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def plot_filters(W: np.ndarray, path: str | Path) -> Path:
    """First-layer filters ``W`` of shape (f_h, f_w, n_C_prev, n_C), one tile per filter.

    RGB inputs are shown in colour, others channel-averaged in grey; each tile is scaled on its
    own range.
    """
    n = W.shape[3]
    rows, cols = _grid(n)
    fig = _figure(1.2 * cols + 0.5, 1.2 * rows + 0.5, tiles=True)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= n:
            continue
        w = W[:, :, :, k]
        w = (w - w.min()) / (np.ptp(w) or 1.0)
        if w.shape[2] == 3:
            ax.imshow(w, interpolation="nearest")
        else:
            ax.imshow(w.mean(axis=2), cmap="gray", interpolation="nearest")
        ax.set_title(str(k), fontsize=8)
    fig.suptitle(f"First-layer filters {W.shape[0]}x{W.shape[1]}")
    return _save(fig, Path(path))


#: The most maps of one convolution ``feature_maps.png`` shows (the title says when it shows
#: fewer than there are).
MAX_MAPS = 64


def plot_feature_maps(model: Any, image: np.ndarray, path: str | Path,
                      title: str = "") -> Path:
    """The input image and the output of every convolution of ``model`` for it.

    Every map is shown up to :data:`MAX_MAPS` per convolution; the figure's title says how
    many of how many each row of tiles shows.

    Parameters
    ----------
    model : Sequential
    image : ndarray of shape (n_H, n_W, n_C)
        Shown in colour when it has 3 channels.
    """
    from cnnstep.nn.layers import Conv2D

    x = image[None].astype(model.dtype)
    maps = []
    for layer in model.layers:
        x = layer.forward(x)
        if isinstance(layer, Conv2D):
            maps.append((layer.describe(), x[0]))
    shown = [min(m.shape[2], MAX_MAPS) for _, m in maps]
    cols = max([8, *[min(s, 16) for s in shown]])
    rows = 1 + sum(int(np.ceil(s / cols)) for s in shown)
    fig = _figure(1.1 * cols, 1.2 * rows + 0.6, tiles=True)
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(np.clip(image, 0, 1) if image.shape[2] == 3 else image[:, :, 0], cmap="gray")
    ax.set_title("input", fontsize=8)
    ax.set_axis_off()
    row = 1
    counts = []
    # Numbered by position: two convolutions may be described alike (Conv2D(4, 3x3) twice).
    for number, ((name, fmap), count) in enumerate(zip(maps, shown), start=1):
        total = fmap.shape[2]
        counts.append(f"conv {number}: {'all ' if count == total else ''}{count}"
                      f"{f' of {total}' if count < total else ''} maps")
        for k in range(count):
            ax = fig.add_subplot(grid[row + k // cols, k % cols])
            ax.imshow(fmap[:, :, k], cmap="viridis")
            ax.set_title(f"{name.split('(')[0]} {number} #{k}", fontsize=6)
            ax.set_axis_off()
        row += int(np.ceil(count / cols))
    heading = title or "Feature maps (pre-activation outputs of each convolution)"
    fig.suptitle(heading + ("\n" + "; ".join(counts) if counts else ""), fontsize=9)
    return _save(fig, Path(path))


def write_all(out_dir: str | Path, model: Any, history: list[dict], x_test: np.ndarray,
              y_test: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> list[Path]:
    """All plots of a run: ``curves.png``, ``confusion_matrix.png``, ``filters.png``,
    ``feature_maps.png``; returns their paths."""
    from cnnstep.nn.layers import Conv2D

    out = Path(out_dir)
    paths = [plot_curves(history, out / "curves.png")]
    if len(y_test):
        cm = confusion_matrix(y_test, y_pred, len(class_names))
        paths.append(plot_confusion(cm, class_names, out / "confusion_matrix.png"))
    first = next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)
    if first is not None:
        paths.append(plot_filters(first.params["W"], out / "filters.png"))
    if len(x_test):
        label = class_names[int(y_test[0])] if len(y_test) else "?"
        paths.append(plot_feature_maps(
            model, x_test[0], out / "feature_maps.png",
            title=f"Feature maps of test image 0 (class {label}, predicted "
                  f"{class_names[int(y_pred[0])]})"))
    return paths
