"""The text of :meth:`cnnstep.nn.model.Sequential.summary`: one row per layer (the layers inside a
container indented under it), then the parameter totals as Keras prints them."""

from __future__ import annotations

from typing import Any

from cnnstep.nn.layers import Layer


def summary_rows(model: Any) -> list[tuple[str, str, str]]:
    """``(layer, output shape, values)`` rows: the input, then each layer and, indented by their
    path (``main.0``), the layers it contains. A layer's count holds its trainable parameters
    and its non-trainable state."""
    rows = [("Input", str((None, *(model.input_shape or ()))), "0")]

    def add(layer: Layer, indent: str) -> None:
        n = sum(a.size for kind in (layer.params, layer.state) for a in kind.values())
        rows.append((indent + layer.describe(), str((None, *(layer.output_shape or ()))),
                     f"{n:,}"))
        for path, inside in layer.paths().items():
            for i, sub in enumerate(inside):
                add(sub, f"{indent}  {path}.{i} ")

    for layer in model.layers:
        add(layer, "")
    return rows


def summary_text(model: Any) -> str:
    """The summary of a built ``model`` (a :class:`~cnnstep.nn.model.Sequential`)."""
    rows = [("layer", "output shape", "params"), *summary_rows(model)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
    rule = "-" * len(lines[0])
    trainable, fixed = model.count_params(), model.count_state()
    return "\n".join([lines[0], rule, *lines[1:], rule,
                      f"total parameters: {trainable + fixed:,}",
                      f"trainable parameters: {trainable:,}",
                      f"non-trainable parameters: {fixed:,}"])
