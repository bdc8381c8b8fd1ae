"""``cnnstep explain``: formats from the extension, one-line errors."""

import numpy as np
import pytest

from cnnstep import explain
from cnnstep.cli.main import main


def test_conv_txt_matches_the_trace(tmp_path, capsys):
    out = tmp_path / "conv.txt"
    rc = main(["explain", "conv", "--input", "5", "5", "3", "--filters", "2", "--f", "3",
               "--stride", "2", "--pad", "1", "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert text.count("\nstep ") == 3 * 3 * 2  # n_H * n_W * n_C
    assert "pad (top, bottom) (1, 1)" in text


def test_pool_html_and_stdout(tmp_path, capsys):
    out = tmp_path / "pool.html"
    assert main(["explain", "pool", "--mode", "average", "--f", "2", "--stride", "2",
                 "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["explain", "pool-backward", "--f", "2", "--stride", "1"]) == 0
    assert "pool_backward (max)" in capsys.readouterr().out


def test_bad_extension_and_too_large_are_one_line_errors(tmp_path, capsys):
    assert main(["explain", "pad", "--out", str(tmp_path / "x.bmp")]) == 2
    assert main(["explain", "conv", "--input", "100", "100", "3", "--f", "1"]) == 2
    err = capsys.readouterr().err
    assert "x.bmp" in err and "too many to follow" in err and "Traceback" not in err
    assert not (tmp_path / "x.bmp").exists()


def test_trace_renders_with_color_scale_when_large():
    trace = explain.pool_forward(np.zeros((1, 20, 20, 1)), {"f": 2, "stride": 2})
    assert "<td data-r=\"0\" data-c=\"0\" style=\"background:rgb(195,225,255)\"></td>" in \
        explain.render_html(trace)


def test_gif_out(tmp_path):
    Image = __import__("pytest").importorskip("PIL.Image", reason="Pillow not installed")
    out = tmp_path / "conv.gif"
    assert main(["explain", "conv", "--input", "5", "5", "3", "--filters", "2", "--f", "3",
                 "--stride", "2", "--pad", "1", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 18


def test_shapes_of_a_builtin_architecture_and_of_a_model_file(tmp_path, capsys):
    assert main(["explain", "shapes", "--arch", "signs", "--input", "64", "64", "3",
                 "--classes", "6"]) == 0
    text = capsys.readouterr().out
    assert "0. Conv2D(8, 4x4, same): (64, 64, 3) -> (64, 64, 8)" in text
    assert "top 1, bottom 2, left 1, right 2" in text and "pads=[1, 1, 2, 2]" in text
    from cnnstep.nn.architectures import build_architecture

    path = tmp_path / "m.npz"
    build_architecture("default", (28, 28, 1), 10, seed=0).save(path)
    assert main(["explain", "shapes", str(path)]) == 0
    assert "Dense(10): (1568,) -> (10,)" in capsys.readouterr().out


def test_shapes_errors_are_one_line(tmp_path, capsys):
    assert main(["explain", "shapes", "--arch", "resnet50"]) == 2
    assert main(["explain", "shapes", "--arch", "default", "--input", "1", "1", "1"]) == 2
    assert main(["explain", "shapes", str(tmp_path / "missing.npz")]) == 2
    assert main(["explain", "conv", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 4 and "Traceback" not in err


@pytest.mark.parametrize("op", ["conv", "pool", "pad", "conv-backward"])
def test_a_huge_input_is_refused_before_it_is_drawn(op, monkeypatch, capsys):
    from cnnstep.cli.commands import explain as command

    def no_input(*args, **kwargs):
        raise AssertionError("the input was drawn before the step count was checked")

    monkeypatch.setattr(command.np.random, "default_rng", no_input)
    assert main(["explain", op, "--input", "30000", "30000", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "steps is too many" in err, err
    assert np.random.default_rng is no_input
