"""Training: the loop, its callbacks, checkpoints, threads and worker processes.

Lives here: ``fit`` (:func:`fit`, what ``Sequential.fit`` calls: a run set up from settings or
resumed from a checkpoint, ``epochs="auto"``), ``loop`` (the epoch/batch loop that calls
callbacks), ``callbacks`` (progress bar, checkpoint and Ctrl-C, NaN stop, learning-rate
schedule, early stopping, time limit), ``state`` (a run's settings and progress),
``checkpoint`` (the checkpoint file and its schema), ``inputs`` (checks of what ``fit`` is
given), ``parallel`` (splitting a batch between threads; BLAS thread limits), ``processes`` and
``worker`` (the same split between worker processes, each side of it), ``pool`` (worker
processes kept between runs, only where the caller asks), ``runners`` (which of them a run
uses), ``plots``, and ``job/`` (what ``cnnstep train`` does: settings and their
defaults, the choices made from the data, the output folder and its lock).

Nothing here is imported by :mod:`cnnstep.nn`: a model names its trainer
(``Sequential.trainer = "cnnstep.train:fit"``) and this package is imported when it is first
called.

May import: :mod:`cnnstep.nn`, :mod:`cnnstep.ops`, :mod:`cnnstep.backends`, :mod:`cnnstep.data`
and this folder.
"""

from cnnstep.train.fit import History, fit

__all__ = ["History", "fit"]
