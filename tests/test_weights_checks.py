"""Weights that do not fit their run's model, or hold NaN, are refused in one line naming what is wrong."""

import shutil

import pytest
import torch

from mnistctl import runs
from mnistctl.errors import RunError
from mnistctl.models import load_model
from mnistctl.runs import checkpoint


def _changed(short_run, tmp_path, change):
    copy = tmp_path / "runs" / "changed"
    shutil.copytree(short_run.path, copy)
    path = copy / "weights" / "best.safetensors"
    tensors, meta = checkpoint.load(path)
    checkpoint.save(path, change(tensors), meta)
    return runs.Run(copy)


def _first(tensors):
    return next(iter(tensors))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: {k: v.to(torch.int8) for k, v in t.items()}, r"holds int8, not float32"),
        (lambda t: {**t, "extra.weight": torch.zeros(2)}, r"unknown extra\.weight"),
        (lambda t: {k: v for i, (k, v) in enumerate(t.items()) if i}, r": no \w+"),
        (lambda t: {k: (v[:1] if i == 0 else v) for i, (k, v) in enumerate(t.items())}, r"has shape \(1,"),
        (lambda t: {k: (v.fill_(float("nan")) if i == 0 else v) for i, (k, v) in enumerate(t.items())}, r"hold NaN or infinite values"),
    ],
    ids=["int8", "extra", "missing", "shape", "nan"],
)
def test_weights_that_do_not_fit_or_hold_nan_are_refused(short_run, tmp_path, change, message):
    run = _changed(short_run, tmp_path, change)
    with pytest.raises(RunError, match=message) as caught:
        load_model(run)
    assert "\n" not in caught.value.message


def test_float64_weights_still_load(short_run, tmp_path):
    run = _changed(short_run, tmp_path, lambda t: {k: v.double() if v.is_floating_point() else v for k, v in t.items()})
    assert load_model(run) is not None


def test_a_config_naming_no_architecture_is_a_damaged_run(short_run, tmp_path):
    import json

    run = _changed(short_run, tmp_path, lambda t: t)
    config = json.loads(run.config_path.read_text())
    del config["arch"]
    run.config_path.write_text(json.dumps(config))
    with pytest.raises(RunError, match="names no architecture"):
        load_model(run)


@pytest.mark.parametrize("options", [{"channels": ["16", "24"]}, {"dropout": "x"}])
def test_options_a_config_holds_as_text_are_a_damaged_run_not_a_flag_to_fix(options, short_run, tmp_path):
    import json

    run = _changed(short_run, tmp_path, lambda t: t)
    config = json.loads(run.config_path.read_text())
    config["arch_options"].update(options)
    run.config_path.write_text(json.dumps(config))
    with pytest.raises(RunError) as caught:
        load_model(run)
    assert caught.value.message.startswith(f"{run.config_path}: the architecture '{config['arch']}' cannot be built with")
    assert "--set" not in caught.value.hint and "changed or damaged" in caught.value.hint


def test_a_run_with_only_initial_weights_hints_at_them(short_run, tmp_path):
    run = _changed(short_run, tmp_path, lambda t: t)
    for which in ("best", "last"):
        run.weights_path(which).unlink()
    with pytest.raises(RunError) as caught:
        load_model(run)
    assert caught.value.hint.endswith("pass --weights initial for its untrained weights")


@pytest.mark.parametrize("status, hint", [
    ("failed", "it failed before its first epoch ended: pass --weights initial for its untrained weights"),
    ("interrupted", "it was stopped before its first epoch ended: resume it with mnistctl train --resume {name}, or pass --weights initial for its untrained weights"),
])
def test_a_run_that_ended_in_its_first_epoch_says_how(short_run, tmp_path, status, hint):
    import json

    run = _changed(short_run, tmp_path, lambda t: t)
    for which in ("best", "last"):
        run.weights_path(which).unlink()
    start = next(line for line in run.metrics_path.read_text().splitlines() if json.loads(line)["event"] == "start")
    run.metrics_path.write_text(start + "\n" + json.dumps({"event": "end", "time": 1.0, "status": status, "step": 3}) + "\n")
    with pytest.raises(RunError) as caught:
        load_model(run)
    assert caught.value.hint == hint.format(name=run.name)
