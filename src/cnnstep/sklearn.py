"""``cnnstep.sklearn.CNNClassifier``: the scikit-learn estimator (needs the ``sklearn`` extra).

It lives in :mod:`cnnstep.interop.estimator`; this module only gives it the short import path.
"""

from cnnstep.interop.estimator import CNNClassifier

__all__ = ["CNNClassifier"]
