"""Loading a user's data set from a path (kept for existing imports).

The readers live in :mod:`cnnstep.data.readers`, one module per format; this module re-exports
:func:`load_path` and :class:`DataWarning` from there.
"""

from __future__ import annotations

from cnnstep.data.readers import DataWarning, load_path
from cnnstep.data.readers.hdf5 import HDF5_SUFFIXES

__all__ = ["HDF5_SUFFIXES", "DataWarning", "load_path"]
