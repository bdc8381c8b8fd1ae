"""The settings of ``cnnstep train``: defaults, what a resumed run may change, and their schema.

A setting left out (None) is chosen: from :data:`DEFAULTS`, or for those marked ``"auto"``
from the data (:mod:`cnnstep.train.job.recipe`). The settings a run used are stored in its
checkpoint and model metadata; on resume they are read back, checked with
:func:`check_stored` (a checkpoint is something a user can edit), and only
:data:`CHANGEABLE_ON_RESUME` may be given anew.
"""

from __future__ import annotations

import math
from typing import Any

from cnnstep.errors import UserError
from cnnstep.nn.architectures import ARCHITECTURES
from cnnstep.nn.optimizers import OPTIMIZERS
from cnnstep.nn.schedules import SCHEDULES
from cnnstep.train.checkpoint import check_int, check_number
from cnnstep.train.fit import AUTO_TIME_LIMIT
from cnnstep.train.parallel import default_threads, machine_cpus

#: The settings of a fresh run; ``"auto"``: chosen from the data or the epochs mode.
DEFAULTS: dict[str, Any] = {
    "data": "mnist5k",
    "test_data": None,
    "image_size": None,
    "test_fraction": 0.2,
    "arch": "auto",
    "epochs": "auto",
    "batch_size": "auto",
    "lr": "auto",
    "optimizer": "adam",
    "schedule": "auto",
    "augment": "auto",
    "seed": 0,
    "threads": "auto",
    "patience": "auto",
    "time_limit": "auto",
}
#: What ``--resume`` may change; the other settings shape the run and stay the checkpoint's.
CHANGEABLE_ON_RESUME = ("epochs", "lr", "threads", "time_limit")


def parse_augment(text: Any) -> dict:
    """The ``augment`` setting from what ``--augment`` is given.

    ``"none"`` (or ``0``): no augmentation. ``N``: random shifts of up to N pixels, as cnnstep
    always had. Otherwise a comma-separated list of ``shift=N`` and ``flip`` (random left-right
    mirroring), such as ``"shift=4,flip"``. An ``int`` is read as ``N``, a mapping as the
    setting itself (a checkpoint's).

    Returns
    -------
    dict
        ``{"shift": int, "flip": bool}``.

    Raises
    ------
    ValueError
        Naming what was expected and what was given.
    """
    if isinstance(text, dict):
        if set(text) != {"shift", "flip"} or not isinstance(text["flip"], bool):
            raise ValueError(f"augment must be a mapping of shift and flip (true or false), "
                             f"got {text!r}")
        check_int(text["shift"], "augment.shift", 0, 1 << 16)
        return {"shift": text["shift"], "flip": text["flip"]}
    if isinstance(text, int) and not isinstance(text, bool):
        return {"shift": check_int(text, "augment", 0, 1 << 16), "flip": False}
    expected = "'none', a number of pixels, 'flip' or a list such as 'shift=4,flip'"
    if not isinstance(text, str):
        raise ValueError(f"augment: expected {expected}, got {text!r}")
    items = [part.strip() for part in text.strip().lower().split(",")]
    if len(items) == 1 and items[0].isdigit() and len(items[0]) < 6:
        return {"shift": int(items[0]), "flip": False}
    if items == ["none"]:
        return {"shift": 0, "flip": False}
    out = {"shift": 0, "flip": False}
    keys = [item.partition("=")[0] for item in items]
    for item, key in zip(items, keys):
        value = item.partition("=")[2]
        if keys.count(key) > 1 or not (item == "flip" or key == "shift" and value.isdigit()
                                       and len(value) < 6):
            raise ValueError(f"augment: expected {expected}, got {text!r}")
        if item == "flip":
            out["flip"] = True
        else:
            out["shift"] = int(value)
    return out


def format_augment(augment: dict) -> str:
    """The ``--augment`` text of a setting: ``none``, ``4``, ``flip``, ``shift=4,flip``."""
    if not augment["flip"]:
        return str(augment["shift"]) if augment["shift"] else "none"
    return f"shift={augment['shift']},flip" if augment["shift"] else "flip"


def describe_augment(augment: dict) -> str:
    """The first line's words for a setting: ``shifts of up to 4 px and flips``."""
    parts = ([f"shifts of up to {augment['shift']} px"] if augment["shift"] else []) + \
        (["left-right flips"] if augment["flip"] else [])
    return " and ".join(parts) or "none"


