"""What a benchmark measured, where and when, as JSON: the performance page is built from it.

Each benchmark takes ``--json PATH`` and writes one :class:`Report`: the command, the date (UTC),
the machine (CPU model, cores, its SIMD flags, NumPy's BLAS and the kernel that BLAS picked for
this CPU, as threadpoolctl reports them; the load average at the start and the end), the versions
of the libraries involved and the tables, each a list of columns and rows of raw numbers. The
site's hook (``docs/hooks.py``) renders them; nothing on the page is typed by hand.

Run the benchmarks from the repository root (see each script); ``--json docs/perf/NAME.json``
replaces the file the site shows.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# The CPU flags that decide which kernels NumPy's BLAS, oneDNN and PyTorch pick.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
              "avx512_bf16", "amx_tile", "neon", "asimd", "sve")
# The libraries a reader needs to know the versions of (those installed are recorded).
LIBRARIES = ("cnnstep", "numpy", "torch", "onednn-cpu-gomp", "onnxruntime", "onnx", "dask",
             "distributed", "threadpoolctl")
# Environment variables that change what is measured.
SETTINGS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
            "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "CNNSTEP_ONEDNN", "MKL_NUM_THREADS")


def cpu_info() -> tuple[str, list[str]]:
    """The CPU's model name and which of :data:`SIMD_FLAGS` it has (Linux: /proc/cpuinfo)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or "unknown CPU", [f for f in SIMD_FLAGS if f in flags]


def blas() -> str:
    """NumPy's BLAS, its version and the kernel it picked here, e.g. ``openblas 0.3.31
    (Haswell)``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS unknown (threadpoolctl not installed)"
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl then reports)

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return (f"{pool.get('internal_api')} {pool.get('version')} "
                    f"({pool.get('architecture')} kernels)")
    return "BLAS unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def versions() -> dict[str, str]:
    """Python and each installed library of :data:`LIBRARIES`, with its version."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass
class Table:
    """One table: ``columns`` (``title``, and ``format`` for numbers, ``bold`` to stress one,
    ``span`` for a column of several values, such as a range), rows of values in that order, and
    notes printed under it."""

    title: str
    columns: list[dict[str, Any]]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        width = sum(c.get("span", 1) for c in self.columns)
        if len(values) != width:
            raise ValueError(f"{self.title}: {len(values)} values for {width} columns")
        self.rows.append([_plain(v) for v in values])


def _plain(value: Any) -> Any:
    """A JSON value: NumPy scalars become Python numbers; floats are rounded to 6 digits."""
    if hasattr(value, "item"):
        value = value.item()
    return float(f"{value:.6g}") if isinstance(value, float) else value


# The columns of a paired comparison (bench/paired.py): each side's median, the median of the
# paired ratios and their 10th-90th percentile spread.
# (A column with "span": 2 takes two values, shown as one range.)
def paired_columns(first: str, unit: str = "ms") -> list[dict[str, Any]]:
    return [{"title": first}, {"title": f"cnnstep {unit}", "format": ".2f"},
            {"title": f"PyTorch {unit}", "format": ".2f"},
            {"title": "ratio", "format": ".2f", "bold": True},
            {"title": "10-90 %", "format": ".2f", "span": 2}]


def paired_values(p: Any, scale: float = 1.0) -> tuple[float, ...]:
    """The values of :func:`paired_columns` for a ``paired.Paired`` (ms, times ``scale``)."""
    ours, theirs = p.ms()
    lo, hi = p.spread()
    return ours * scale, theirs * scale, p.ratio, lo, hi


class Report:
    """What one run of a benchmark measured (see the module docstring)."""

    def __init__(self, benchmark: str, title: str) -> None:
        model, flags = cpu_info()
        self.data: dict[str, Any] = {
            "benchmark": benchmark,
            "title": title,
            "command": " ".join(["python", *[_relative(a) for a in sys.argv]]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {"cpu": model, "cores": os.cpu_count(), "cpu_flags": flags,
                        "blas": blas(), "system": f"{platform.system()} {platform.machine()}",
                        "load_average": load_average()},
            "versions": versions(),
            "settings": {k: os.environ[k] for k in SETTINGS if k in os.environ},
            "tables": [],
        }

    def table(self, title: str, columns: list[dict[str, Any]]) -> Table:
        table = Table(title, columns)
        self.data["tables"].append(table)
        return table

    def set(self, key: str, value: Any) -> None:
        """Record something beside the tables (e.g. whether oneDNN's kernels were on)."""
        self.data[key] = value

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the report as JSON (the load average at the end is taken now)."""
        self.data["machine"]["load_average"] += f" at the start, {load_average()} at the end"
        data = dict(self.data, tables=[vars(t) for t in self.data["tables"]])
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        print(f"\nwrote {target}")


def _relative(arg: str) -> str:
    """A script path as run from the repository root (``bench/ops.py``)."""
    path = Path(arg)
    if path.suffix == ".py" and path.is_file():
        try:
            return str(path.resolve().relative_to(Path(__file__).resolve().parent.parent))
        except ValueError:
            return arg
    return arg
