"""Your own model on your own image: every layer's output, as one self-contained HTML page.

The image goes through the model's layers one by one (in their declared order); the page shows
the input (a 3-channel input as one colour image), every feature map of each convolution and
pooling layer (ReLU's maps too), the dense layer's scores and the class probabilities (the
softmax, or the sigmoid of a binary classifier's one logit). Maps are inline PNG images
(Pillow), so the page needs nothing from the network and opens from a file.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from cnnstep.data.images import load_image, pillow
from cnnstep.nn.losses import probabilities

#: Feature maps shown per layer (the first ones); a page with more is slow to open.
MAX_MAPS = 32
#: Shown size of a map, in pixels (maps are scaled up without smoothing).
MAP_PIXELS = 84


def _png(plane: np.ndarray) -> str:
    """A 2-D array (grey) or an (H, W, 3) array (colour) as a base64 PNG: grey maps are scaled
    from their own minimum (black) to maximum (white); colour pixels are shown as they are when
    they lie in [0, 1] (the pixels the model reads), else scaled by their common minimum and
    maximum (so that the channels keep their balance)."""
    Image, _ = pillow()
    lo, hi = float(plane.min()), float(plane.max())
    if plane.ndim == 3 and lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    scaled = np.zeros(plane.shape) if hi == lo else (plane - lo) / (hi - lo)
    img = Image.fromarray(np.uint8(np.round(scaled * 255)), mode="L" if plane.ndim == 2 else "RGB")
    scale = max(1, MAP_PIXELS // max(plane.shape[:2]))
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


def _input(image: np.ndarray) -> str:
    """The input: one colour image for 3 channels, else its maps."""
    if image.ndim != 3 or image.shape[-1] != 3:
        return _maps(image)
    return (f'<div class="maps"><figure><img alt="input" src="data:image/png;base64,'
            f'{_png(image)}"><figcaption>colour [{image.min():.2g}, {image.max():.2g}]'
            "</figcaption></figure></div>")


def _scores(logits: np.ndarray, names: list[str]) -> str:
    probs = probabilities(logits[None].astype(np.float64))[0]
    binary = logits.shape[0] == 1  # one logit, class 1's; class 0 has no score of its own
    scores = [""] * 2 if binary else [f"{v:.3f}" for v in logits]
    if binary:
        scores[1] = f"{logits[0]:.3f}"
    rows = "".join(
        f"<tr><td>{html.escape(names[k])}</td><td>{scores[k]}</td><td>{probs[k]:.3f}</td>"
        f'<td><div class="bar" style="width:{probs[k] * 200:.0f}px"></div></td></tr>'
        for k in np.argsort(-probs))
    kind = "sigmoid" if binary else "softmax"
    return (f"<table><tr><th>class</th><th>score</th><th>{kind}</th><th></th></tr>"
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
    parts = [f"<h2>input {image.shape}</h2>", _input(image)]
    names = list(model.class_names or [str(k) for k in range(model.n_classes)])
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
