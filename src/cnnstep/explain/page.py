"""Your own model on your own image: every layer's output, as one self-contained HTML page.

The image goes through the model's layers one by one (in their declared order); the page shows
the input, every feature map of each convolution and pooling layer (ReLU's maps too), the dense
layer's scores and the softmax. Maps are inline PNG images (Pillow), so the page needs nothing
from the network and opens from a file.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from cnnstep.data.images import load_image, pillow
from cnnstep.nn.losses import softmax

#: Feature maps shown per layer (the first ones); a page with more is slow to open.
MAX_MAPS = 32
#: Shown size of a map, in pixels (maps are scaled up without smoothing).
MAP_PIXELS = 84


def _png(plane: np.ndarray) -> str:
    """A 2-D array as a base64 PNG, scaled from its own minimum (black) to maximum (white)."""
    Image, _ = pillow()
    lo, hi = float(plane.min()), float(plane.max())
    scaled = np.zeros(plane.shape) if hi == lo else (plane - lo) / (hi - lo)
    img = Image.fromarray(np.uint8(np.round(scaled * 255)), mode="L")
    scale = max(1, MAP_PIXELS // max(plane.shape))
    img = img.resize((plane.shape[1] * scale, plane.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _maps(x: np.ndarray) -> str:
    shown = min(x.shape[-1], MAX_MAPS)
    tiles = "".join(
        f'<figure><img alt="map {k}" src="data:image/png;base64,{_png(x[:, :, k])}">'
        f"<figcaption>#{k} [{x[:, :, k].min():.2g}, {x[:, :, k].max():.2g}]</figcaption></figure>"
        for k in range(shown))
    more = f"<p>{x.shape[-1] - shown} more maps not shown.</p>" if shown < x.shape[-1] else ""
    return f'<div class="maps">{tiles}</div>{more}'


def _scores(logits: np.ndarray, names: list[str]) -> str:
    probs = softmax(logits[None].astype(np.float64))[0]
    rows = "".join(
        f"<tr><td>{html.escape(names[k])}</td><td>{logits[k]:.3f}</td><td>{probs[k]:.3f}</td>"
        f'<td><div class="bar" style="width:{probs[k] * 200:.0f}px"></div></td></tr>'
        for k in np.argsort(-probs))
    return ("<table><tr><th>class</th><th>score</th><th>softmax</th><th></th></tr>"
            f"{rows}</table>")


def model_page(model: Any, image: np.ndarray, title: str = "") -> str:
    """The HTML page of ``image`` going through ``model``.

    Parameters
    ----------
    model : Sequential
        Built.
    image : ndarray of shape model.input_shape, float in [0, 1]
    title : str
        Shown at the top (for example the image's file name).

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    if tuple(image.shape) != tuple(model.input_shape):
        raise ValueError(f"image must have the model's input shape {tuple(model.input_shape)}, "
                         f"got {image.shape}")
    x = image[None].astype(model.dtype)
    parts = [f"<h2>input {image.shape}</h2>", _maps(image)]
    n_out = int(model.output_shape[-1])
    names = list(model.class_names or [str(k) for k in range(n_out)])
    for i, layer in enumerate(model.layers):
        x = layer.forward(x)
        parts.append(f"<h2>{i}. {html.escape(layer.describe())} &rarr; {x.shape[1:]}</h2>")
        if x.ndim == 4:
            parts.append(_maps(x[0]))
        elif i == len(model.layers) - 1:
            parts.append(_scores(x[0], names))
        else:
            parts.append(f"<p>{x.shape[1]} values, from {x.min():.3g} to {x.max():.3g}</p>")
    head = html.escape(title or "cnnstep: one image through the model")
    style = ("body{font-family:sans-serif;margin:1em}.maps{display:flex;flex-wrap:wrap;gap:6px}"
             "figure{margin:0;text-align:center;font-size:11px}img{image-rendering:pixelated;"
             "border:1px solid #ccc}.bar{background:#4a7;height:10px}td,th{padding:2px 8px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{head}</title>"
            f"<style>{style}</style></head><body><h1>{head}</h1>{''.join(parts)}</body></html>")


def model_page_from_files(model: Any, image_path: str) -> str:
    """:func:`model_page` for an image file, brought to the model's input size and channels."""
    h, w, c = model.input_shape
    image = load_image(image_path, size=(h, w), channels=c)
    return model_page(model, image, title=f"{image_path} through the model")
