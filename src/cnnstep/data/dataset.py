"""The in-memory data set every loader returns, and the stratified split they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnstep.errors import DataError


@dataclass
class Dataset:
    """Images and integer labels, split into a training and a test part.

    Attributes
    ----------
    x_train : ndarray of shape (m_train, n_H, n_W, n_C), float32 in [0, 1]
    y_train : ndarray of shape (m_train,), int64 class indices in ``[0, len(class_names))``
    x_test : ndarray of shape (m_test, n_H, n_W, n_C), float32 in [0, 1]
    y_test : ndarray of shape (m_test,), int64
    class_names : list of str
        Display name of each class index.
    name : str
        Where the data came from (a built-in name or a path), for messages and metadata.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 4:
                raise DataError(
                    f"{self.name or 'data set'}: x_{part} must have shape (m, n_H, n_W, n_C), "
                    f"got shape {x.shape}"
                )
            if y.shape != (x.shape[0],):
                raise DataError(
                    f"{self.name or 'data set'}: {x.shape[0]} {part} images but "
                    f"{y.shape[0] if y.ndim else 0} labels"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"{self.name or 'data set'}: train images are {self.x_train.shape[1:]} "
                f"but test images are {self.x_test.shape[1:]}"
            )
        if not self.class_names:
            n = int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1))) + 1
            self.class_names = [str(i) for i in range(n)]
        n_classes = len(self.class_names)
        for part in ("train", "test"):
            y = getattr(self, f"y_{part}")
            if y.size and (y.min() < 0 or y.max() >= n_classes):
                raise DataError(
                    f"{self.name or 'data set'}: {part} labels must lie in [0, {n_classes - 1}] "
                    f"for {n_classes} classes, found labels from {y.min()} to {y.max()}"
                )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(n_H, n_W, n_C)`` of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def check_fraction(value: object, name: str = "test_fraction") -> float:
    """``value`` as a float strictly between 0 and 1; ``ValueError`` naming ``name`` otherwise.

    The one check of a test fraction: the data readers, the built-in data sets and the CLI's
    ``--test-fraction`` all use it.
    """
    try:
        ok = not isinstance(value, bool) and 0.0 < float(value) < 1.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def stratified_split(
    y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/test split, reproducible for a given ``seed``.

    Each class contributes ``round(test_fraction * count)`` examples to the test part (at least
    one when the class has two or more), so class proportions are kept in both parts.

    Parameters
    ----------
    y : ndarray of shape (m,)
        Integer labels.
    test_fraction : float
        Fraction of each class that goes to the test part, in (0, 1).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    train_idx, test_idx : ndarray of shape (m_train,), ndarray of shape (m_test,)
        Sorted indices into ``y``.
    """
    test_fraction = check_fraction(test_fraction)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    test_parts = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        n_test = int(round(test_fraction * idx.size))
        if idx.size >= 2:
            n_test = min(max(n_test, 1), idx.size - 1)
        test_parts.append(idx[:n_test])
    test_idx = np.sort(np.concatenate(test_parts)) if test_parts else np.array([], dtype=np.int64)
    mask = np.ones(y.shape[0], dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx
