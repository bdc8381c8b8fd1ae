"""A class graded without losing a minute: the record written as each submission is graded,
interruptions, reruns, the key, reproducible feedback, hostile folders, the class report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from check_slips import CORRECT, write_broken

from cnnstep.cli.main import main
from cnnstep.grading import record as record_module
from cnnstep.grading.grade import grade

ROOT = Path(__file__).resolve().parents[2]
HANG = "def zero_pad(X, pad):\n    while True:\n        pass\n"


def _ctrl_c_as_in_a_terminal() -> None:
    # A command started in the background of a non-interactive shell (`pytest ... &`, and so
    # every process below it) inherits SIGINT ignored, and Python then keeps ignoring Ctrl-C:
    # the test's `cnnstep grade` must see it as a terminal's would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-m", "cnnstep", "grade", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal, **kw)


def journal_lines(out: Path) -> int:
    path = out / "gradebook.jsonl"
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def quick(calls: list[str]):
    """check_file with a short limit, recording what it checks (the key keeps the run's)."""

    def check(path, **kwargs):
        from cnnstep.checker import check_file

        calls.append(path.name)
        return check_file(path, **(kwargs | {"timeout": 0.5}))

    return check


@pytest.fixture
def slow_class(tmp_path):
    """Two quick right files, then four that hang in every function for their whole limit."""
    folder = tmp_path / "class"
    folder.mkdir()
    for k in range(2):
        shutil.copy(CORRECT, folder / f"a{k}.py")
    for k in range(4):
        (folder / f"z{k}.py").write_text(HANG + HANG.replace("zero_pad", "conv_forward"))
    return folder


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_keeps_what_was_graded_and_a_rerun_grades_the_rest(slow_class, tmp_path,
                                                                         sig):
    out = tmp_path / "out"
    proc = cli(str(slow_class), "--out", str(out), "--jobs", "1", "--timeout", "20",
               "--isolation", "process")
    for _ in range(1200):  # until the two right files are in the record
        if journal_lines(out) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert journal_lines(out) >= 2
    time.sleep(0.5)  # a hanging file is being checked now
    children = descendants(proc.pid)
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=120)
    stopped = time.monotonic() - sent
    assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""
    time.sleep(0.3)
    assert children and not [p for p in children if alive(p)]  # every child killed
    # It did not go on to the end: four hanging files take 4 x 2 x 20 CPU seconds.
    assert stopped < 60
    done = (out / "gradebook.csv").read_text().splitlines()
    assert len(done) - 1 == journal_lines(out) >= 2
    # The rerun reuses what was kept (the same key; the rest checked with a short limit).
    calls: list[str] = []
    records = grade([str(slow_class)], out, check=quick(calls), timeout=20, isolation="process")
    assert len(records) == 6 and sum(bool(r.get("reused")) for r in records) >= 2
    assert sorted(calls) == sorted(r["submission"].rsplit("/", 1)[1] for r in records
                                   if not r.get("reused"))


def test_a_sigkill_loses_only_what_was_in_flight_and_leaves_no_temporary(slow_class, tmp_path):
    out = tmp_path / "out"
    proc = cli(str(slow_class), "--out", str(out), "--jobs", "1", "--timeout", "20",
               "--isolation", "process", start_new_session=True)
    for _ in range(1200):
        if journal_lines(out) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    kept = journal_lines(out)
    assert kept >= 2
    (out / ".gradebook.csv.x1y2z3.tmp").write_text("half written")  # as a killed write leaves
    records = grade([str(slow_class)], out, check=quick([]), timeout=20, isolation="process")
    assert sum(bool(r.get("reused")) for r in records) == kept
    assert not list(out.glob(".*.tmp")) and not list((out / "feedback").glob(".*.tmp"))


