"""Layers: the :class:`Layer` interface and registry (``base``) and one module per family:
``conv`` (Conv2D), ``pool`` (MaxPool2D, AvgPool2D), ``core`` (Dense, Flatten, ReLU, Dropout),
``activations`` (Sigmoid, Tanh, LeakyReLU), ``spatial`` (ZeroPadding2D, GlobalAvgPool2D,
GlobalMaxPool2D), ``norm`` (BatchNorm2D) and ``residual`` (Residual, the skip connection).

May import: :mod:`cnnstep.ops`, :mod:`cnnstep.backends`, ``cnnstep.nn.initializers`` and this
folder.

Adding a layer is adding one module here: its class, decorated with
:func:`~cnnstep.nn.layers.base.register_layer`, is found by model files and
:func:`layer_from_config` as soon as the package is imported (every module of the package is
imported below).
"""

import importlib
import pkgutil

from cnnstep.nn.layers.activations import LeakyReLU, Sigmoid, Tanh
from cnnstep.nn.layers.base import LAYER_TYPES, Layer, layer_from_config, register_layer, walk
from cnnstep.nn.layers.conv import Conv2D
from cnnstep.nn.layers.core import Dense, Dropout, Flatten, ReLU
from cnnstep.nn.layers.norm import BatchNorm2D
from cnnstep.nn.layers.pool import AvgPool2D, MaxPool2D, Pool2D
from cnnstep.nn.layers.residual import Residual
from cnnstep.nn.layers.spatial import GlobalAvgPool2D, GlobalMaxPool2D, ZeroPadding2D

# Modules beyond the built-in ones register their layers on import.
for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "LAYER_TYPES",
    "AvgPool2D",
    "BatchNorm2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "Pool2D",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Tanh",
    "ZeroPadding2D",
    "layer_from_config",
    "register_layer",
    "walk",
]
