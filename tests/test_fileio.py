"""Opening what a user names only when it is a regular file (cnnstep.fileio)."""

from __future__ import annotations

import os
import socket

import pytest

from cnnstep.errors import DataError
from cnnstep.fileio import check_regular, open_regular


def test_a_regular_file_opens_and_reads(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    with open_regular(tmp_path / "f") as f:
        assert f.read() == b"abc"
    check_regular(tmp_path / "f")


@pytest.mark.parametrize("kind", ["FIFO", "folder", "device", "socket"])
def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "FIFO":
        os.mkfifo(path)  # opening it for reading would wait for a writer forever
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        path = "/dev/zero"  # endless
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    expected = {"FIFO": "a FIFO", "folder": "a folder", "device": "a device",
                "socket": "a socket"}[kind]
    with pytest.raises(DataError, match=rf"not a regular file \({expected}\)"):
        check_regular(path)
    if kind != "socket":  # a socket cannot be opened at all: an OSError, as for a missing file
        with pytest.raises(DataError, match=rf"not a regular file \({expected}\)"):
            open_regular(path)


def test_a_missing_file_is_the_usual_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing")
