"""See each step: traces computed by running the step-by-step operations, and their renderings.

Lives here: ``trace`` (Trace, Step, the traced forward operations), ``backward`` (traced
conv_backward and pool_backward) — both record the reference loops of
:mod:`cnnstep.ops.reference` through their step hook, never loops of their own —, ``html`` (a
self-contained interactive page), ``text`` (plain-text rendering for a terminal), ``gif``
(animations), ``page`` (one image through a model, as one HTML page), ``shapes`` and ``notes``
(``explain shapes``: each layer's output size and its equivalents in other frameworks).

May import: this folder, ``cnnstep.ops``, ``cnnstep.nn`` and ``cnnstep.data`` (never train,
cli or checker).
"""

from cnnstep.explain.backward import conv_backward, pool_backward
from cnnstep.explain.html import render_html
from cnnstep.explain.text import render_text
from cnnstep.explain.trace import Step, Trace, conv_forward, pool_forward, zero_pad

__all__ = [
    "Step", "Trace", "zero_pad", "conv_forward", "pool_forward", "conv_backward", "pool_backward",
    "render_text", "render_html",
]
