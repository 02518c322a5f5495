"""The run directory is the contract: every reader of one real run agrees on its status, epochs and best epoch."""

import subprocess
import sys
from pathlib import Path

import pytest

from mnistctl import runs
from mnistctl.reading import compare, evaluate
from mnistctl.reading.visualize import Plots
from mnistctl.runs import Kind, Status
from mnistctl.runs.reader import EventTail
from mnistctl.training import config as trainconfig
from mnistctl.training.trainer import Observer, Trainer
from mnistctl.tui.state import RunState


class CrashAt(Observer):
    """Fails the run at (epoch, step), as a crash would: no checkpoint is written on the way out."""

    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def step(self, epoch, step, steps, loss, acc):
        if (epoch, step) == self.at:
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def replayed_run(tmp_path_factory, data_dir):
    """Four epochs, checkpointed every second one, crashed in epoch 4 and resumed: epoch 3 is logged twice."""
    settings = {"arch": "lenet", "epochs": 4, "limit": 512, "batch_size": 128, "val_split": 500, "log_every": 2,
                "checkpoint_every": 2, "optimizer": "adam", "scheduler": "none", "name": "contract"}
    trainer = Trainer(trainconfig.resolve(settings), CrashAt(4, 2), tmp_path_factory.mktemp("runs"), data_dir)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.run()
    run = runs.Run(trainer.run_dir)
    assert run.status() == Status.FAILED
    resumed = Trainer.resume(run)
    assert resumed.run()["status"] == Status.FINISHED
    return runs.Run(trainer.run_dir)


def test_the_stream_really_repeats_an_epoch(replayed_run):
    logged = [e["epoch"] for e in replayed_run.events(Kind.EPOCH)]
    assert logged == [1, 2, 3, 3, 4]
    assert [e["start_epoch"] for e in replayed_run.events(Kind.START)] == [0, 2]


def test_every_reader_agrees(replayed_run):
    run = replayed_run
    summary = run.summary
    epochs = [e["epoch"] for e in run.epochs()]
    best = summary["best_epoch"]
    assert epochs == [1, 2, 3, 4] and summary["status"] == run.status() == Status.FINISHED

    state = RunState(config=run.config)
    for event in EventTail(run.metrics_path).read().events:
        state.apply(event)
    assert state.status() == Status.FINISHED
    assert sorted(state.epochs) == epochs
    assert state.best["epoch"] == best
    assert state.progress.epoch == 4

    row = compare.describe(run)
    assert (row["status"], row["epochs"], row["best_epoch"]) == (Status.FINISHED, 4, best)
    assert compare.describe(run)["val_acc"] == max(e["val_acc"] for e in run.epochs() if e["epoch"] == best)

    _, figure = Plots(run).curves()
    plotted = {tuple(line.get_xdata()) for ax in figure.axes for line in ax.lines if len(line.get_xdata()) == len(epochs)}
    assert tuple(epochs) in plotted

    assert evaluate.checkpoint_epoch(run, "best") == best
    with pytest.raises(Exception, match="already finished"):
        Trainer.resume(run)


def test_a_damaged_line_is_skipped_with_a_warning_by_every_reader(replayed_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(replayed_run.path, copy)
    with (copy / replayed_run.metrics_path.name).open("a") as f:
        f.write('5\n[]\n{"event": "end"}\n{"event": "epoch", "time": 1, "epoch": "x", "train_loss": 1, "train_acc": 0}\n')
    run = runs.Run(copy)
    assert run.status() == Status.FINISHED and [e["epoch"] for e in run.epochs()] == [1, 2, 3, 4]
    assert "skipped 4 unreadable line(s)" in capsys.readouterr().err
    assert EventTail(run.metrics_path).read().corrupt == 4
    assert compare.describe(run)["epochs"] == 4


def copy_cut(run, where, keep):
    """A copy of ``run`` whose metrics.jsonl keeps only its first ``keep`` events, quiet long enough to be stalled."""
    import os
    import shutil
    import time

    shutil.copytree(run.path, where)
    metrics = where / run.metrics_path.name
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:keep]))
    then = time.time() - runs.STALLED_AFTER - 10
    os.utime(metrics, (then, then))
    return runs.Run(where)


def test_a_finished_run_whose_metrics_lost_their_end_is_finished_with_the_test_figures_of_its_summary(replayed_run, tmp_path):
    events = list(replayed_run.events())
    tested = next(i for i, e in enumerate(events) if e["event"] == Kind.TEST)
    run = copy_cut(replayed_run, tmp_path / "cut", tested)  # the test and end events lost, summary.json whole
    assert run.status() == Status.FINISHED
    row = compare.describe(run)
    assert (row["status"], row["test_acc"], row["test_loss"]) == (Status.FINISHED, run.summary["test_acc"], run.summary["test_loss"])
    with pytest.raises(Exception, match="already finished"):
        Trainer.resume(run)


def test_a_resumed_run_is_not_ended_by_the_summary_of_its_earlier_stop(replayed_run, tmp_path):
    import json
    import os

    events = list(replayed_run.events())
    resumed = [i for i, e in enumerate(events) if e["event"] == Kind.START][-1]
    run = copy_cut(replayed_run, tmp_path / "resumed", resumed + 2)  # crashed, resumed, then quiet: no end yet
    run.summary_path.write_text(json.dumps({**replayed_run.summary, "status": "failed", "test_acc": None, "test_loss": None}))
    before = events[resumed]["time"] - 5  # the summary the crash wrote, before the resume
    os.utime(run.summary_path, (before, before))
    assert run.status() == Status.STALLED and compare.describe(run)["status"] == Status.STALLED
    os.utime(run.summary_path)  # written after the resume started: its end
    assert run.status() == Status.FAILED


def test_import_layers_hold():
    """import-linter's layer contracts in pyproject.toml: no upward import, no circle."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(lint)], cwd=Path(__file__).parents[1], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
