"""Run directories made by someone else on purpose: files that are FIFOs, devices, folders or loops, damaged
metrics lines, wrong-shaped settings and weights that give NaN. Each is one RunError or a skipped line, at once."""

import json
import os
import resource
import subprocess
import sys
import tracemalloc

import pytest
import torch

from mnistctl.errors import RunError
from mnistctl.reading import evaluate, export
from mnistctl.reading.compare import compare
from mnistctl.runs import Status, checkpoint, reader
from mnistctl.runs.reader import Chunk, EventTail, parse_lines
from test_hardening import copies, small_data  # noqa: F401 -- fixtures

FILES = {"metrics.jsonl": "run.read()", "summary.json": "run.summary", "config.json": "run.config"}


def _replace(path, how):
    path.unlink()
    if how == "fifo":
        os.mkfifo(path)
    elif how == "device":
        path.symlink_to("/dev/zero")
    elif how == "folder":
        path.mkdir()
    else:
        path.symlink_to(path.name)  # a loop


def _read_in_a_child(run, expression):
    """``expression`` of ``run`` in a child process that may take 2 GB and 30 s: a hang or an endless read fails the test, not the machine."""
    code = f"import sys\nfrom mnistctl import errors, runs\nrun = runs.Run(sys.argv[1])\ntry:\n    {expression}\nexcept errors.RunError as exc:\n    print(exc)"
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))  # noqa: E731
    return subprocess.run([sys.executable, "-c", code, str(run.path)], capture_output=True, text=True, timeout=30, preexec_fn=limit)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("how", ["fifo", "device", "folder"])
def test_a_run_file_that_is_not_a_regular_file_is_refused_at_once(name, how, copies):
    _, (_, damaged) = copies
    _replace(damaged.path / name, how)
    result = _read_in_a_child(damaged, FILES[name])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{damaged.path / name} is not a regular file (the run directory is damaged)"


@pytest.mark.parametrize("name", ["summary.json", "metrics.jsonl", "config.json"])
@pytest.mark.parametrize("how", ["folder", "loop"])
def test_compare_skips_a_run_whose_file_is_a_folder_or_a_symbolic_link_loop(name, how, copies):
    root, (good, damaged) = copies
    _replace(damaged.path / name, how)
    result = compare(["good", "other"], root, stats=False)
    assert [row["name"] for row in result.rows] == ["good"]
    assert any(w.startswith(f"skipped other: {damaged.path / name} ") for w in result.warnings), result.warnings


def test_weights_that_are_not_a_regular_file_are_not_called_missing(copies):
    _, (_, damaged) = copies
    _replace(damaged.weights_path("best"), "fifo")
    with pytest.raises(RunError, match=r"best.safetensors is not a regular file \(the run directory is damaged\)"):
        damaged.weights("best")
    with pytest.raises(RunError, match="is not a regular file"):
        checkpoint.load(damaged.weights_path("best"))



HUGE = 64 * 2**20


@pytest.mark.parametrize("damage, message", [
    ("padded", r"is unreadable: 67,\d{3},\d{3} bytes follow the [\d,]+ its header declares \(the file is damaged"),
    ("another file", "is unreadable: its first bytes are not a safetensors header"),
    ("cut in its tensors", r"is unreadable: it is cut short at 4,000 of the [\d,]+ bytes its header declares"),
    ("cut in its header", "is unreadable: it is cut short at 20 bytes, inside its header"),
])
def test_a_checkpoint_of_the_wrong_length_is_refused_from_its_header(tmp_path, damage, message):
    """Judged by the length its header declares, before the tensors are read: a huge file named as a checkpoint costs nothing."""
    path = tmp_path / "best.safetensors"
    checkpoint.save(path, {"weight": torch.ones(10_000)}, {"epoch": 1})
    whole = path.read_bytes()
    if damage == "padded":
        os.truncate(path, HUGE)
    elif damage == "another file":
        path.write_bytes(b"")
        os.truncate(path, HUGE)
    else:
        path.write_bytes(whole[: 4000 if damage == "cut in its tensors" else 20])
    tracemalloc.start()
    try:
        with pytest.raises(RunError, match=message):
            checkpoint.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < HUGE // 4


# Damaged metrics lines are skipped, never a crash

