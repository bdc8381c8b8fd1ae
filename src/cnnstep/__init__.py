"""cnnstep: convolutional networks in NumPy, step by step and fast."""

__version__ = "0.1.0"
