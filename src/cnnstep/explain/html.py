"""A self-contained interactive HTML page for a trace: next/prev, play, a slider; no network."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

# Above this many input cells the numbers stop being readable; cells show a color scale instead.
NUMBERS_UP_TO = 144

_SCRIPT = """
(function(){
const D = JSON.parse(document.getElementById('%(id)s-data').textContent);
const root = document.getElementById('%(id)s');
const grid = root.querySelector('.grid'), info = root.querySelector('.value');
const slider = root.querySelector('input[type=range]');
let k = 0, timer = null;
function draw(){
  const s = D.steps[k];
  const cells = grid.querySelectorAll('td');
  cells.forEach(function(td){
    const r = +td.dataset.r, c = +td.dataset.c;
    const on = r >= s[4] && r < s[5] && c >= s[6] && c < s[7];
    td.classList.toggle('win', on);
  });
  slider.value = k;
  info.textContent = 'step ' + (k + 1) + '/' + D.steps.length + ': example ' + s[0] +
    ', row ' + s[1] + ', column ' + s[2] + ', channel ' + s[3] + ', window rows ' + s[4] +
    ':' + s[5] + ' columns ' + s[6] + ':' + s[7] + ' -> value ' + s[8].toPrecision(6);
}
root.querySelector('.next').onclick = function(){ k = (k + 1) %% D.steps.length; draw(); };
root.querySelector('.prev').onclick = function(){
  k = (k - 1 + D.steps.length) %% D.steps.length; draw();
};
root.querySelector('.play').onclick = function(){
  if (timer) { clearInterval(timer); timer = null; return; }
  timer = setInterval(function(){ k = (k + 1) %% D.steps.length; draw(); }, 500);
};
slider.oninput = function(){ k = +slider.value; draw(); };
draw();
})();
"""


def _color(v: float, lo: float, hi: float) -> str:
    t = 0.5 if hi == lo else (v - lo) / (hi - lo)
    return f"rgb({int(255 - 120 * t)},{int(255 - 60 * t)},255)"


def render_html_fragment(trace: Any, element_id: str = "cnnstep-trace") -> str:
    """A Trace as an HTML fragment (also for Jupyter): channel 0 of the padded input of
    example 0, the current step's window highlighted. (Trace is not imported: trace.py imports
    this module.)"""
    grid = np.asarray(trace.padded[0, :, :, 0], dtype=float)
    lo, hi = float(grid.min()), float(grid.max())
    numbers = grid.size <= NUMBERS_UP_TO
    rows = []
    for r, row in enumerate(grid):
        tds = "".join(
            f'<td data-r="{r}" data-c="{c}" style="background:{_color(v, lo, hi)}">'
            f'{f"{v:.2g}" if numbers else ""}</td>' for c, v in enumerate(row))
        rows.append(f"<tr>{tds}</tr>")
    data = {"steps": [[s.example, s.row, s.column, s.channel, s.vert_start, s.vert_end,
                       s.horiz_start, s.horiz_end, s.value] for s in trace.steps]}
    # Escape "</" so the JSON cannot close its script element.
    payload = json.dumps(data).replace("</", "<\\/")
    n = len(trace.steps)
    return (
        f'<div id="{element_id}" class="cnnstep-trace">'
        f"<style>#{element_id} td{{width:2.2em;height:2.2em;text-align:center;"
        f"font:11px monospace;border:1px solid #ccc}}#{element_id} td.win"
        f"{{outline:3px solid #d00;outline-offset:-3px}}</style>"
        f"<p><b>{html.escape(trace.operation)}</b>: input {trace.input.shape} &rarr; "
        f"output {trace.output.shape} (channel 0 of example 0, padded)</p>"
        f'<table class="grid">{"".join(rows)}</table>'
        f'<p><button class="prev">prev</button> <button class="play">play</button> '
        f'<button class="next">next</button> '
        f'<input type="range" min="0" max="{n - 1}" value="0"></p>'
        f'<p class="value"></p>'
        f'<script type="application/json" id="{element_id}-data">{payload}</script>'
        f"<script>{_SCRIPT % {'id': element_id}}</script></div>"
    )


def render_html(trace: Any) -> str:
    """A whole page, self-contained: inline style and script, nothing fetched."""
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(trace.operation)}</title></head><body>"
            f"{render_html_fragment(trace)}</body></html>\n")
