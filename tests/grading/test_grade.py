"""``cnnstep grade``: a gradebook for a class, resumable, with unreadable rows and Gradescope."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from check_slips import CORRECT, write_broken

from cnnstep.checker.judging.cases import FUNCTIONS
from cnnstep.cli.main import main
from cnnstep.errors import UserError
from cnnstep.grading.grade import grade, load_points
from cnnstep.grading.submissions import find_submissions


@pytest.fixture
def klass(tmp_path):
    """A class folder: a correct file, a slip, an unreadable file, a nested notebook-free one."""
    folder = tmp_path / "class"
    (folder / "ana").mkdir(parents=True)
    (folder / "ben").mkdir()
    shutil.copy(CORRECT, folder / "ana" / "solution.py")
    write_broken("distribute_sum", folder / "ben")
    (folder / "ben" / "notes.txt").write_text("not a submission")
    (folder / "carl.py").write_bytes(b"def zero_pad(X, pad):\n    return X\x00\n")
    return folder


def _rows(out):
    with open(out / "gradebook.csv", newline="") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


def test_a_class_gets_a_gradebook_feedback_and_unreadable_rows(klass, tmp_path, capsys):
    out = tmp_path / "out"
    points = tmp_path / "points.json"
    points.write_text(json.dumps({"distribute_value": 2, "pool_backward": 3}))
    assert main(["grade", str(klass), "--out", str(out), "--points", str(points),
                 "--jobs", "2", "--timeout", "5"]) == 0
    rows = _rows(out)
    assert len(rows) == 3
    ana = next(r for k, r in rows.items() if "ana" in k)
    ben = next(r for k, r in rows.items() if "ben" in k)
    carl = next(r for k, r in rows.items() if "carl" in k)
    weights = {f: 1.0 for f in FUNCTIONS} | {"distribute_value": 2.0, "pool_backward": 3.0}
    book = json.loads((out / "gradebook.json").read_text())
    ana_record = next(r for r in book["submissions"] if "ana" in r["submission"])
    assert ana["score"] == ana["max_score"] == "11" and ana["distribute_value"] == "pass", \
        {k: ana_record.get(k) for k in ("status", "reason", "report", "warnings")}
    assert ben["distribute_value"] == "fail" and ben["max_score"] == "11"
    assert float(ben["score"]) == sum(w for f, w in weights.items() if ben[f] == "pass") < 9.5
    assert carl["score"] == "0" and set(carl[f] for f in FUNCTIONS) == {"unreadable"}
    (carl_record,) = [r for r in book["submissions"] if "carl" in r["submission"]]
    assert carl_record["status"] == "unreadable" and "null" in carl_record["reason"]
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert len(feedback) == 3
    ben_md = (out / "feedback" / f"{ben['submission']}.md").read_text()
    assert "distribute_value" in ben_md and "n_H * n_W" in ben_md


def test_graded_submissions_are_not_run_again_unless_changed_or_forced(klass, tmp_path):
    out = tmp_path / "out"
    calls = []

    def counting_check(path, **kwargs):
        from cnnstep.checker import check_file

        calls.append(path.name)
        return check_file(path, **kwargs)

    grade([str(klass)], out, check=counting_check, timeout=5)
    assert len(calls) == 3
    calls.clear()
    # A line cut short by a crash is skipped, and the next one still read.
    with open(out / "gradebook.jsonl", "ab") as f:
        f.write(b'{"key": "cut sh')
    grade([str(klass)], out, check=counting_check, timeout=5)
    assert calls == []
    (klass / "ana" / "solution.py").write_text(CORRECT.read_text() + "\n# edited\n")
    grade([str(klass)], out, check=counting_check, timeout=5)
    assert calls == ["solution.py"]
    calls.clear()
    grade([str(klass)], out, check=counting_check, timeout=5, force=True)
    assert len(calls) == 3


def test_gradescope_results_json(tmp_path):
    out = tmp_path / "out"
    path = write_broken("distribute_sum", tmp_path)
    assert main(["grade", str(path), "--out", str(out), "--format", "gradescope"]) == 0
    results = json.loads((out / "results.json").read_text())
    tests = {t["name"]: t for t in results["tests"]}
    assert results["score"] == sum(t["score"] for t in tests.values()) < 8
    assert set(tests) == set(FUNCTIONS)
    bad = tests["distribute_value"]
    assert bad["score"] == 0 and bad["max_score"] == 1 and bad["status"] == "failed"
    assert "n_H * n_W" in bad["output"] and bad["visibility"] == "visible"
    assert all(t["score"] == t["max_score"] for t in tests.values() if t["status"] == "passed")


def test_usage_errors(tmp_path, capsys):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    bad_points = tmp_path / "p.toml"
    bad_points.write_text('zeros_pad = 2\n')
    assert main(["grade", str(tmp_path / "a.py"), "--out", str(tmp_path / "o"),
                 "--points", str(bad_points)]) == 2
    assert main(["grade", str(tmp_path / "a.py"), str(tmp_path / "b.py"), "--out",
                 str(tmp_path / "o"), "--format", "gradescope"]) == 2
    assert main(["grade", str(tmp_path / "nothing-*.py"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "zeros_pad" in err and "one submission folder per run" in err
    assert "no file matches" in err
    assert "Traceback" not in err


def test_points_and_finding_submissions(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text("zero_pad = 0.5\npool_backward = 4\n")
    points = load_points(toml)
    assert (points["zero_pad"], points["pool_backward"], points["conv_forward"]) == (0.5, 4, 1)
    with pytest.raises(UserError, match="must be a number >= 0"):
        (tmp_path / "n.json").write_text('{"zero_pad": -1}')
        load_points(tmp_path / "n.json")
    (tmp_path / "d" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "d" / "x.ipynb").write_text("{}")
    (tmp_path / "d" / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    assert [s.path.name for s in find_submissions([str(tmp_path / "d")])] == ["x.ipynb"]


def test_a_dask_cluster_grades_like_a_local_run(klass, tmp_path):
    distributed = pytest.importorskip("distributed", reason="needs dask distributed")
    local = grade([str(klass)], tmp_path / "local", timeout=5)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = grade([str(klass)], tmp_path / "dask", timeout=5,
                       scheduler=cluster.scheduler_address)

    def verdicts(records):
        return [(r["name"], r["status"], r["score"],
                 {f: v.get("status") for f, v in r.get("functions", {}).items()})
                for r in records]

    assert verdicts(remote) == verdicts(local)
    assert (tmp_path / "dask" / "gradebook.csv").read_text() == \
        (tmp_path / "local" / "gradebook.csv").read_text()
    # Reproducible to the byte, paths shown as given (not as the workers read them).
    assert (tmp_path / "dask" / "gradebook.json").read_bytes() == \
        (tmp_path / "local" / "gradebook.json").read_bytes()
