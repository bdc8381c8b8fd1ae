"""``Sequential.fit`` runs the CLI's loop: the same BLAS limits, threads, callbacks, progress."""

from __future__ import annotations

import numpy as np
import pytest
from models import small_model, toy_data

from cnnstep.train.callbacks import Callback


def test_fit_limits_numpys_blas_to_one_thread_while_training():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs the threads extra")
    seen = []

    class Probe(Callback):
        def on_batch_end(self, run, loss):
            seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info()
                        if p["user_api"] == "blas")

    x, y = toy_data(m=32)
    small_model(dropout=False).fit(x, y, epochs=1, batch_size=16, threads=2,
                                   callbacks=[Probe()])
    assert seen and set(seen) == {1}


def test_fit_with_threads_equals_the_serial_run_up_to_rounding():
    x, y = toy_data(m=48)
    a, b = small_model(seed=2, dropout=False), small_model(seed=2, dropout=False)
    ha = a.fit(x, y, epochs=2, batch_size=16, threads=1)
    hb = b.fit(x, y, epochs=2, batch_size=16, threads=2)
    assert ha[-1]["loss"] == pytest.approx(hb[-1]["loss"], rel=1e-4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert np.allclose(p, q, atol=1e-4)


def test_fit_logs_each_epoch_and_can_show_a_progress_bar(capsys):
    pytest.importorskip("tqdm", reason="needs the progress extra")
    lines = []
    x, y = toy_data(m=32)
    small_model().fit(x, y, epochs=2, batch_size=16, progress=True, log=lines.append)
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
