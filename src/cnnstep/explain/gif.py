"""Animated GIF and PNG frames of a trace (Pillow, the ``explain`` extra), one frame per step."""

from __future__ import annotations

from typing import Any

import numpy as np

CELL = 28  # pixels per cell: readable numbers, small files


def _pil() -> Any:
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        msg = "GIF/PNG rendering needs Pillow: pip install 'cnnstep[explain]'"
        raise ImportError(msg) from None
    return Image, ImageDraw


def render_frames(trace: Any) -> list:
    """One PIL image per step: channel 0 of example 0's padded input, the window outlined in red,
    numbers in the cells for small inputs (a grey scale otherwise) and the step's value below."""
    Image, ImageDraw = _pil()
    grid = np.asarray(trace.padded[0, :, :, 0], dtype=float)
    lo, hi = float(grid.min()), float(grid.max())
    numbers = grid.size <= 144
    rows, cols = grid.shape
    base = Image.new("RGB", (cols * CELL + 1, rows * CELL + 20), "white")
    draw = ImageDraw.Draw(base)
    for r in range(rows):
        for c in range(cols):
            t = 0.5 if hi == lo else (grid[r, c] - lo) / (hi - lo)
            shade = int(255 - 110 * t)
            box = (c * CELL, r * CELL, (c + 1) * CELL, (r + 1) * CELL)
            draw.rectangle(box, fill=(shade, shade, 255), outline=(190, 190, 190))
            if numbers:
                draw.text((c * CELL + 2, r * CELL + 8), f"{grid[r, c]:.2g}", fill="black")
    frames = []
    for n, s in enumerate(trace.steps):
        frame = base.copy()
        d = ImageDraw.Draw(frame)
        d.rectangle((s.horiz_start * CELL, s.vert_start * CELL, s.horiz_end * CELL,
                     s.vert_end * CELL), outline=(220, 0, 0), width=3)
        d.text((2, rows * CELL + 4), f"{n + 1}/{len(trace.steps)} ({s.row},{s.column},"
               f"{s.channel}) = {s.value:.4g}", fill="black")
        frames.append(frame)
    return frames


def save_gif(trace: Any, path: str, ms_per_step: int = 400) -> None:
    """Write the trace as an animated GIF with exactly one frame per step."""
    frames = render_frames(trace)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_step,
                   loop=0, optimize=False, disposal=1)


def save_pngs(trace: Any, path: str) -> list[str]:
    """Write one PNG per step: ``path`` with ``-001``, ``-002``... before the extension."""
    stem, _, ext = path.rpartition(".")
    names = []
    for n, frame in enumerate(render_frames(trace)):
        names.append(f"{stem}-{n + 1:03d}.{ext}")
        frame.save(names[-1])
    return names
