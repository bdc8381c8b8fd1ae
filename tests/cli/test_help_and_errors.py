"""The CLI's help and its argument errors follow one convention (``cnnstep.cli.options``): every
option has help that shows its default, metavars say what a value is, an error names the flag
as typed, and a missing file is worded one way."""

from __future__ import annotations

import argparse

import pytest

from cnnstep.cli.main import build_parser, main
from cnnstep.cli.options import MISSING_FILE, HelpFormatter, existing_file, pad_value

# Owned by other commands' authors, listed so that they are fixed there and never grow:
# (command, option) pairs without help, or whose metavar is argparse's name of the variable.
KNOWN_GAPS = {
    ("train", "--epochs"),      # metavar EPOCHS (the variable's name), a count: N
    ("train", "--seed"),        # metavar SEED, a number: N
}


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def option_actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        yield (action.option_strings[0] if action.option_strings else action.dest), action


def convention_gaps() -> set[tuple[str, str]]:
    gaps = set()
    for name, parser in commands().items():
        for option, action in option_actions(parser):
            if not action.help:
                gaps.add((name, option))
            takes_value = action.nargs != 0 and action.option_strings
            if takes_value and action.choices is None:
                metavar = action.metavar
                words = metavar if isinstance(metavar, tuple) else (metavar,)
                if metavar is None or any(not w or w != w.upper() for w in words):
                    gaps.add((name, option))
    return gaps


def test_every_option_has_help_and_a_metavar_saying_what_it_takes():
    gaps = convention_gaps()
    assert gaps <= KNOWN_GAPS, f"new gaps: {sorted(gaps - KNOWN_GAPS)}"


@pytest.mark.parametrize("command", ["explain", "demo", "predict"])
def test_each_option_with_a_default_shows_it(command, capsys):
    parser = commands()[command]
    text = " ".join(parser.format_help().split())
    for option, action in option_actions(parser):
        if action.option_strings and action.default is not None and action.default is not False:
            shown = HelpFormatter(command)._get_help_string(action)
            assert "default" in shown, option
            assert " ".join(shown.split()).replace("%%", "%") in text, option


def test_explain_help_names_each_option_and_its_default():
    text = " ".join(commands()["explain"].format_help().split())
    for fragment in ("--input H W C", "(default: 5 5 1)", "--filters N", "--f N",
                     "--stride N", "--dilation N", "--mode {max,average}", "(default: max)",
                     "--seed N", "(default: 0)", "--pad P", "--out FILE"):
        assert fragment in text, fragment


def test_max_memory_only_where_files_are_read():
    parsers = commands()
    assert "--max-memory" not in parsers["demo"].format_help()
    for name in ("train", "evaluate", "predict", "explain", "check", "grade", "export"):
        assert "--max-memory" in parsers[name].format_help(), name


@pytest.mark.parametrize(("argv", "flag", "fragment"), [
    (["explain", "conv", "--pad", "banana"], "--pad", "'same' or 'valid', got 'banana'"),
    (["explain", "conv", "--f", "0"], "--f", "a positive integer, got '0'"),
    (["explain", "conv", "--stride", "-1"], "--stride", "a positive integer"),
    (["explain", "conv", "--input", "0", "5", "1"], "--input", "a positive integer"),
    (["explain", "conv", "--seed", "x"], "--seed", "an integer >= 0"),
    (["predict", "m.npz", "a.png", "--top", "0"], "--top", "a positive integer"),
])
def test_an_argument_error_names_the_flag_as_typed(argv, flag, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and fragment in err, err
    assert "_pad" not in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_explain_pad_without_options_shows_a_ring_of_zeros(capsys):
    assert main(["explain", "pad"]) == 0
    out = capsys.readouterr().out
    assert "input (1, 5, 5, 1) -> output (1, 7, 7, 1)" in out
    assert main(["explain", "pad", "--pad", "2", "--input", "3", "4", "1"]) == 0
    assert "-> output (1, 7, 8, 1)" in capsys.readouterr().out


def test_a_missing_file_is_worded_one_way(tmp_path, capsys):
    missing = tmp_path / "nothing.npz"
    image = tmp_path / "nothing.png"
    model = tmp_path / "model.npz"
    from cnnstep.nn.architectures import build_architecture

    build_architecture("default", (28, 28, 1), 10, seed=0).save(model)
    runs = [["predict", str(missing), "x.png"], ["explain", "shapes", str(missing)],
            ["evaluate", str(missing)], ["export", str(missing), "--format", "onnx"],
            ["explain", str(model), str(image), "--out", str(tmp_path / "p.html")]]
    for argv in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.endswith(MISSING_FILE.format(path="")), (argv, err)
        assert len(err.splitlines()) == 1, (argv, err)
    assert main(["predict", str(model), str(image)]) == 1
    assert f"{image}\terror: {image}: no such file" in capsys.readouterr().out


def test_the_shared_helpers(tmp_path):
    assert pad_value("same") == "same" and pad_value("0") == 0 and pad_value("3") == 3
    for bad in ("-1", "1.5", "banana", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 0"):
            pad_value(bad)
    (tmp_path / "f.txt").write_text("x")
    assert existing_file(str(tmp_path / "f.txt")) == str(tmp_path / "f.txt")
    assert existing_file(str(tmp_path), folder=True) == str(tmp_path)
    from cnnstep.errors import UserError

    with pytest.raises(UserError, match=r"nope: no such file$"):
        existing_file(str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"nope: no such file or folder$"):
        existing_file(str(tmp_path / "nope"), folder=True)
    with pytest.raises(UserError, match="not a file"):
        existing_file(str(tmp_path))
