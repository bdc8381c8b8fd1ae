"""How each layer's output size comes out, and the same padding in other frameworks.

For every convolution and pooling layer of a model: the output-size formula with the actual
numbers, how the padding is split (top/bottom, left/right; "same" puts the extra cell at the
bottom/right, as TensorFlow does), and the equivalent settings in PyTorch, TensorFlow/Keras and
ONNX. The geometry is the ops' own (:mod:`cnnstep.ops.shapes`), not recomputed here. The other
layers that change or normalise maps get their lines from :mod:`cnnstep.explain.notes`; the
layers inside a ``Residual`` follow it, numbered by their path (``4.main.0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnstep.explain.notes import layer_notes
from cnnstep.nn.layers import Conv2D, Layer, Pool2D
from cnnstep.ops.geometry import WindowGeometry, resolve_pad
from cnnstep.ops.shapes import conv_window_geometry, pool_window_geometry


@dataclass(frozen=True)
class LayerShape:
    """One layer: its description, input and output shapes, and (for windowed layers) the
    geometry and the explanation lines."""

    index: str
    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    geometry: WindowGeometry | None
    lines: tuple[str, ...]


def _formula(axis: str, n: int, f: int, d: int, pad: tuple[int, int], s: int, out: int) -> str:
    extent = (f - 1) * d + 1
    window = f"{f}" if d == 1 else f"(({f} - 1) * {d} + 1)"
    return (f"{axis}: floor(({n} + {pad[0]} + {pad[1]} - {window}) / {s}) + 1 = "
            f"floor({n + pad[0] + pad[1] - extent} / {s}) + 1 = {out}")


def _torch(kind: str, geom: WindowGeometry) -> str:
    (t, b), (lt, r) = geom.pad
    args = []
    if geom.stride != geom.kernel or kind == "conv":
        args.append(f"stride={geom.stride}")
    if geom.dilation != (1, 1):
        args.append(f"dilation={geom.dilation}")
    symmetric = t == b and lt == r
    # PyTorch's pooling accepts at most half the window as padding.
    fits = symmetric and (kind == "conv" or (2 * t <= geom.kernel[0] and 2 * lt <= geom.kernel[1]))
    module = {"conv": "nn.Conv2d(C_in, C_out, kernel_size={k}",
              "max": "nn.MaxPool2d({k}", "average": "nn.AvgPool2d({k}"}[kind]
    module = module.format(k=geom.kernel)
    extra = ", count_include_pad=False" if kind == "average" and geom.has_pad else ""
    if not geom.has_pad or fits:
        pad = f", padding={(t, lt)}" if geom.has_pad else ""
        return f"{module}{pad}, {', '.join(args)}{extra})".replace(", )", ")")
    if kind == "average":
        return ("no exact equivalent: uneven padding needs F.pad, and the padded cells would then "
                "count in the mean (cnnstep leaves them out)")
    value = ", value=float('-inf')" if kind == "max" else ""
    return (f"F.pad(x, ({lt}, {r}, {t}, {b}){value}) then {module}, padding=0, "
            f"{', '.join(args)})").replace(", )", ")")


def _keras(kind: str, geom: WindowGeometry) -> str:
    same = resolve_pad("same", geom.in_hw, geom.extent, geom.stride, "pad", "explain")
    if not geom.has_pad:
        both = not any(any(p) for p in same)
        return 'padding="valid" (or "same": no padding here either way)' if both else \
            'padding="valid"'
    if geom.pad == same:
        return 'padding="same"'
    if kind == "conv":
        return (f"none matches: ZeroPadding2D({geom.pad}) then padding=\"valid\"")
    return "none matches (zero padding would change what the pooling sees)"


def _onnx(kind: str, geom: WindowGeometry) -> str:
    (t, b), (lt, r) = geom.pad
    op = {"conv": "Conv", "max": "MaxPool", "average": "AveragePool"}[kind]
    extra = ", count_include_pad=0" if kind == "average" else ""
    dil = f", dilations={list(geom.dilation)}" if kind == "conv" else ""
    return (f"{op}(kernel_shape={list(geom.kernel)}, strides={list(geom.stride)}{dil}, "
            f"pads=[{t}, {lt}, {b}, {r}]{extra})")


def _explain(kind: str, hp_pad: Any, geom: WindowGeometry, out: tuple[int, ...]) -> list[str]:
    lines = [_formula(axis, n, f, d, p, s, o) for axis, n, f, d, p, s, o in zip(
        ("n_H", "n_W"), geom.in_hw, geom.kernel, geom.dilation, geom.pad, geom.stride,
        out[:2])]
    (t, b), (lt, r) = geom.pad
    given = f"pad {hp_pad!r}: " if isinstance(hp_pad, str) else ""
    lines.append(f"{given}top {t}, bottom {b}, left {lt}, right {r}")
    lines.append(f"PyTorch: {_torch(kind, geom)}")
    lines.append(f"TensorFlow/Keras: {_keras(kind, geom)}")
    lines.append(f"ONNX: {_onnx(kind, geom)}")
    return lines


def layer_shapes(model: Any) -> list[LayerShape]:
    """Every layer of a built model with its shapes and explanation lines; the layers inside a
    container (``Residual``) follow it, with indices such as ``"4.main.0"``.

    Parameters
    ----------
    model : Sequential
        Built (it has an input shape).
    """
    if not model.built:
        raise ValueError("layer_shapes: the model is not built; give it an input shape")
    shapes: list[LayerShape] = []
    current = tuple(model.input_shape)
    for i, layer in enumerate(model.layers):
        _add(shapes, str(i), layer, current, i == len(model.layers) - 1)
        current = tuple(layer.output_shape)
    return shapes


def _add(shapes: list[LayerShape], index: str, layer: Layer, current: tuple[int, ...],
         last: bool) -> None:
    out = tuple(layer.output_shape or ())
    geom = None
    if isinstance(layer, Conv2D):
        geom = conv_window_geometry(current, layer.params["W"].shape, layer.hparameters)
        lines = _explain("conv", layer.padding, geom, out)
    elif isinstance(layer, Pool2D):
        geom = pool_window_geometry(current, layer.hparameters)
        lines = _explain(layer.mode, layer.padding, geom, out)
    else:
        lines = layer_notes(layer, current, last)
    shapes.append(LayerShape(index, layer.describe(), current, out, geom, tuple(lines)))
    for path, inside in layer.paths().items():
        shape = current
        for j, sub in enumerate(inside):
            _add(shapes, f"{index}.{path}.{j}", sub, shape, False)
            shape = tuple(sub.output_shape or ())


def describe_shapes(model: Any) -> str:
    """:func:`layer_shapes` as text, one block per layer (those inside a container indented)."""
    blocks = [f"input {tuple(model.input_shape)}"]
    for s in layer_shapes(model):
        indent = "   " * s.index.count(".main.") + "   " * s.index.count(".shortcut.")
        head = f"{indent}{s.index}. {s.name}: {s.input_shape} -> {s.output_shape}"
        blocks.append("\n".join([head, *(f"{indent}   {line}" for line in s.lines)]))
    return "\n".join(blocks) + "\n"
