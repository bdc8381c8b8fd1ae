"""What ``cnnstep train`` chooses from the data when an option is not given.

A :class:`Recipe` says for which data it is meant (image size, channels, number of examples)
and what it picks: the architecture (a name of :data:`cnnstep.nn.architectures.ARCHITECTURES`),
the learning rate, the batch size and the augmentation (random shifts; left-right flips for
small sets of colour photos, never for grey images such as digits). :data:`RECIPES` are asked
in order; the first that applies wins, and the last applies to anything. Teaching it a new kind
of data, or switching a kind of data to a new architecture, is one entry here.

Why these: small grey digits (MNIST, scikit-learn's 8x8) train well with the small ``default``
network at Adam 5e-3 (the values cnnstep always had). Larger images (the course's 64x64x3 SIGNS
and cat/non-cat) want a deeper network that pools down to 4x4 before its classifier (``conv4``),
a lower rate (at 5e-3 the ``default`` network's ReLUs die on them), smaller batches (a thousand
images are only 17 batches of 64 per epoch) and shifts of about a sixteenth of the image. On the
stand-ins of ``bench/standins.py`` (hands showing 0..5 on photo backgrounds), ``conv4`` at 1e-3
reached 99 % where ``default`` reached 94 % and the batch-normalised ``resnet`` and ``happy``
(40 epochs) 68 % and 53 %. Left-right flips help where the images are few: on three draws of
the cat/non-cat stand-in (209 training images) ``conv4`` reached 86, 90 and 92 % with shifts and
flips, 34, 40 and 70 % with shifts alone (the network often stays at the majority answer); on
three draws of the SIGNS stand-in (1080) 100, 98 and 98 % with flips, 99, 99 and 100 % without,
so larger sets keep shifts alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnstep.nn.architectures import ARCHITECTURES


@dataclass(frozen=True)
class DataShape:
    """What a recipe looks at: one image's shape, the training examples and the classes."""

    height: int
    width: int
    channels: int
    n_train: int
    n_classes: int


@dataclass(frozen=True)
class Recipe:
    """Settings for one kind of data.

    Attributes
    ----------
    name : str
        The kind of data, as the first line of ``cnnstep train`` names it.
    applies : callable
        ``applies(shape) -> bool``.
    arch : str
    lr : float
    batch_size : int
    shift : callable
        ``shift(shape) -> int``: the largest random shift in pixels.
    flip : bool
        Mirror half the training images left to right: for photos (a mirrored cat is a cat, a
        mirrored hand shows the same count), never for digits or letters.
    """

    name: str
    applies: Callable[[DataShape], bool]
    arch: str
    lr: float
    batch_size: int
    shift: Callable[[DataShape], int]
    flip: bool = False

    def augment(self, shape: DataShape) -> dict:
        """The ``augment`` setting this recipe chooses for ``shape``."""
        return {"shift": int(self.shift(shape)), "flip": self.flip}


#: Below this many training images, colour photos are also mirrored (see the module's notes).
FEW = 500


def _larger_shift(d: DataShape) -> int:
    return max(1, max(d.height, d.width) // 16)


RECIPES: list[Recipe] = [
    Recipe("small images", lambda d: max(d.height, d.width) <= 32, arch="default", lr=5e-3,
           batch_size=64, shift=lambda d: max(d.height, d.width) // 14),
    Recipe("few larger colour images", lambda d: d.channels == 3 and d.n_train < FEW,
           arch="conv4", lr=1e-3, batch_size=32, shift=_larger_shift, flip=True),
    Recipe("larger images", lambda d: True, arch="conv4", lr=1e-3, batch_size=32,
           shift=_larger_shift),
]

#: settings a recipe chooses
CHOSEN = ("arch", "lr", "batch_size", "augment")


def recipe_for(shape: DataShape) -> Recipe:
    """The first recipe of :data:`RECIPES` that applies to ``shape``."""
    for recipe in RECIPES:
        if recipe.applies(shape) and recipe.arch in ARCHITECTURES:
            return recipe
    raise LookupError(f"no recipe for {shape}")  # pragma: no cover - the last applies


def choose(settings: dict, shape: DataShape) -> tuple[dict, list[str], Recipe]:
    """``settings`` with what is ``"auto"`` among arch, lr, batch_size and augment chosen.

    Returns
    -------
    settings : dict
    chosen : list of str
        The settings that were chosen here.
    recipe : Recipe
    """
    recipe = recipe_for(shape)
    out, chosen = dict(settings), []
    for key in CHOSEN:
        if out.get(key) == "auto":
            out[key] = recipe.augment(shape) if key == "augment" else getattr(recipe, key)
            chosen.append(key)
    return out, chosen, recipe
