"""grading.single.digest: a submission's fingerprint, read only from a regular file."""

from __future__ import annotations

import hashlib
import os

import pytest

from cnnstep.grading.single import digest


def test_a_regular_file_gets_its_sha256(tmp_path):
    path = tmp_path / "sub.py"
    path.write_bytes(b"def zero_pad(X, pad):\n    return X\n")
    assert digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="os.mkfifo is not available here")
def test_a_fifo_a_folder_and_a_missing_file_have_none(tmp_path):
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)  # opening it for reading would block without O_NONBLOCK
    assert digest(fifo) is None
    assert digest(tmp_path) is None
    assert digest(tmp_path / "missing.py") is None
