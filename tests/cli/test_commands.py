"""The CLI finds its sub-commands by name and its choices in the registries."""

from __future__ import annotations

import pytest

from cnnstep.cli.main import build_parser, command_modules


def test_commands_are_discovered_in_help_order():
    names = [m.__name__.rsplit(".", 1)[1] for m in command_modules()]
    assert names[:5] == ["demo", "train", "evaluate", "predict", "check"]


def test_train_choices_come_from_the_registries(monkeypatch):
    import cnnstep.nn.schedules as schedules

    monkeypatch.setitem(schedules.SCHEDULES, "halving", lambda lr, step, total: lr / 2)
    args = build_parser().parse_args(["train", "--schedule", "halving", "--optimizer", "sgd",
                                      "--arch", "signs"])
    assert (args.schedule, args.optimizer, args.arch) == ("halving", "sgd", "signs")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--schedule", "nope"])
