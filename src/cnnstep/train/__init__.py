"""Training: the loop, its callbacks, threads and metrics.

Lives here: ``loop`` (:func:`fit`, the epoch/batch loop that calls callbacks), ``callbacks``
(progress bar, checkpoint and Ctrl-C, NaN stop, learning-rate schedule), ``parallel`` (splitting a
batch between threads; BLAS thread limits), ``processes`` and ``worker`` (the same split between
worker processes, each side of it), ``runners`` (which of them a run uses), ``checkpoint`` (the
checkpoint file), ``metrics`` and ``plots``.

May import: :mod:`cnnstep.nn`, :mod:`cnnstep.ops`, :mod:`cnnstep.data` and this folder.
"""

from cnnstep.nn.model import register_trainer
from cnnstep.train.loop import fit

register_trainer(fit)

__all__ = ["fit"]
