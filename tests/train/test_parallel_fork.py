"""A child made by ``os.fork()`` trains and predicts on several threads, instead of hanging on
the thread pools (OpenMP's team, the ops' pool) or on its parent's worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# The parent starts everything a fork copies badly: oneDNN's OpenMP team (ops on 2 threads),
# the ops' thread pool (NumPy's kernels split in 2), and kept worker processes; then forks.
SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import cnnstep
    from cnnstep import backends
    from cnnstep.config import config_context, set_config
    from cnnstep.nn.architectures import build_architecture
    from cnnstep.ops.kernels import threads as op_threads
    from cnnstep.train.pool import kept_workers
    from cnnstep.train.runners import make_runner

    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    model = build_architecture("default", (28, 28, 1), 10, seed=0)
    set_config(threads=2)
    op_threads.MIN_WORK.update(conv=0, pool=0)  # every op splits
    # the layers' passes split their ops (predict splits its chunks between Python threads,
    # each running oneDNN on one OpenMP thread)
    model.forward(x)  # oneDNN (where installed) on 2 threads: an OpenMP team
    with config_context(backend="numpy"):
        model.forward(x)  # NumPy's kernels, split between the ops' threads
    runner = make_runner(model, 2, parallel="processes", batch_size=64, workers=True)
    runner.ready(wait=True)
    runner.close()  # kept in the process-wide pool
    parent_workers = [p.pid for p in kept_workers().processes()]

    pid = os.fork()
    if pid == 0:
        try:
            history = model.fit(x, y, epochs=1, threads=2, batch_size=32, parallel="threads")
            model.predict(x)
            with config_context(backend="numpy"):
                model.predict(x)
            print("child trained", np.isfinite(history[0]["loss"]), flush=True)
            print("child notes", backends.status()["notes"], flush=True)
            print("child kept", kept_workers().processes(), flush=True)
            os._exit(0)
        except BaseException as exc:
            print("child failed", repr(exc), flush=True)
            os._exit(1)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, 9)
        print("child hung", flush=True)
        sys.exit(3)
    print("parent workers still kept", [p.pid for p in kept_workers().processes()]
          == parent_workers, flush=True)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def test_a_forked_child_trains_on_threads_instead_of_hanging(tmp_path):
    script = tmp_path / "fork.py"
    script.write_text(SCRIPT)
    # generous: the child's own work takes seconds, a hang never ends
    done = subprocess.run([sys.executable, str(script), "240"], capture_output=True, text=True,
                          timeout=400)
    out = done.stdout
    assert "child hung" not in out, out + done.stderr
    assert done.returncode == 0, out + done.stderr
    assert "child trained True" in out
    # the parent's kept workers were neither used nor stopped by the child
    assert "child kept []" in out and "parent workers still kept True" in out
    from cnnstep.backends import onednn

    if onednn.available():  # the child was told why oneDNN runs on one thread there
        assert "forked after oneDNN had run an OpenMP team" in out
