"""Whole classes through the checker: finding the submissions, grading each one, the gradebook and
the feedback files, graders' formats (Gradescope), and running on a Dask cluster.

May import: this folder, :mod:`cnnstep.checker`, :mod:`cnnstep.ops` and the top-level modules.
"""