def option(key: str) -> str:
    """The command-line option of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--" + key.replace("_", "-")


def merge(given: dict, stored: dict | None) -> dict:
    """The settings of a run: ``given`` (None: not given) over :data:`DEFAULTS`, or over the
    ``stored`` settings of a resumed run, where only :data:`CHANGEABLE_ON_RESUME` may differ.

    Raises
    ------
    UserError
        A setting a resumed run cannot change is given with another value.
    """
    given = {k: v for k, v in given.items() if v is not None}
    if "image_size" in given:
        given["image_size"] = list(given["image_size"])
    if given.get("augment", "auto") != "auto":
        try:
            given["augment"] = parse_augment(given["augment"])
        except ValueError as exc:
            raise UserError(f"--{exc}") from None
    if stored is None:
        return {**DEFAULTS, **given}
    for key, value in given.items():
        if key not in CHANGEABLE_ON_RESUME and value != stored.get(key):
            shown = (format_augment(value), format_augment(stored[key])) if key == "augment" \
                else (value, stored.get(key))
            raise UserError(
                f"{option(key)} {shown[0]} differs from the checkpoint's {shown[1]}; drop "
                f"{option(key)} to resume, or start a new run with another --out"
            )
    changed = {k: given[k] for k in CHANGEABLE_ON_RESUME if k in given}
    if "epochs" in changed and (changed["epochs"] == "auto") != (stored["epochs"] == "auto"):
        raise UserError(f"--epochs {changed['epochs']}: the checkpoint's run has --epochs "
                        f"{stored['epochs']}; a resumed run keeps its kind of stop")
    return {**stored, **changed}


def resolve_run_settings(settings: dict) -> dict:
    """Fill in what ``--epochs`` decides: with ``auto``, early stopping on a validation part
    of the training data within :data:`~cnnstep.train.fit.AUTO_TIME_LIMIT` seconds and
    :data:`~cnnstep.train.fit.AUTO_MAX_EPOCHS` epochs, at a constant rate halved on plateaus;
    with a number, every epoch at a cosine decay, validating on the test part (as before
    ``auto`` existed)."""
    out = dict(settings)
    auto = out["epochs"] == "auto"
    # the patience stays "auto" until the data is known (cnnstep.train.fit.auto_patience)
    for key, auto_value, fixed_value in (("patience", "auto", None),
                                         ("time_limit", AUTO_TIME_LIMIT, None),
                                         ("schedule", "constant", "cosine")):
        if out[key] == "auto":
            out[key] = auto_value if auto else fixed_value
    if out["threads"] == "auto":
        out["threads"] = default_threads()
    return out


def loop_settings(settings: dict) -> dict:
    """What :func:`cnnstep.train.fit.prepare` takes from the command's settings."""
    return {"epochs": settings["epochs"], "batch_size": settings["batch_size"],
            "schedule": settings["schedule"], "augment_shift": settings["augment"]["shift"],
            "augment_flip": settings["augment"]["flip"],
            "lr": settings["lr"], "threads": settings["threads"],
            "patience": settings["patience"], "time_limit": settings["time_limit"]}


def resume_changes(settings: dict, given: dict) -> dict:
    """The loop settings a resumed run changes, from the options given on resume."""
    loop = loop_settings(settings)
    return {k: loop[k] for k in ("lr", "threads", "time_limit", "epochs")
            if given.get(k) is not None}


def _choice(value: Any, name: str, choices: Any) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def check_stored(stored: Any, notes: list[str]) -> dict:
    """The settings stored in a checkpoint, checked against their schema; thread counts
    capped at this machine's CPUs (said in ``notes``). ValueError naming the field."""
    if not isinstance(stored, dict):
        raise ValueError("settings must be a mapping")
    missing = sorted(set(DEFAULTS) - set(stored))
    if missing:
        raise ValueError(f"settings lack {', '.join(missing)}")
    s = {k: stored[k] for k in DEFAULTS}
    if not isinstance(s["data"], str) or not s["data"]:
        raise ValueError(f"settings.data must be a name or path, got {s['data']!r}")
    if s["test_data"] is not None and not isinstance(s["test_data"], str):
        raise ValueError(f"settings.test_data must be a path or null, got {s['test_data']!r}")
    if s["image_size"] is not None:
        size = s["image_size"]
        if not isinstance(size, list) or len(size) != 2:
            raise ValueError(f"settings.image_size must be [height, width], got {size!r}")
        for v in size:
            check_int(v, "settings.image_size", 1, 1 << 16)
    check_number(s["test_fraction"], "settings.test_fraction", 1e-9, 1 - 1e-9)
    _choice(s["arch"], "settings.arch", ARCHITECTURES)
    _choice(s["optimizer"], "settings.optimizer", OPTIMIZERS)
    _choice(s["schedule"], "settings.schedule", SCHEDULES)
    if s["epochs"] != "auto":
        check_int(s["epochs"], "settings.epochs", 1, 1 << 31)
    check_int(s["batch_size"], "settings.batch_size", 1, 1 << 31)
    check_number(s["lr"], "settings.lr", 1e-300, 1e6)
    try:
        s["augment"] = parse_augment(s["augment"])
    except ValueError as exc:
        raise ValueError(f"settings.{exc}") from None
    check_int(s["seed"], "settings.seed", 0, 2**63 - 1)
    check_int(s["threads"], "settings.threads", 1, 1 << 31)
    if s["patience"] is not None:
        check_int(s["patience"], "settings.patience", 1, 1 << 31)
    check_number(s["time_limit"], "settings.time_limit", 1e-9, math.inf, optional=True)
    chosen = stored.get("chosen", [])
    if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
        raise ValueError("settings.chosen must be a list of setting names")
    s["chosen"] = chosen
    cpus = machine_cpus()
    if s["threads"] > cpus:
        notes.append(f"the checkpoint's {s['threads']} threads capped at this machine's "
                     f"{cpus} CPUs")
        s["threads"] = cpus
    return s


def upgrade_stored(stored: Any) -> Any:
    """Settings of a checkpoint written before ``auto`` existed: the new keys as they were."""
    if isinstance(stored, dict) and "patience" not in stored:
        stored = {**stored, "patience": None, "time_limit": None}
        if stored.get("threads") is None:
            stored["threads"] = 1
    return stored
