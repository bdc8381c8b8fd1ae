"""Plots of a run (matplotlib): they draw any model, whatever its layers are called."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="needs matplotlib (the plot extra)")

from cnnstep import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential  # noqa: E402
from cnnstep.train.plots import plot_feature_maps, write_all  # noqa: E402


def test_feature_maps_of_two_identically_described_convolutions(tmp_path, monkeypatch):
    # Conv2D(4, 3) -> ReLU -> Conv2D(4, 3): both describe themselves the same way.
    model = Sequential([Conv2D(4, 3), ReLU(), Conv2D(4, 3), MaxPool2D(2), Flatten(), Dense(3)],
                       input_shape=(8, 8, 1), seed=0)
    assert model.layers[0].describe() == model.layers[2].describe()
    titles: list[str] = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.set_title

    def record(self, label, *args, **kwargs):
        titles.append(label)
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", record)
    image = np.random.default_rng(0).random((8, 8, 1)).astype(np.float32)
    path = plot_feature_maps(model, image, tmp_path / "maps.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Conv2D 1 #0" in titles and "Conv2D 2 #3" in titles


def test_write_all_writes_every_plot(tmp_path):
    model = Sequential([Conv2D(2, 3), ReLU(), Flatten(), Dense(2)], input_shape=(6, 6, 1), seed=0)
    x = np.random.default_rng(1).random((4, 6, 6, 1)).astype(np.float32)
    y = np.array([0, 1, 0, 1])
    history = [{"epoch": 1, "loss": 0.7, "train_accuracy": 0.5, "test_accuracy": 0.5,
                "seconds": 0.1}]
    paths = write_all(tmp_path, model, history, x, y, model.predict(x), ["a", "b"])
    assert sorted(p.name for p in paths) == ["confusion_matrix.png", "curves.png",
                                             "feature_maps.png", "filters.png"]


def test_feature_maps_shows_every_map_or_says_how_many(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from cnnstep.train import plots

    model = Sequential([Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2),
                        Conv2D(70, 3, padding="same"), Flatten(), Dense(2)],
                       input_shape=(8, 8, 3), seed=0)
    titles, tiles = [], []
    original_title, original_add = Figure.suptitle, Figure.add_subplot
    monkeypatch.setattr(Figure, "suptitle",
                        lambda self, t, **kw: titles.append(t) or original_title(self, t, **kw))
    monkeypatch.setattr(Figure, "add_subplot",
                        lambda self, *a, **kw: tiles.append(a) or original_add(self, *a, **kw))
    image = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    plots.plot_feature_maps(model, image, tmp_path / "maps.png")
    assert len(tiles) == 1 + 32 + plots.MAX_MAPS  # the input, every map of conv 1, 64 of conv 2
    assert "conv 1: all 32 maps; conv 2: 64 of 70 maps" in titles[0]


def test_curves_read_validation_metrics_old_and_new(tmp_path):
    from cnnstep.train.plots import plot_curves

    new = [{"epoch": 1, "loss": 0.7, "train_accuracy": 0.5, "val_accuracy": 0.6,
            "val_loss": 0.8, "seconds": 0.1}]
    old = [{"epoch": 1, "loss": 0.7, "train_accuracy": 0.5, "test_accuracy": 0.6,
            "seconds": 0.1}]
    for history in (new, old):
        assert plot_curves(history, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