def test_two_runs_write_identical_gradebooks_even_with_random_gradients(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    write_broken("randn_gradients", folder)
    shutil.copy(CORRECT, folder / "right.py")
    (folder / "rng.py").write_text(CORRECT.read_text().replace(
        "def distribute_value(dz, shape):\n", "def distribute_value(dz, shape):\n"
        "    import random\n    return np.random.default_rng().random(shape) + random.random()"
        " + np.random.rand()\n"))
    grade([str(folder)], tmp_path / "one", timeout=5)
    grade([str(folder)], tmp_path / "two", timeout=5)
    one = (tmp_path / "one" / "gradebook.json").read_bytes()
    assert one == (tmp_path / "two" / "gradebook.json").read_bytes()
    assert b"randn" in one and b"distribute_value" in one


def test_a_changed_key_grades_again_and_an_edited_record_is_never_trusted(tmp_path, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    write_broken("distribute_sum", folder)
    out = tmp_path / "out"
    first = grade([str(folder)], out, timeout=5)
    assert first[0]["score"] < 8
    assert grade([str(folder)], out, timeout=5)[0]["reused"]
    # An upgraded checker (another digest of its code) grades again.
    monkeypatch.setattr(record_module, "_checker_digest", lambda: "another checker")
    assert not grade([str(folder)], out, timeout=5)[0].get("reused")
    monkeypatch.undo()
    # Edited lines: every function passes (same content hash), or a malformed record.
    lines = (out / "gradebook.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    for fn in entry["record"]["functions"].values():
        fn["status"] = "pass"
    bad = [entry, dict(entry, record=dict(entry["record"], functions=[])),
           dict(entry, record={"status": "graded"}), dict(entry, sha256=None), [1, 2], "x"]
    (out / "gradebook.jsonl").write_text("\n".join(json.dumps(b) for b in bad) + "\n")
    again = grade([str(folder)], out, timeout=5)
    assert not again[0].get("reused") and again[0]["score"] == first[0]["score"]


def test_a_hostile_class_folder(tmp_path, capsys):
    folder = tmp_path / "class"
    (folder / "ana").mkdir(parents=True)
    shutil.copy(CORRECT, folder / "ana" / "solution.py")
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 'do-not-leak'\ndef zero_pad(X, pad):\n    return TOKEN\n")
    secret.chmod(0o600)
    (folder / "leak.py").symlink_to(secret)
    (folder / "copy.py").symlink_to(folder / "ana" / "solution.py")
    os.mkfifo(folder / "fifo.py")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    names = ["# Score: 8 of 8 <img src=x onerror=alert(1)>.py", "=HYPERLINK(1).py",
             "x" * 240 + ".py"]
    for name in names:
        (folder / name).write_text(CORRECT.read_text())
    raw = os.fsencode(str(folder)) + b"/bad-\xff-name.py"
    with open(raw, "wb") as f:
        f.write(CORRECT.read_bytes())
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out), "--timeout", "5"]) == 0
    book = json.loads((out / "gradebook.json").read_text())
    rows = {Path(r["submission"]).name: r for r in book["submissions"]}
    # the author keeps the row (its record, status and reason, said if not)
    assert rows["solution.py"]["score"] == 8, json.dumps(rows["solution.py"])[:2000]
    assert rows["copy.py"]["status"] == "unreadable" and "another submission" in \
        rows["copy.py"]["reason"]
    assert rows["leak.py"]["status"] == "unreadable" and "outside" in rows["leak.py"]["reason"]
    assert rows["fifo.py"]["status"] == "unreadable" and "FIFO" in rows["fifo.py"]["reason"]
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"do-not-leak" not in everything
    assert rows["bad-?-name.py"]["score"] == 8
    feedback = list((out / "feedback").iterdir())
    assert len(feedback) == len(rows) and all(len(p.name) <= 84 for p in feedback)
    for p in feedback:
        text = p.read_text()
        heading = text.split("\n", 1)[0]  # Markdown cannot be broken out of the heading
        assert text.count("\n# ") == 0 and "<img" not in heading.replace("\\<img", "")
    csv_text = (out / "gradebook.csv").read_text()
    assert not [line for line in csv_text.splitlines() if line[:1] in "=+-@\t\r"]
    assert "<img" not in (out / "report.html").read_text()


def test_gradescope_folders_always_give_results_json(tmp_path):
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                           "execution_count": None, "source": CORRECT.read_text()}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    both = tmp_path / "nb_and_helper"
    both.mkdir()
    (both / "assignment.ipynb").write_text(json.dumps(notebook))
    (both / "helpers.py").write_text("def load_data():\n    return None\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(CORRECT, two / "a.py")
    shutil.copy(CORRECT, two / "b.py")
    for folder, score in ((both, 8.0), (empty, 0.0), (two, 0.0)):
        out = tmp_path / f"out-{folder.name}"
        assert main(["grade", "--format", "gradescope", str(folder), "--out", str(out)]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["score"] == score and len(results["tests"]) == 8
    assert "no .py or .ipynb" in json.loads(
        (tmp_path / "out-empty" / "results.json").read_text())["output"]
    assert "a.py" in json.loads((tmp_path / "out-two" / "results.json").read_text())["output"]


def test_the_autograder_zip(tmp_path):
    import zipfile

    zpath = tmp_path / "autograder.zip"
    assert main(["gradescope-autograder", "--out", str(zpath), "--timeout", "5"]) == 0
    with zipfile.ZipFile(zpath) as z:
        assert {"setup.sh", "run_autograder", "points.json"} <= set(z.namelist())
        run = z.read("run_autograder").decode()
        setup = z.read("setup.sh").decode()
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
    # The image's package lists may be empty: they are fetched before installing.
    assert setup.index("apt-get update") < setup.index("apt-get install")
    assert "bubblewrap" in setup and "pip install" in setup
    assert "cnnstep grade --format gradescope /autograder/submission" in run
    assert "results.json" in run  # written even when cnnstep itself fails
    result = subprocess.run(["bash", "-n", "-c", run], capture_output=True, check=False)
    assert result.returncode == 0


CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def test_the_class_report_in_a_browser_and_rebuilt_from_the_gradebook(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for slip in ("distribute_sum", "float_b", "unpad_pad0"):
        write_broken(slip, folder)
    (folder / "again").mkdir()
    write_broken("distribute_sum", folder / "again")
    shutil.copy(CORRECT, folder / "right.py")
    out = tmp_path / "out"
    grade([str(folder)], out, timeout=5, lang="es")
    (out / "report.html").unlink()
    assert main(["grade", "--report", str(out), "--lang", "es"]) == 0
    page = (out / "report.html").read_text()
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") \
        and "<script" not in page and "src=" not in page
    assert "Informe" in page or "informe" in page
    markdown = (out / "report.md").read_text()
    assert "distribute_value" in markdown and "(2)" in markdown  # made by two learners
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.skip("chromium or chromedriver not installed at /usr/bin")
    import tempfile

    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get((out / "report.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#functions tr")
        assert len(rows) == 9  # a header and the eight functions
        first = [td.text for td in rows[1].find_elements(By.TAG_NAME, "td")]
        assert first[0] == "zero_pad" and first[1].endswith("%")
        slips = driver.find_elements(By.CSS_SELECTOR, "#slips li")
        assert slips and "distribute_value" in slips[0].text
        assert driver.find_elements(By.CSS_SELECTOR, "svg rect.bar")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
