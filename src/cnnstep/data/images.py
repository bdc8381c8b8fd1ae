"""Reading image files into arrays (needs the ``images`` extra: Pillow)."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.errors import DataError, UserError
from cnnstep.fileio import open_regular

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
#: The only decoders Pillow may use: whatever a file's name or first bytes claim, nothing else
#: (no EPS/PS/PDF, which Pillow hands to Ghostscript) ever reads it.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
#: Modes whose values are 16-bit integers (PNG's 16-bit grayscale): scaled by 65535, not clipped.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def pillow() -> Any:
    """``(PIL.Image, PIL.ImageOps)``; a one-line UserError naming the extra when missing."""
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError(
            "reading images needs Pillow: pip install 'cnnstep[images]'"
        ) from exc
    return Image, ImageOps


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _reading(path: str | Path, Image: Any) -> Iterator[None]:
    """Pillow's errors while reading ``path`` as one-line :class:`DataError` messages."""
    try:
        yield
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except Image.UnidentifiedImageError as exc:
        raise DataError(f"{path}: not a readable image (not a PNG, JPEG, BMP or GIF file)") from exc
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: refused, {_one_line(exc)}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise DataError(f"{path}: not a readable image ({_one_line(exc)})") from exc


def load_image(
    path: str | Path, size: tuple[int, int] | None = None, channels: int | None = None
) -> np.ndarray:
    """Read one image file as float32 pixels in [0, 1].

    Parameters
    ----------
    path : str or Path
        A PNG, JPEG, BMP or GIF file (the first frame of an animation).
    size : (n_H, n_W), optional
        Resize to this height and width (bilinear); keep the file's size when omitted.
    channels : {1, 3}, optional
        Convert to grayscale (1) or RGB (3); when omitted, grayscale files stay grayscale and
        everything else becomes RGB. Transparency is dropped.

    Returns
    -------
    ndarray of shape (n_H, n_W, channels), float32
    """
    Image, ImageOps = pillow()
    path = Path(path)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    with _reading(path, Image), open_regular(path) as f, \
            Image.open(f, formats=IMAGE_FORMATS) as img:
        img.load()
        # Phone photos store their rotation in EXIF; apply it so the image is upright.
        img = ImageOps.exif_transpose(img) or img
        if channels is None:
            channels = 1 if img.mode in ("1", "L", *_WIDE_MODES) else 3
        if img.mode in _WIDE_MODES:
            arr = _wide_pixels(img, path, size, Image)
            return np.repeat(arr, channels, axis=2) if channels == 3 else arr
        img = img.convert("L" if channels == 1 else "RGB")
        if size is not None and (img.height, img.width) != tuple(size):
            img = img.resize((int(size[1]), int(size[0])), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _wide_pixels(img: Any, path: Path, size: tuple[int, int] | None, Image: Any) -> np.ndarray:
    """A 16-bit grayscale image as (n_H, n_W, 1) float32 in [0, 1]: its values over 65535
    (Pillow's conversion to 8 bits would clip them at 255, making every pixel white)."""
    raw = np.asarray(img)
    if raw.size and (raw.min() < 0 or raw.max() > 65535):
        raise DataError(f"{path}: pixel values {raw.min()}..{raw.max()} do not fit 16 bits "
                        f"(mode {img.mode})")
    arr = raw.astype(np.float32) / 65535.0
    if size is not None and arr.shape != tuple(size):
        arr = np.asarray(Image.fromarray(arr, mode="F").resize(
            (int(size[1]), int(size[0])), Image.BILINEAR), dtype=np.float32)
    return arr[:, :, None]


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file as displayed (EXIF rotation applied), read from its
    header only."""
    Image, _ = pillow()
    with _reading(path, Image), open_regular(path) as f, \
            Image.open(f, formats=IMAGE_FORMATS) as img:
        # EXIF orientations 5-8 rotate by 90 degrees: height and width swap.
        if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            return int(img.width), int(img.height)
        return int(img.height), int(img.width)
