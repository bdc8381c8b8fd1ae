"""Data sets: the in-memory :class:`~cnnstep.data.dataset.Dataset`, the built-in data sets
(``builtin``, registered by name), images (``images``) and the file readers (``readers/``, one
module per format, registered and sniffed by the registry).

May import: this folder only (plus top-level modules such as ``cnnstep.errors``): data knows
nothing of networks or training.
"""

from cnnstep.budget import memory_budget, set_memory_budget
from cnnstep.data.builtin import BUILTINS, load_data
from cnnstep.data.dataset import Dataset, stratified_split

__all__ = [
    "BUILTINS",
    "Dataset",
    "load_data",
    "memory_budget",
    "set_memory_budget",
    "stratified_split",
]
