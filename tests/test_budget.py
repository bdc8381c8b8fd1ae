"""cnnstep.budget: the memory budget every declared size is checked against."""

from __future__ import annotations

import pytest

import cnnstep
import cnnstep.data
from cnnstep.budget import DEFAULT_MEMORY_BUDGET, check_bytes, check_shape, parse_size
from cnnstep.errors import DataError, UserError


@pytest.mark.parametrize(
    ("text", "n"),
    [("4G", 4 << 30), ("512M", 512 << 20), ("512MiB", 512 << 20), ("1000", 1000), (7, 7),
     ("1.5K", 1536), (" 2 gb ", 2 << 30)],
)
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["lots", "-1G", "0", "", True, "4X"])
def test_parse_size_refuses(text):
    with pytest.raises(UserError, match="memory budget must be"):
        parse_size(text)


def test_default_a_laptop_survives():
    assert 256 << 20 <= DEFAULT_MEMORY_BUDGET <= 4 << 30


def test_set_environment_and_back(monkeypatch):
    monkeypatch.delenv("CNNSTEP_MAX_MEMORY", raising=False)
    assert cnnstep.memory_budget() == DEFAULT_MEMORY_BUDGET
    monkeypatch.setenv("CNNSTEP_MAX_MEMORY", "3M")
    assert cnnstep.memory_budget() == 3 << 20
    cnnstep.set_memory_budget("5M")
    try:
        assert cnnstep.data.memory_budget() == 5 << 20  # the setting wins over the environment
    finally:
        cnnstep.set_memory_budget(None)
    assert cnnstep.memory_budget() == 3 << 20


def test_shapes_multiply_without_overflow():
    # 2**16 four times is 2**64: NumPy's int64 product wraps to 0; Python ints do not
    with pytest.raises(DataError, match=r"f.idx: declares 16777216.0 TiB, more than the memory"):
        check_shape([65536] * 4, 1, "f.idx")
    with pytest.raises(DataError, match="negative dimension"):
        check_shape([3, -1], 4, "f")
    assert check_shape([10, 10], 4, "f") == 400
    with pytest.raises(DataError, match="negative size"):
        check_bytes(-5, "f")