GOOD = {"event": "epoch", "time": 1.0, "epoch": 1, "train_loss": 0.5, "train_acc": 0.9, "val_loss": 0.4, "val_acc": 0.9, "lr": 0.1}
DAMAGED = [
    json.dumps({**GOOD, "val_loss": float("nan")}),
    json.dumps({**GOOD, "lr": float("-inf")}),
    json.dumps(GOOD).replace('"lr": 0.1', '"lr": 1e999'),
    json.dumps({"event": "layers", "time": 1.0, "step": 3, "layers": {"conv": {"mean": float("inf")}}}),
    json.dumps({**GOOD, "epoch": 99999999999}),
    json.dumps({**GOOD, "epoch": 1e308}),
    json.dumps({**GOOD, "epoch": 1.5}),
    json.dumps({**GOOD, "train_loss": 10**400}),  # an integer float() overflows on
    json.dumps({"event": "start", "time": 1.0, "epochs": 3, "steps_per_epoch": -1}),
    '{"event": "epoch", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"event": "step", "time": 1, "step": 1' + "0" * 5000 + ', "loss": 1}',  # more digits than Python converts
]


def test_lines_with_nan_infinity_impossible_counts_or_deep_nesting_are_skipped_as_damaged():
    chunk = Chunk()
    parse_lines([line.encode() for line in [json.dumps(GOOD), *DAMAGED]], chunk)
    assert chunk.events == [GOOD] and chunk.corrupt == len(DAMAGED)
    assert chunk.first_problem == "an epoch event with a number that is not finite (NaN or infinity)"



LAYERS = {"event": "layers", "time": 1.0, "epoch": 1, "step": 3,
          "layers": {"conv": {"type": "Conv2d", "mean": 0.1, "std": 1.0, "zeros": 0.0, "grad": None,
                              "params": {"weight": {"norm": 2.0, "grad": 0.5, "update": None}}}}}


@pytest.mark.parametrize("layers, why", [
    ({"conv": 5}, "layer conv is not an object of statistics"),
    ({"conv": {"mean": "x"}}, "layer conv is not an object of statistics"),
    ({"conv": {"type": 3}}, "layer conv is not an object of statistics"),
    ({"conv": {"params": [1]}}, "layer conv is not an object of statistics"),
    ({"conv": {"params": {"weight": 7}}}, "layer conv has parameters that are not objects of statistics"),
    ({"conv": {"params": {"weight": {"update": [1]}}}}, "layer conv has parameters that are not objects of statistics"),
])
def test_a_layers_event_whose_statistics_are_not_shaped_as_written_is_skipped(layers, why):
    """visualize and watch read every layer's statistics: one that is a number or a list was an internal error."""
    chunk = Chunk()
    parse_lines([json.dumps(LAYERS).encode(), json.dumps({**LAYERS, "layers": layers}).encode()], chunk)
    assert chunk.events == [LAYERS] and chunk.first_problem == f"a layers event whose {why}"


def test_a_line_without_end_is_read_in_blocks_and_skipped_past_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "BLOCK", 16)
    monkeypatch.setattr(reader, "MAX_LINE", 1000)
    path = tmp_path / "metrics.jsonl"
    long = json.dumps({**GOOD, "note": "x" * 500})  # over many blocks, within the limit
    path.write_text(json.dumps(GOOD) + "\n" + long + "\n" + "\0" * 5000)
    tail = EventTail(path)
    chunk = tail.read()
    assert chunk.events == [GOOD, json.loads(long)] and chunk.corrupt == 1
    assert chunk.first_problem == "a line of over 0 MB"
    with path.open("a") as f:
        f.write("\n" + json.dumps(GOOD) + "\n")
    assert tail.read().events == [GOOD]


def test_the_events_after_a_line_over_the_limit_are_read(tmp_path, monkeypatch):
    """A huge line in the middle (a crash that wrote junk, then a resumed run) costs its own line, not the run's end."""
    monkeypatch.setattr(reader, "BLOCK", 64)
    monkeypatch.setattr(reader, "MAX_LINE", 1000)
    end = {"event": "end", "time": 2.0, "status": "finished"}
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + "x" * 5000 + "\n" + json.dumps(end) + "\n")
    chunk = reader.read_events(path)
    assert chunk.events == [GOOD, end] and chunk.corrupt == 1 and chunk.first_problem == "a line of over 0 MB"


