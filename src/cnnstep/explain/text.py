"""Plain-text rendering of a trace, for a terminal."""

from __future__ import annotations

from cnnstep.explain.trace import Trace


def render_text(trace: Trace, limit: int | None = None) -> str:
    """One line per step: output cell, window corners on the padded input, value."""
    g = trace.geometry
    lines = [
        f"{trace.operation}: input {trace.input.shape} -> output {trace.output.shape}; "
        f"kernel {g.kernel}, stride {g.stride}, dilation {g.dilation}, "
        f"pad (top, bottom) {g.pad[0]} (left, right) {g.pad[1]}; {len(trace.steps)} steps"
    ]
    for n, s in enumerate(trace.steps[:limit]):
        lines.append(
            f"step {n + 1}: example {s.example} row {s.row} column {s.column} channel {s.channel}: "
            f"window rows {s.vert_start}:{s.vert_end} columns {s.horiz_start}:{s.horiz_end} "
            f"-> {s.value:.6g}"
        )
    return "\n".join(lines) + "\n"