def test_a_200_mb_line_is_skipped_in_less_memory_than_itself(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    with path.open("a") as f:
        f.write('{"event": "step", "x": "' + "a" * (200 * 2**20) + '"}\n')
    tracemalloc.start()
    try:
        chunk = reader.read_events(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunk.events == [GOOD] and chunk.corrupt == 1
    assert peak < 150 * 2**20


# Settings of the wrong shape: one RunError naming config.json

@pytest.mark.parametrize(
    "change, message",
    [
        ({"arch": 5}, "arch = 5 is not an architecture name"),
        ({"arch_options": "nope"}, "arch_options = 'nope' is not a table of options"),
        ({"epochs": "1"}, "epochs = '1' is not a whole number"),
        ({"seed": True}, "seed = True is not a whole number"),
        ({"channels_last": "yes"}, "channels_last = 'yes' is not true or false"),
        ({"augment": [1]}, "augment = [1] is not a table or null"),
        ({"data": "x"}, "data = 'x' is not a table"),
        ({"data": {"n_train": "abc"}}, "data.n_train = 'abc' is not a whole number or null"),
    ],
)
def test_a_setting_readers_use_in_the_wrong_shape_is_one_run_error(change, message, copies):
    root, (good, damaged) = copies
    damaged.config_path.write_text(json.dumps({**damaged.config, **change}))
    with pytest.raises(RunError) as info:
        damaged.config
    assert (info.value.message, info.value.hint) == (f"{damaged.config_path}: {message}", "the run directory is damaged")
    assert [row["name"] for row in compare(["good", "other"], root, stats=False).rows] == ["good"]


@pytest.mark.parametrize("data", [{"mean": "abc"}, {"std": 0}, {"std": -1.0}, {"mean": 1e999}])
def test_normalization_must_be_finite_with_a_positive_deviation(data, copies):
    _, (_, damaged) = copies
    config = damaged.config
    config["data"].update(data)
    damaged.config_path.write_text(json.dumps(config))
    with pytest.raises(RunError, match="are not finite numbers with std above 0"):
        evaluate.evaluate(damaged)


# Finite weights that overflow to NaN are refused, not scored

@pytest.fixture
def overflowing(copies):
    _, (_, damaged) = copies
    path = damaged.weights_path("best")
    tensors, meta = checkpoint.load(path)
    checkpoint.save(path, {k: torch.full_like(v, 1e30) if v.is_floating_point() else v for k, v in tensors.items()}, meta)
    return damaged


def test_eval_refuses_probabilities_that_are_not_numbers(overflowing):
    with pytest.raises(RunError) as info:
        evaluate.evaluate(overflowing)
    assert info.value.message == "run other (best weights) gives probabilities that are not numbers (NaN or infinite)"


def test_compare_leaves_out_a_run_whose_probabilities_are_not_numbers(copies, overflowing):
    root, (good, _) = copies
    result = compare([], root, all_runs=True)
    assert result.ensemble is None and not result.pairs
    assert any(w.startswith("other is left out of the p-values and ensemble: run other (best weights) gives probabilities that are not numbers") for w in result.warnings)


def test_saved_predictions_that_are_not_numbers_are_computed_again(copies):
    from mnistctl.reading import split_predictions

    _, (good, _) = copies
    from mnistctl.runs import checkpoint

    probs, targets = split_predictions.load_or_compute(good)
    digest = checkpoint.read(good.weights_path("best")).digest  # of the weights on disk: only the NaNs make it computed again
    split_predictions.save(good, "test", "best", torch.full_like(probs, float("nan")), targets, digest=digest)
    again, _ = split_predictions.load_or_compute(good)
    assert torch.equal(again, probs)


def test_export_refuses_probabilities_that_are_not_numbers(overflowing, tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(RunError, match="gives probabilities that are not numbers"):
        export.export_onnx(overflowing, output=tmp_path / "nan.onnx")
    assert not (tmp_path / "nan.onnx").exists()


def test_events_appended_after_a_torn_last_line_start_on_a_line_of_their_own(tmp_path):
    from mnistctl.runs import Run, RunWriter

    run = Run(tmp_path / "torn")
    run.path.mkdir()
    run.metrics_path.write_text('{"event": "start", "time": 1}\n{"event": "end", "sta')  # a crash mid-line
    writer = RunWriter(run)
    writer.event("start", resumed=True)
    writer.close()
    lines = run.metrics_path.read_text().splitlines()
    assert lines[1] == '{"event": "end", "sta' and json.loads(lines[2])["resumed"] is True


def test_a_run_file_with_a_number_too_long_to_read_is_damaged(copies):
    root, (good, _) = copies
    good.summary_path.write_text('{"status": "finished", "test_acc": ' + "9" * 5000 + "}")
    with pytest.raises(RunError) as info:
        good.summary
    assert info.value.message == f"{good.summary_path} is corrupt: a number has more than 4,300 digits" and info.value.hint == "the run directory is damaged"


@pytest.mark.parametrize("text, problem", [
    ('{"a":' + "[" * 100_000 + "]" * 100_000 + "}", "it is nested too deeply"),
    (b'{"a": "\xff"}', "it is not UTF-8 text"),
    ('{"status": "finished",', "Expecting property name enclosed in double quotes: line 1 column 23 (char 22)"),
])
def test_a_damaged_run_file_says_what_is_wrong_with_it(copies, text, problem):
    root, (good, _) = copies
    (good.config_path.write_bytes if isinstance(text, bytes) else good.config_path.write_text)(text)
    with pytest.raises(RunError) as info:
        good.config
    assert info.value.message == f"{good.config_path} is corrupt: {problem}"


def test_a_run_named_from_inside_its_folder_has_the_folders_name(copies, monkeypatch):
    from mnistctl.runs import Run

    root, (good, _) = copies
    monkeypatch.chdir(good.path / "weights")
    assert Run(".").name == "weights" and Run("..").name == good.name and Run("../").name == good.name


def test_a_runs_folder_that_is_a_file_is_named_so(tmp_path):
    from mnistctl.errors import UsageError
    from mnistctl.runs import resolve

    (tmp_path / "notes.txt").write_text("keep")
    for ref in (None, "fast"):
        with pytest.raises(UsageError) as info:
            resolve(ref, tmp_path / "notes.txt")
        assert info.value.message == f"the runs folder {tmp_path / 'notes.txt'} is a file"


# Numbers of the wrong type or out of range in metrics.jsonl: the line is skipped, every reader goes on

@pytest.mark.parametrize("field, value, why", [
    ("val_acc", "abc", "is not a number"),
    ("val_loss", [1], "is not a number"),
    ("lr", "abc", "is not a number"),
    ("images_per_s", {}, "is not a number"),
    ("epoch_time", "1", "is not a number"),
    ("elapsed", None, "is not a number"),
    ("val_acc", 5, "is not from 0 to 1"),
    ("train_acc", -0.5, "is not from 0 to 1"),
    ("lr", -0.1, "is negative"),
    ("elapsed", -5, "is negative"),
])
def test_an_event_with_a_number_of_the_wrong_type_or_out_of_range_is_a_damaged_line(field, value, why):
    chunk = Chunk()
    parse_lines([json.dumps({**GOOD, field: value}).encode(), json.dumps(GOOD).encode()], chunk)
    assert chunk.events == [GOOD] and chunk.corrupt == 1
    assert chunk.first_problem == f"an epoch event whose {field} {why}"


def test_a_missing_validation_is_still_null_in_epoch_and_checkpoint_events():
    events = [{**GOOD, "val_loss": None, "val_acc": None}, {"event": "checkpoint", "time": 1.0, "epoch": 1, "kind": "last", "val_acc": None}]
    chunk = Chunk()
    parse_lines([json.dumps(e).encode() for e in events], chunk)
    assert chunk.events == events and chunk.corrupt == 0


def _damage_last_epoch(run, **change):
    events = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    last = max(e["epoch"] for e in events if e["event"] == "epoch")
    events = [{**e, **change} if e["event"] in ("epoch", "checkpoint") and e.get("epoch") == last else e for e in events]
    run.metrics_path.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.mark.parametrize("change", [{"val_acc": "abc"}, {"val_loss": [1]}, {"lr": "abc"}, {"images_per_s": {}}, {"elapsed": "1"}])
def test_compare_visualize_and_watch_read_past_an_event_whose_number_is_not_one(change, copies, capsys):
    from typer.testing import CliRunner

    from mnistctl.cli import app

    root, (good, damaged) = copies
    _damage_last_epoch(damaged, **change)
    result = compare(["good", "other"], root, stats=False)
    assert [row["name"] for row in result.rows] == ["good", "other"]
    assert f"whose {next(iter(change))} is not a number" in capsys.readouterr().err
    curves = CliRunner().invoke(app, ["visualize", str(damaged.path), "--what", "curves", "--out", str(root / "plots")])
    assert curves.exit_code == 0, curves.output
    assert (root / "plots" / "curves.png").stat().st_size > 0
    chunk = EventTail(damaged.metrics_path).read()  # what the dashboard reads
    assert chunk.corrupt >= 1 and all(not isinstance(e.get(k), (str, list, dict)) for e in chunk.events for k in change)


# summary.json values out of range, or a summary that is not a table: a warning, the values from metrics.jsonl

def test_summary_values_out_of_range_are_replaced_by_the_metrics_with_a_warning(copies):
    root, (good, damaged) = copies
    summary = json.loads(damaged.summary_path.read_text())
    damaged.summary_path.write_text(json.dumps({**summary, "test_acc": 5, "best_val_acc": -3, "wall_time": -5}))
    result = compare(["good", "other"], root, stats=False)
    row = {r["name"]: r for r in result.rows}["other"]
    assert row["test_acc"] == damaged.last("test")["test_acc"] and row["val_acc"] == max(e["val_acc"] for e in damaged.epochs())
    assert row["time"] == damaged.epochs()[-1]["elapsed"]
    assert any(w.startswith(f"{damaged.summary_path} holds best_val_acc=-3 (not from 0 to 1), test_acc=5 (not from 0 to 1), wall_time=-5 (negative); shown:")
               for w in result.warnings), result.warnings


@pytest.mark.parametrize("text, held", [("[1, 2]", "a list"), ('"str"', "a str"), ("null", "null")])
def test_a_summary_that_is_not_a_table_is_warned_about_and_the_metrics_shown(text, held, copies):
    root, (good, damaged) = copies
    damaged.summary_path.write_text(text)
    result = compare(["good", "other"], root, stats=False)
    row = {r["name"]: r for r in result.rows}["other"]
    assert row["test_acc"] == damaged.last("test")["test_acc"]
    assert f"{damaged.summary_path} holds {held}, not a table; shown: the values in metrics.jsonl" in result.warnings


# No named run could be read: each reason, then one RunError naming the folder

def test_compare_with_no_readable_run_says_why_and_is_a_run_error(copies, capsys, monkeypatch):
    root, (good, damaged) = copies
    good.config_path.write_text("")
    damaged.config_path.write_text("[1, 2]")
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(root.parent / "elsewhere"))
    for refs, all_runs in (([str(good.path)], False), ([str(root)], True)):
        with pytest.raises(RunError) as info:
            compare(refs, all_runs=all_runs, stats=False)
        assert info.value.exit_code == 1 and info.value.message == "no run could be read"
        assert info.value.hint == f"the warnings above say why; check the runs in {root}"
        err = capsys.readouterr().err
        assert f"skipped good: {good.config_path} is corrupt" in err
        assert ("holds a list" in err) == all_runs


# A resume state whose counters this run cannot have reached: one RunError, the run left as it was

@pytest.fixture
def stopped(tmp_path, small_data):
    """A run of 2 epochs of 4 steps, stopped at the second step of its second epoch."""
    from mnistctl.runs import Run
    from mnistctl.training.trainer import Observer
    from test_hardening import trainer

    class StopMidway(Observer):
        def step(self, epoch, step, steps, loss, acc):
            if (epoch, step) == (2, 2):
                stopping.request_stop()

    stopping = trainer(tmp_path, small_data, epochs=2)
    stopping.observer = StopMidway()
    assert stopping.run()["status"] == "interrupted"
    return Run(stopping.run_dir)


@pytest.mark.parametrize("key, value, why", [
    ("epoch", -3, "not a whole number from 0 to 2"),
    ("epoch", "one", "not a whole number from 0 to 2"),
    ("epoch", 1.5, "not a whole number from 0 to 2"),
    ("epoch", 9, "not a whole number from 0 to 2"),
    ("step_in_epoch", 99999, "not a whole number from 0 to 4"),
    ("global_step", 3, "not a whole number from 5 to 6"),
    ("bad_epochs", 2, "not a whole number from 0 to 1"),
    ("running.seen", 0, "not a whole number from 1 to 9,007,199,254,740,992"),
    ("running.correct", 999, "not a whole number from 0 to 128"),
    ("elapsed", -1.0, "not a finite number of 0 or more"),
    ("elapsed", float("nan"), "not a finite number of 0 or more"),
    ("best.val_acc", 1.5, "not a number from 0 to 1"),
])
def test_a_resume_state_with_counters_out_of_range_is_refused_and_the_run_kept(key, value, why, stopped):
    from mnistctl.training.trainer import Trainer

    state = checkpoint.load_state(stopped.state_path)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"], state["running"]["seen"]) == (1, 2, 6, 128)
    *parents, name = key.split(".")
    (state[parents[0]] if parents else state)[name] = value
    checkpoint.save_state(stopped.state_path, state)
    before = {p: p.read_bytes() for p in stopped.path.rglob("*") if p.is_file()}
    with pytest.raises(RunError) as info:
        Trainer.resume(stopped).run()
    assert info.value.message == f"{stopped.state_path} is not a resume state of run {stopped.name} ({key} = {value!r}, {why})"
    assert {p: p.read_bytes() for p in stopped.path.rglob("*") if p.is_file()} == before
    assert stopped.status() == Status.INTERRUPTED


def test_a_checked_resume_state_still_resumes(stopped):
    from mnistctl.training.trainer import Trainer

    assert Trainer.resume(stopped).run()["status"] == "finished"
    assert [e["epoch"] for e in stopped.epochs()] == [1, 2]
