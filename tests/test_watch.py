"""mnistctl watch: the metrics tailer, the folded run state, and the Textual dashboard driven by Pilot."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Footer

from mnistctl.tui.app import KeysScreen, TrainingEnded, WatchApp, run_with_trainer
from mnistctl.tui.charts import AccuracyChart, LossChart, y_labels
from mnistctl.tui.dashboard import Dashboard
from mnistctl.tui.state import RunState
from mnistctl.runs.reader import EventTail
from mnistctl.tui.widgets import (
    EpochTable,
    EventLog,
    ProgressPanel,
    RatesPanel,
    RunHeader,
    StatusBadge,
    describe,
    elapsed_seconds,
)

T0 = 1_700_000_000.0
STEPS_PER_EPOCH = 10
ACCS = {1: (0.9012, 0.9456), 2: (0.9523, 0.9687), 3: (0.9711, 0.9655), **{n: (0.97 + n / 1000, 0.966 + n / 1000) for n in range(4, 9)}}  # epoch: (train_acc, val_acc)


def config(name: str, epochs: int = 3) -> dict:
    return {
        "name": name, "arch": "lenet", "arch_options": {}, "optimizer": "adamw", "optimizer_options": {},
        "lr": 0.002, "weight_decay": 0.0, "scheduler": "cosine", "scheduler_options": {}, "epochs": epochs,
        "batch_size": 64, "augment": None, "val_split": 5000, "early_stopping": None, "seed": 0,
        "device": "cpu", "precision": "fp32", "channels_last": False, "checkpoint_every": 1, "log_every": 5,
    }  # fmt: skip


def start(epochs: int = 3, time_: float = T0) -> dict:
    return {"event": "start", "time": time_, "run": "r", "epochs": epochs, "steps_per_epoch": STEPS_PER_EPOCH, "start_epoch": 0, "resumed": False}


def steps(epoch: int, t: float) -> list[dict]:
    first = (epoch - 1) * STEPS_PER_EPOCH
    return [
        {"event": "step", "time": t + s, "epoch": epoch, "step": first + s, "loss": round(2.0 / (first + s), 4), "lr": 0.002, "images_per_s": 1234.0}
        for s in (5, 10)
    ]


def epoch(n: int, t: float, best: bool = True) -> list[dict]:
    train_acc, val_acc = ACCS[n]
    events = [{"event": "epoch", "time": t, "epoch": n, "train_loss": 0.5 / n, "train_acc": train_acc, "val_loss": 0.4 / n,
               "val_acc": val_acc, "lr": 0.001 * n, "epoch_time": 10.0, "elapsed": 10.0 * n, "images_per_s": 1500.0 + n, "best": best}]  # fmt: skip
    if best:
        events.append({"event": "checkpoint", "time": t, "epoch": n, "kind": "best", "val_acc": val_acc})
    return events + [{"event": "checkpoint", "time": t, "epoch": n, "kind": "last", "val_acc": val_acc}]


def finished_history() -> list[dict]:
    events = [start()]
    for n in (1, 2, 3):
        t = T0 + 10 * n
        events += steps(n, t - 10) + epoch(n, t, best=n < 3)
    events.append({"event": "test", "time": T0 + 31, "checkpoint": "best", "epoch": 2, "test_loss": 0.0712, "test_acc": 0.9734})
    return events + [{"event": "end", "time": T0 + 32, "status": "finished", "message": ""}]


def make_run(root: Path, name: str, events: list[dict] | None = None) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config(name)))
    if events is not None:
        append(path, events)
    return path


def append(path: Path, events: list[dict], raw: str = "") -> None:
    with (path / "metrics.jsonl").open("a") as f:
        f.write("".join(json.dumps(e) + "\n" for e in events) + raw)


def text(widget) -> str:
    if isinstance(widget, EventLog):
        return " ".join(" ".join(line.text for line in widget.lines).split())  # wrapped lines joined again
    if isinstance(widget, RunHeader):
        return "\n".join(text(line) for line in widget.query("#title, #setup"))
    return str(widget.render())


def drive(app: WatchApp, test, size=(80, 24), **options) -> None:
    async def main():
        async with app.run_test(size=size, **options) as pilot:
            await test(pilot)

    asyncio.run(main())


async def until(pilot, condition, what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


# The tailer and the state, without Textual


def test_tail_reads_only_appended_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = EventTail(path)
    assert tail.read().events == [] and tail.read().mtime is None  # no file yet

    path.write_text(json.dumps(start()) + "\n" + '{"event": "step", "ti')
    first = tail.read()
    assert [e["event"] for e in first.events] == ["start"] and first.mtime is not None
    assert tail.read().events == []  # nothing new, the partial line is held back

    with path.open("a") as f:
        f.write('me": 1, "step": 3, "loss": 0.5}\nnot json\n')
    second = tail.read()
    assert second.events == [{"event": "step", "time": 1, "step": 3, "loss": 0.5}]
    assert second.corrupt == 1

    path.write_text(json.dumps(start(time_=T0 + 99)) + "\n")  # rewritten shorter: read again from the top
    again = tail.read()
    assert again.restarted and again.events[0]["time"] == T0 + 99


def test_state_folds_history_into_progress_eta_and_status():
    state = RunState()
    for event in [start()] + steps(1, T0) + epoch(1, T0 + 10) + steps(2, T0 + 10)[:1]:
        state.apply(event)
    p = state.progress
    assert (p.epoch, p.epochs, p.step, p.steps, p.step_in_epoch) == (1, 3, 15, 30, 5)
    # 15 steps took 15 s since the start, so the 15 steps left take 15 s; 3 s after the last step, 12 s are left
    assert state.eta(now=T0 + 15 + 3) == pytest.approx(12.0)
    state.mtime = T0 + 15
    assert state.status(now=T0 + 20, stalled_after=60) == "running"
    assert state.status(now=T0 + 100, stalled_after=60) == "stalled"
    assert [e["kind"] for e in state.notes if e["event"] == "checkpoint"] == ["best"]  # "last" saves are not news
    state.apply({"event": "end", "time": T0 + 16, "status": "interrupted", "message": "stopped"})
    assert state.status(now=T0 + 100, stalled_after=60) == "interrupted" and state.eta() is None
    state.apply({**start(), "time": T0 + 50, "start_epoch": 1, "resumed": True})
    assert state.status(now=T0 + 51, stalled_after=60) == "running"
    assert list(state.epochs) == [1] and max(x for x, _ in state.losses) <= 1.0


def test_a_run_resumed_mid_epoch_counts_its_pace_and_epoch_from_where_it_resumed():
    state = RunState()
    resumed = {**start(), "time": T0 + 50, "start_epoch": 1, "start_step": 5, "resumed": True}
    state.apply(resumed)
    state.apply({"event": "step", "time": T0 + 55, "step": 20, "loss": 0.3})
    # 5 steps (15 to 20) in the 5 s since resuming; 10 steps are left
    assert state.eta(now=T0 + 55) == pytest.approx(10.0)
    assert describe(resumed)[0] == "resumed at epoch 2 of 3, step 5"


def test_a_run_resumed_mid_epoch_keeps_the_step_losses_logged_before_the_point_it_resumed_from():
    state = RunState()
    for event in [start(), *({"event": "step", "time": T0 + s, "step": s, "loss": 1 / s} for s in (3, 6, 9))]:
        state.apply(event)
    state.apply({"event": "end", "time": T0 + 10, "status": "interrupted", "message": "stopped", "step": 9})
    state.apply({**start(), "time": T0 + 50, "start_epoch": 0, "start_step": 7, "resumed": True})  # the state saved at step 7
    assert state.losses == [(0.3, 1 / 3), (0.6, 1 / 6)]  # step 9 is trained again


def test_a_new_epoch_starts_with_an_empty_step_bar():
    state = RunState()
    for event in [start()] + steps(1, T0) + epoch(1, T0 + 10):
        state.apply(event)
    p = state.progress
    assert (p.current, p.step_in_epoch) == (2, 0)  # not epoch 1's full bar under epoch 2's label
    state.apply(steps(2, T0 + 10)[0])
    assert (state.progress.current, state.progress.step_in_epoch) == (2, 5)


def test_an_early_stopped_run_tests_with_no_epoch_under_way():
    state = RunState()
    for event in [start()] + steps(1, T0) + epoch(1, T0 + 10) + steps(2, T0 + 10) + epoch(2, T0 + 20, best=False):
        state.apply(event)
    assert (state.progress.current, elapsed_seconds(state, now=T0 + 25)) == (3, 25.0)
    state.apply({"event": "early_stop", "time": T0 + 20, "epoch": 2, "patience": 1, "best_epoch": 1})
    assert (state.progress.current, state.progress.step_in_epoch, elapsed_seconds(state, now=T0 + 25)) == (2, 10, 20.0)


def test_elapsed_is_the_training_time_train_reports_without_the_test_pass():
    state = RunState()
    for event in finished_history()[:-2]:  # the last epoch logged, the test pass under way
        state.apply(event)
    assert elapsed_seconds(state, now=T0 + 31) == 30.0  # epoch 3's elapsed, as train prints it
    for event in finished_history()[-2:]:
        state.apply(event)
    assert elapsed_seconds(state, now=T0 + 100) == 30.0


# The dashboard


def test_an_interrupted_sweep_trial_shows_it_stopped_and_its_drawn_rate_in_short(tmp_path):
    path = make_run(tmp_path, "trial", [start()] + steps(1, T0) + epoch(1, T0 + 10))
    append(path, [{"event": "end", "time": T0 + 12, "status": "interrupted", "message": "stopped at epoch 2, step 3"}])
    (path / "config.json").write_text(json.dumps({**config("trial"), "lr": 0.02806116792563159, "weight_decay": 1.23456789e-05}))
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "interrupted", "status interrupted")
        assert "ETA stopped" in text(app.query_one(ProgressPanel).query_one("#eta"))
        assert "adamw lr 0.0281 wd 1.23e-05" in text(app.query_one(RunHeader))

    drive(app, check, size=(120, 30))

def test_the_header_names_the_runs_folder_and_says_when_its_config_is_damaged(tmp_path):
    renamed = make_run(tmp_path, "renamed", [start()])
    (renamed / "config.json").write_text(json.dumps(config("original")))  # a run copied to another folder
    damaged = make_run(tmp_path, "damaged", [start()])
    (damaged / "config.json").write_text("[1, 2]")
    for path, expected in [(renamed, "renamed  lenet"), (damaged, f"{damaged / 'config.json'} holds a list, not settings")]:
        app = WatchApp(path, poll=0.05)

        async def check(pilot):
            await until(pilot, lambda: text(app.query_one(RunHeader)).startswith(expected), expected)

        drive(app, check, size=(120, 30))


def test_a_run_that_failed_or_stopped_mid_epoch_shows_that_epoch(tmp_path):
    nan = {"event": "end", "time": T0 + 2, "status": "failed", "message": "the loss became nan at epoch 1, step 2", "step": 2}  # before any step event
    failed = make_run(tmp_path, "failed", [start(), nan])
    stopped = [start()] + steps(1, T0) + epoch(1, T0 + 10) + steps(2, T0 + 10)[:1]
    make_run(tmp_path, "stopped", stopped + [{"event": "end", "time": T0 + 16, "status": "interrupted", "message": "stopped at epoch 2, step 5"}])
    os.utime(failed / "config.json", (T0, T0))  # oldest first in the run list
    app = WatchApp(failed, poll=0.05)

    def labels() -> tuple[str, str, str]:
        panel = app.query_one(ProgressPanel)
        return tuple(text(panel.query_one(f"#{name}")) for name in ("epoch-label", "step-label", "eta"))

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "failed", "status failed")
        epoch_label, step_label, eta = labels()
        assert (epoch_label, step_label) == ("epoch 1/3", "step 2/10") and eta.startswith("ETA failed")
        await pilot.press("n")
        await until(pilot, lambda: app.query_one(StatusBadge).status == "interrupted", "status interrupted")
        epoch_label, step_label, eta = labels()
        assert (epoch_label, step_label) == ("epoch 2/3", "step 5/10") and eta.startswith("ETA stopped")

    drive(app, check, size=(120, 30))


def test_header_names_the_device_training_picked_and_gives_the_setup_line_the_whole_width(tmp_path):
    path = make_run(tmp_path, "auto", [{**start(), "device": "cpu"}])
    (path / "config.json").write_text(json.dumps({**config("auto"), "device": "auto", "arch_options": {"channels": "32,64", "hidden": 128}}))
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        header = app.query_one(RunHeader)
        await until(pilot, lambda: "cpu" in text(header), "the device from the start event")
        assert "auto" not in text(header).split("\n")[1]
        assert app.query_one("#setup").region.width == header.content_region.width  # the badge only shares the first line

    drive(app, check, size=(100, 30))


def test_finished_run_opens_with_its_whole_history(tmp_path):
    make_run(tmp_path, "older", [start()])
    path = make_run(tmp_path, "lenet-fixture", finished_history())
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "finished", "status finished")
        await until(pilot, lambda: "saved: val" in text(app.query_one(EventLog)), "events logged")
        header = text(app.query_one(RunHeader))
        assert "lenet-fixture" in header and "lenet" in header and "adamw lr 0.002" in header and "batch 64" in header
        assert "FINISHED" in text(app.query_one(StatusBadge))

        table = app.query_one(EpochTable)
        assert table.row_count == 3
        row = dict(zip([str(c.label) for c in table.columns.values()], table.get_row("2")))
        assert row["epoch"] == "2 ★" and row["val loss"] == "0.2000" and row["val acc"] == "96.87%"
        assert table.get_row("3")[0] == "3"  # not the best epoch

        loss, acc = app.query_one(LossChart).series, app.query_one(AccuracyChart).series
        assert acc["val"] == ([1.0, 2.0, 3.0], [pytest.approx(94.56), pytest.approx(96.87), pytest.approx(96.55)])
        assert loss["val"][1] == pytest.approx([0.4, 0.2, 0.4 / 3])
        assert loss["train (steps)"][0] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]  # step / steps_per_epoch

        rates = text(app.query_one(RatesPanel))
        assert "96.87% (ep 2)" in rates and "1,234" in rates and "2.00e-03" in rates
        progress = app.query_one(ProgressPanel)
        assert "epoch 3/3" in text(progress.query_one("#epoch-label")) and "ETA done" in text(progress.query_one("#eta"))

        log = text(app.query_one(EventLog))
        for line in ("started: 3 epochs × 10 steps", "best epoch 2 saved: val 96.87%", "test 97.34%", "finished"):
            assert line in log
        assert "epoch 3 saved" not in log  # epoch 3 was not the best

    drive(app, check)


def test_lines_appended_while_watching_show_up_and_the_run_finishes(tmp_path):
    path = make_run(tmp_path, "live", [start()] + steps(1, T0))
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        table, chart = app.query_one(EpochTable), app.query_one(AccuracyChart)
        await until(pilot, lambda: app.query_one(LossChart).series.get("train (steps)", ([],))[0] == [0.5, 1.0], "steps plotted")
        assert app.query_one(StatusBadge).status == "running" and table.row_count == 0

        line = json.dumps(epoch(2, T0 + 20)[0]) + "\n"
        append(path, epoch(1, T0 + 10), raw=line[:30])  # the last line is still being written
        await until(pilot, lambda: table.row_count == 1, "epoch 1 in the table")
        assert chart.series["val"] == ([1.0], [pytest.approx(94.56)])
        await pilot.pause(0.2)
        assert table.row_count == 1 and "unreadable" not in text(app.query_one(EventLog))

        with (path / "metrics.jsonl").open("a") as f:  # the rest of that line, then the end
            f.write(line[30:])
        append(path, [{"event": "end", "time": T0 + 21, "status": "failed", "message": "loss is NaN"}])
        await until(pilot, lambda: app.query_one(StatusBadge).status == "failed", "status failed")
        assert table.row_count == 2 and chart.series["val"][0] == [1.0, 2.0]
        log = text(app.query_one(EventLog))
        assert "failed: loss is NaN" in log and "unreadable" not in log

    drive(app, check)


def test_missing_metrics_file_waits_then_stalls_then_follows(tmp_path):
    path = make_run(tmp_path, "fresh")
    app = WatchApp(path, stalled_after=2.0, poll=0.05)  # longer than the app takes to start on a busy machine

    async def check(pilot):
        badge = app.query_one(StatusBadge)
        assert badge.status == "waiting"
        await until(pilot, lambda: badge.status == "stalled", "stalled without metrics")
        assert "stalled: no new metrics" in text(app.query_one(EventLog))
        append(path, [start(time_=time.time())])
        await until(pilot, lambda: badge.status == "running", "running once metrics arrive")
        assert "epoch 1/3" in text(app.query_one("#epoch-label"))  # the epoch under way

    drive(app, check)


def test_a_run_deleted_while_watched_is_said_to_be_gone(tmp_path):
    import shutil

    path = make_run(tmp_path, "doomed", [start(time_=time.time())])
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "running", "running")
        shutil.rmtree(path)
        await until(pilot, lambda: "is gone: the run was deleted or moved" in text(app.query_one(EventLog)), "the run said to be gone")

    drive(app, check)


def test_old_unfinished_run_is_stalled(tmp_path):
    path = make_run(tmp_path, "abandoned", [start()] + steps(1, T0))
    os.utime(path / "metrics.jsonl", (T0, T0))
    app = WatchApp(path, stalled_after=60, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "stalled", "stalled")
        assert "STALLED" in text(app.query_one(StatusBadge))
        # no countdown, and the clock stops at the last step logged (10 s after the start)
        assert "ETA stalled  elapsed 0:10 " in text(app.query_one(ProgressPanel).query_one("#eta"))

    drive(app, check)



def test_a_finished_run_whose_metrics_lost_their_end_ends_as_its_summary_says(tmp_path):
    path = make_run(tmp_path, "cut", [start()] + steps(1, T0))
    os.utime(path / "metrics.jsonl", (T0, T0))
    (path / "summary.json").write_text(json.dumps({"status": "finished", "test_acc": 0.9876, "test_loss": 0.04}))
    app = WatchApp(path, stalled_after=60, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "finished", "finished, as summary.json says")
        assert "the end of metrics.jsonl is missing" in text(app.query_one(EventLog))
        assert "stalled" not in text(app.query_one(EventLog))

    drive(app, check)

def test_the_clock_of_a_run_seen_to_stall_stops_where_it_was(tmp_path):
    path = make_run(tmp_path, "stalling")
    app = WatchApp(path, stalled_after=2.0, poll=0.05)

    def elapsed() -> int:
        minutes, seconds = text(app.query_one("#eta")).split("elapsed ")[1].split()[0].split(":")
        return 60 * int(minutes) + int(seconds)

    async def check(pilot):
        now = time.time()
        append(path, [start(time_=now - 30), {"event": "step", "time": now, "epoch": 1, "step": 5, "loss": 1.0, "lr": 0.1, "images_per_s": 10.0}])
        badge, shown = app.query_one(StatusBadge), []
        await until(pilot, lambda: badge.status == "running", "running")
        while badge.status == "running":
            shown.append(elapsed())
            await pilot.pause(0.1)
        assert badge.status == "stalled" and elapsed() >= max(shown)  # not back to the time of the last step

    drive(app, check)


def test_keys_help_and_switching_runs(tmp_path):
    first = make_run(tmp_path, "first", finished_history())
    make_run(tmp_path, "second", [start()])
    os.utime(first / "config.json", (T0, T0))  # oldest first in the run list
    app = WatchApp(first, poll=0.05)

    async def check(pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, KeysScreen)
        keys = text(app.screen.query_one("#keys"))
        assert "Quit" in keys and "Next run" in keys
        await pilot.press("x")
        assert not isinstance(app.screen, KeysScreen)

        await pilot.press("n")
        await until(pilot, lambda: "second" in text(app.query_one(RunHeader)), "switched to the second run")
        assert len(app.query(Dashboard)) == 1
        await until(pilot, lambda: app.query_one(StatusBadge).status == "running", "second run's status")
        await pilot.press("n")
        await until(pilot, lambda: app.query_one(EpochTable).row_count == 3, "back to the first run")
        await pilot.press("q")

    drive(app, check)
    assert app.return_code == 0


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (200, 60)])
def test_layout_fits_the_terminal(tmp_path, size):
    path = make_run(tmp_path, "lenet-fixture", finished_history())
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(EpochTable).row_count == 3, "table filled")
        await pilot.pause(0.1)
        width, height = size
        for widget in (RunHeader, StatusBadge, ProgressPanel, RatesPanel, LossChart, AccuracyChart, EpochTable, EventLog):
            region = app.query_one(widget).region
            assert region.width > 0 and region.height > 0, widget
            assert region.right <= width and region.bottom <= height - 1, widget  # above the footer
        table = app.query_one(EpochTable)
        assert table.max_scroll_x == 0 and table.max_scroll_y == 0  # every column and row visible
        assert app.query_one(LossChart).region.height >= 8
        eta = app.query_one("#eta")
        assert len(text(eta)) <= eta.region.width and ("step 30/30" in text(eta)) == (width > 60)  # whole or left out
        assert ("lr" in [str(c.label) for c in table.columns.values()]) == (width > 100)
        for chart in (app.query_one(LossChart), app.query_one(AccuracyChart)):  # the legend is in the border, off the data
            assert "train" not in str(chart.render()) and "val" not in str(chart.render()) and "val" in chart.border_title
        keys = [key.region for key in app.query("FooterKey")]
        assert all(region.right <= width for region in keys)
        assert not any(a.overlaps(b) for i, a in enumerate(keys) for b in keys[i + 1 :])  # no key drawn over another

    drive(app, check, size)


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_a_narrow_terminal_leaves_the_last_parts_of_a_line_out_whole(tmp_path, width):
    path = make_run(tmp_path, "lenet-fixture", finished_history())
    (path / "config.json").write_text(json.dumps({**config("lenet-fixture"), "arch_options": {"channels": "32,64", "hidden": 128, "dropout": 0.25}}))
    app = WatchApp(path, poll=0.05)
    whole = {  # each line with every part, as in a wide terminal
        "#title": "lenet-fixture  lenet · 3 epochs · adamw lr 0.002 · cosine schedule",
        "#setup": "batch 64 · fp32 · cpu · channels=32,64 hidden=128 dropout=0.25",
        "#eta": "ETA done  elapsed 0:30  step 30/30",
    }

    async def check(pilot):
        await until(pilot, lambda: "finished" in text(app.query_one(EventLog)), "the history read")
        await pilot.pause(0.1)
        for name, line in whole.items():
            shown, room = text(app.query_one(name)), app.query_one(name).region.width
            assert line.startswith(shown) and len(shown) <= room, (name, shown, room)
            assert shown == line or line[len(shown)] == " ", (name, shown)  # the parts left out are left out whole
            assert shown.count(" ") >= 2, (name, shown)  # the first parts stay
        assert (text(app.query_one("#eta")) == whole["#eta"]) == (width >= 80)
        for name, label in (("epoch", "epoch 3/3"), ("step", "step 10/10")):
            assert text(app.query_one(f"#{name}-label")) == label and app.query_one(f"#{name}-bar").region.width >= 6
        rates = app.query_one(RatesPanel)
        assert all(len(line) <= rates.content_region.width for line in text(rates).split("\n"))
        assert "96.87%" in text(rates)
        log = app.query_one(EventLog)
        assert log.max_scroll_x == 0 and "best epoch 2 saved: val 96.87%" in text(log)  # wrapped, not cut

    drive(app, check, (width, 30))


LEGENDS = {  # the loss chart's and the accuracy chart's, by the terminal's width
    40: ("loss ━ val", "accuracy % ━ val"),
    60: ("loss ━ steps ━ train ━ val", "accuracy %  ━ train  ━ val"),
    80: ("loss  ━ train (steps)  ━ train  ━ val", "accuracy %  ━ train  ━ val"),
    120: ("loss  ━ train (steps)  ━ train  ━ val", "accuracy %  ━ train  ━ val"),
}


@pytest.mark.parametrize("width", LEGENDS)
def test_a_narrow_chart_leaves_legend_entries_out_whole_the_validation_last(tmp_path, width):
    app = WatchApp(make_run(tmp_path, "lenet-fixture", finished_history()), poll=0.05)

    async def check(pilot):
        charts = (app.query_one(LossChart), app.query_one(AccuracyChart))
        await until(pilot, lambda: all("val" in title(chart) for chart in charts), "the legends")
        await pilot.pause(0.1)
        assert tuple(title(chart) for chart in charts) == LEGENDS[width]
        for chart in charts:
            assert len(title(chart)) <= chart.size.width - 2, title(chart)  # Textual cuts a longer one with an ellipsis

    drive(app, check, (width, 30))


FOOTERS = {  # the keys shown, by the terminal's width
    30: ["Quit", "Keys", "Next", "Layers"],
    40: ["Quit", "Keys", "Next", "Previous", "Layers"],
    50: ["Quit", "Keys", "Next", "Previous", "Latest", "Layers"],
    80: ["Quit", "Keys", "Next", "Previous", "Latest", "Layers"],
}


@pytest.mark.parametrize("width", FOOTERS)
def test_a_narrow_footer_is_compact_and_leaves_the_least_used_keys_out_whole(tmp_path, width):
    app = WatchApp(make_run(tmp_path, "lenet-fixture", finished_history()), poll=0.05)

    async def check(pilot):
        footer = app.query_one(Footer)

        def fitting() -> bool:  # the footer composes its keys again when it goes compact
            keys = list(footer.query("FooterKey"))
            return [key.description for key in keys] == FOOTERS[width] and footer.max_scroll_x == 0 and keys[-1].region.right <= width

        await until(pilot, fitting, f"the keys {FOOTERS[width]} and no more")
        assert footer.compact == (width < 56)
        await pilot.press("l", "question_mark")  # a key left out still works, and ? lists it
        assert isinstance(app.screen, KeysScreen) and "Latest run" in str(app.screen.query_one("#keys").render())

    drive(app, check, (width, 30))


@pytest.mark.parametrize("size", [(40, 20), (40, 30), (80, 24), (120, 50)])
def test_the_end_of_training_notice_hides_no_figure(tmp_path, size):
    path = make_run(tmp_path, "lenet-fixture", finished_history())
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: "finished" in text(app.query_one(EventLog)), "the history read")
        app.post_message(TrainingEnded(path, None))
        await until(pilot, lambda: app.screen.query("Toast"), "the notice")
        await pilot.pause(0.2)
        notice = app.screen.query_one("Toast").region
        assert notice.height == 1 and notice.right <= size[0]
        shown = [RunHeader, ProgressPanel, RatesPanel, LossChart, AccuracyChart, EpochTable, EventLog, Footer]
        for widget in shown:
            assert not notice.overlaps(app.query_one(widget).content_region), widget

    drive(app, check, size, notifications=True)


def test_a_very_short_terminal_keeps_the_charts_and_leaves_out_the_epochs_and_events(tmp_path):
    app = WatchApp(make_run(tmp_path, "lenet-fixture", finished_history()), poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(EpochTable).row_count == 3, "table filled")
        await pilot.pause(0.1)
        assert not app.query_one("#bottom").display
        chart = app.query_one(LossChart).region
        assert chart.height >= 8 and chart.bottom <= 15  # above the footer
        await pilot.resize_terminal(60, 20)
        await until(pilot, lambda: app.query_one("#bottom").display, "the epochs back in a taller terminal")

    drive(app, check, size=(60, 16))


@pytest.mark.parametrize("start_size", [(60, 20), (120, 40), (60, 40)])  # (60, 40): only the height shrinks
def test_the_newest_epoch_stays_in_view_when_the_epochs_do_not_fit(tmp_path, start_size):
    events = [start(epochs=8)]
    for n in range(1, 9):
        events += steps(n, T0 + 10 * (n - 1)) + epoch(n, T0 + 10 * n)
    app = WatchApp(make_run(tmp_path, "long-fixture", events), poll=0.05)

    async def check(pilot):
        table = app.query_one(EpochTable)
        await until(pilot, lambda: table.row_count == 8, "table filled")
        await pilot.resize_terminal(60, 20)
        await until(pilot, lambda: table.max_scroll_y > 0 and table.scroll_y == table.max_scroll_y, "the newest epoch in view")

    drive(app, check, size=start_size)


def test_y_labels_are_a_row_or_more_apart_and_at_most_seven():
    assert [y_labels(rows) for rows in (1, 3, 5, 6, 7, 13, 40)] == [2, 2, 3, 3, 4, 7, 7]


# train --tui


class FakeTrainer:
    """The Trainer interface run_with_trainer relies on; it logs a step every few milliseconds."""

    def __init__(self, root: Path, total_steps: int = 10_000, fail: bool = False):
        self.root, self.total_steps, self.fail = root, total_steps, fail
        self.run_dir = None
        self.stop = threading.Event()

    def prepare(self) -> Path:
        self.run_dir = make_run(self.root, "tui")
        return self.run_dir

    def request_stop(self) -> None:
        self.stop.set()

    def run(self) -> dict:
        append(self.run_dir, [start(epochs=self.total_steps // STEPS_PER_EPOCH, time_=time.time())])
        for step in range(1, self.total_steps + 1):
            if self.stop.is_set():
                append(self.run_dir, [{"event": "end", "time": time.time(), "status": "interrupted", "message": "stopped"}])
                return {"status": "interrupted"}
            if self.fail and step == 3:
                raise RuntimeError("out of memory")
            append(self.run_dir, [{"event": "step", "time": time.time(), "epoch": 1, "step": step, "loss": 1.0, "lr": 0.1, "images_per_s": 10.0}])
            time.sleep(0.005)
        append(self.run_dir, [{"event": "end", "time": time.time(), "status": "finished", "message": ""}])
        return {"status": "finished"}


class HeadlessApp(WatchApp):
    """Runs without a terminal and quits (like pressing q) once ``done(app)`` holds."""

    def __init__(self, path: Path, done):
        super().__init__(path, poll=0.05)
        self.done = done

    def run(self, **kwargs):
        return super().run(headless=True, **kwargs)

    def on_mount(self) -> None:
        self.set_interval(0.05, lambda: self.done(self) and self.exit())


def test_quitting_the_dashboard_stops_training(tmp_path):
    trainer = FakeTrainer(tmp_path)
    trainer.prepare()
    app = HeadlessApp(trainer.run_dir, lambda app: (app.dashboard.state.last_step or {}).get("step", 0) >= 5)
    assert run_with_trainer(trainer, app) == 130
    assert trainer.stop.is_set()
    events = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["status"] == "interrupted" and events[-2]["step"] < trainer.total_steps


class InterruptedApp:
    """What run_with_trainer sees when Ctrl-C lands inside the dashboard's event loop: ``run`` raises
    KeyboardInterrupt, and the loop is closed, so posting to the app raises (textual 8)."""

    def __init__(self, trainer: FakeTrainer):
        self.trainer = trainer

    def run(self) -> None:
        metrics = self.trainer.run_dir / "metrics.jsonl"
        while '"step"' not in (metrics.read_text() if metrics.exists() else ""):
            time.sleep(0.01)
        raise KeyboardInterrupt

    def post_message(self, message) -> None:
        raise RuntimeError("Event loop is closed")


def test_ctrl_c_inside_the_dashboards_event_loop_stops_training_resumably(tmp_path, capsys):
    trainer = FakeTrainer(tmp_path)
    trainer.prepare()
    assert run_with_trainer(trainer, InterruptedApp(trainer)) == 130
    assert trainer.stop.is_set() and "Event loop is closed" not in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_train_tui_in_a_terminal_stops_training_resumably(tmp_path, data_dir, signum):
    import pty
    import subprocess
    import sys

    main, terminal = pty.openpty()
    env = {**os.environ, "MNISTCTL_DATA_DIR": str(data_dir), "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    args = ["train", "--preset", "fast", "--limit", "20000", "--epochs", "20", "--tui", "--name", "tui", "--runs-dir", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "mnistctl", *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    try:
        metrics = tmp_path / "tui" / "metrics.jsonl"
        deadline = time.monotonic() + 120
        shown = bytearray()  # the terminal, drained so the app never blocks on it, and shown if the test fails

        def drain() -> None:
            if select.select([main], [], [], 0.1)[0]:
                shown.extend(os.read(main, 65536))

        while '"step"' not in (metrics.read_text() if metrics.exists() else "") and time.monotonic() < deadline:
            drain()
        proc.send_signal(signum)
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                drain()
            except OSError:
                break
        assert proc.wait(timeout=30) == 130, shown.decode(errors="replace")[-3000:]
    finally:
        proc.kill()
        os.close(main)
    end = json.loads(metrics.read_text().splitlines()[-1])
    assert (end["event"], end["status"]) == ("end", "interrupted") and (tmp_path / "tui" / "state").is_dir()


def test_training_that_finishes_returns_0_and_failing_returns_1(tmp_path, capsys):
    trainer = FakeTrainer(tmp_path / "ok", total_steps=20)
    trainer.prepare()
    app = HeadlessApp(trainer.run_dir, lambda app: app.query_one(StatusBadge).status == "finished")
    assert run_with_trainer(trainer, app) == 0
    assert not trainer.stop.is_set()

    broken = FakeTrainer(tmp_path / "broken", fail=True)
    broken.prepare()
    app = HeadlessApp(broken.run_dir, lambda app: "training failed" in text(app.query_one(EventLog)))
    assert run_with_trainer(broken, app) == 1
    assert "RuntimeError: out of memory" in capsys.readouterr().err


def test_a_training_failure_is_logged_in_the_trained_runs_events_not_the_run_on_screen(tmp_path):
    trained = make_run(tmp_path, "trained", [start()] + steps(1, T0))
    make_run(tmp_path, "other", finished_history())
    app = WatchApp(trained, poll=0.05)

    async def check(pilot):
        await pilot.press("n")
        await until(pilot, lambda: app.run_path.name == "other" and "finished" in text(app.query_one(EventLog)), "other run shown")
        ended = TrainingEnded(trained, "RuntimeError: boom")
        app.post_message(ended)
        await pilot.pause(0.3)
        assert "training failed" not in text(app.query_one(EventLog))
        await pilot.press("n")
        await until(pilot, lambda: "training failed: RuntimeError: boom" in text(app.query_one(EventLog)), "failure in its run")
        note = next(n for n in app.dashboard.state.notes if "training failed" in n.get("text", ""))
        assert note["time"] == ended.ended_at  # when it failed, not when the run was shown again

    drive(app, check, size=(120, 30))

def test_a_failure_the_run_logged_itself_is_listed_once_even_after_switching_runs(tmp_path):
    message = "RuntimeError: boom"
    trained = make_run(tmp_path, "trained", [start()] + steps(1, T0) + [{"event": "end", "time": T0 + 11, "status": "failed", "message": message}])
    make_run(tmp_path, "other", finished_history())
    app = WatchApp(trained, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(StatusBadge).status == "failed", "status failed")
        app.post_message(TrainingEnded(trained, message))  # the trainer wrote its end event, then raised
        await pilot.pause(0.3)
        await pilot.press("n")
        await until(pilot, lambda: app.run_path.name == "other", "other run shown")
        await pilot.press("n")
        await until(pilot, lambda: "failed: RuntimeError: boom" in text(app.query_one(EventLog)), "back to the failed run")
        await pilot.pause(0.3)
        assert text(app.query_one(EventLog)).count(message) == 1

    drive(app, check, size=(120, 30))


@pytest.mark.usefixtures("terminal")
def test_watch_command_reports_a_missing_run_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.errors import NotFoundError, UsageError

    make_run(tmp_path, "only", [start()])
    result = CliRunner().invoke(app, ["watch", "nope", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, NotFoundError) and "only" in result.exception.hint
    result = CliRunner().invoke(app, ["watch", "--stalled-after", "0", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UsageError)
    result = CliRunner().invoke(app, ["watch", "--stalled-after", "nan", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UsageError)
    (tmp_path / "notes.txt").write_text("keep")
    for root in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "runs"):
        result = CliRunner().invoke(app, ["watch", "--runs-dir", str(root)])
        assert isinstance(result.exception, UsageError) and "notes.txt is a file" in result.exception.message


def test_watch_names_a_mistyped_run_before_asking_for_a_terminal(tmp_path):
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.errors import NotFoundError, UsageError

    make_run(tmp_path, "only", [start()])
    result = CliRunner().invoke(app, ["watch", "onyl", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, NotFoundError) and "only" in result.exception.hint
    result = CliRunner().invoke(app, ["watch", "--stalled-after", "0", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UsageError) and result.exception.message == "--stalled-after must be positive, got 0"
    result = CliRunner().invoke(app, ["watch", "only", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, UsageError) and "needs a terminal" in result.exception.message
    shown = CliRunner().invoke(app, ["watch", "--help"], env={"COLUMNS": "120"}).output
    assert "stalled [default: 120]." in shown and "120.0" not in shown


@pytest.mark.usefixtures("terminal")
def test_watch_refuses_a_runs_folder_given_that_does_not_exist(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.errors import UsageError

    def nap(seconds):
        raise AssertionError("waited for a runs folder that was given and does not exist")

    monkeypatch.setattr(time, "sleep", nap)
    missing = tmp_path / "typo"
    result = CliRunner().invoke(app, ["watch", "--runs-dir", str(missing)])
    assert isinstance(result.exception, UsageError) and result.exception.message == f"cannot watch runs in {missing}: no such folder"
    assert f"mnistctl train --runs-dir {missing}" in result.exception.hint
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(missing))
    result = CliRunner().invoke(app, ["watch"])
    assert isinstance(result.exception, UsageError) and "MNISTCTL_RUNS_DIR" in result.exception.hint


def test_watch_waits_for_the_default_runs_folder_to_appear(tmp_path, monkeypatch):
    from mnistctl.cli import watch

    monkeypatch.delenv("MNISTCTL_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    naps = []

    def nap(seconds):  # training starts while watch waits
        naps.append(seconds)
        make_run(tmp_path / "runs", "first")

    monkeypatch.setattr(time, "sleep", nap)
    watch._wait_for_a_run(None)
    assert len(naps) == 1


def test_a_best_checkpoint_event_shows_the_validation_loss_when_recorded():
    event = {"event": "checkpoint", "epoch": 7, "kind": "best", "val_acc": 0.9956, "val_loss": 0.012484}
    assert describe(event)[0] == "best epoch 7 saved: val 99.56%, loss 0.0125"
    del event["val_loss"]  # runs written before the field
    assert describe(event)[0] == "best epoch 7 saved: val 99.56%"


def test_a_one_epoch_run_reads_1_epoch_not_1_epochs():
    from mnistctl.tui.widgets import describe, training_terms

    assert training_terms({"epochs": 1, "optimizer": "sgd", "lr": 0.1})[0] == "1 epoch"
    assert describe({"event": "start", "epochs": 1, "steps_per_epoch": 16})[0] == "started: 1 epoch × 16 steps"


def test_the_header_names_a_weight_average():
    from mnistctl.tui.widgets import training_terms

    assert training_terms({"epochs": 40, "optimizer": "sgd", "lr": 0.05, "ema": 0.999})[1] == "sgd lr 0.05 ema 0.999"
    assert training_terms({"epochs": 40, "optimizer": "sgd", "lr": 0.05, "ema": None})[1] == "sgd lr 0.05"


def test_the_header_names_the_scheduler_as_a_schedule():
    from mnistctl.tui.widgets import training_terms

    assert training_terms({"epochs": 12, "optimizer": "sgd", "lr": 0.05, "scheduler": "step"}) == ["12 epochs", "sgd lr 0.05", "step schedule"]
    assert training_terms({"epochs": 12, "optimizer": "sgd", "lr": 0.05, "scheduler": "none"}) == ["12 epochs", "sgd lr 0.05"]


def title(chart) -> str:
    """A chart's border title as plain text (Textual keeps it as markup)."""
    from rich.text import Text

    return Text.from_markup(str(chart.border_title)).plain


def test_an_ended_run_with_nothing_logged_says_so_and_a_narrow_chart_keeps_its_whole_legend(tmp_path):
    events = [start(), {"event": "step", "time": T0 + 1, "step": 5, "loss": 0.9}]
    path = make_run(tmp_path, "short-fixture", events)
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        chart = app.query_one(AccuracyChart)
        await until(pilot, lambda: "no data yet" in title(chart), "a running run waits for data")
        assert "no data yet" in title(app.query_one(LossChart))  # one step is no line yet
        append(path, [*steps(1, T0)[1:], {"event": "end", "time": T0 + 12, "status": "interrupted", "message": "", "step": 10}])
        await until(pilot, lambda: title(chart) == "accuracy % (nothing logged)", "an ended run says nothing was logged")
        loss = app.query_one(LossChart)
        assert title(loss) == "loss  ━ train (steps)"
        await pilot.resize_terminal(44, 20)
        await until(pilot, lambda: title(loss) == "loss ━ steps", "the short legend")
        assert len(title(loss)) <= loss.size.width - 4

    drive(app, check, size=(120, 30))


def test_a_run_without_validation_shows_its_best_epoch_as_the_latest_not_a_dash(tmp_path):
    first = epoch(1, T0 + 20)
    for event in first:
        event.update(val_acc=None, **({"val_loss": None} if event["event"] == "epoch" else {}))
    path = make_run(tmp_path, "noval", [start(epochs=1), *first, {"event": "end", "time": T0 + 21, "status": "finished", "message": ""}])
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: "best epoch 1 saved" in text(app.query_one(EventLog)), "the best checkpoint logged")
        assert "best epoch 1 saved: the latest (no validation)" in text(app.query_one(EventLog))
        assert "best  epoch 1 (no val)" in text(app.query_one(RatesPanel))

    drive(app, check)


def test_a_run_blowing_up_keeps_its_losses_short_in_the_chart_and_the_table(tmp_path):
    events = [start(epochs=2), {"event": "step", "time": T0 + 1, "epoch": 1, "step": 5, "loss": 2.1545799029406e20, "lr": 30.0, "images_per_s": 1.0}]
    events += steps(1, T0)[1:] + epoch(1, T0 + 10)
    events[-3]["train_loss"] = 6.894679318527046e19
    app = WatchApp(make_run(tmp_path, "blown", events), poll=0.05)

    async def check(pilot):
        await until(pilot, lambda: app.query_one(EpochTable).row_count == 1, "table filled")
        await pilot.pause(0.1)
        chart = app.query_one(LossChart)
        labels = [line.split("┤")[0].strip() for line in str(chart.render()).splitlines() if "┤" in line]
        assert labels[0] == "2.15e+20" and all(len(label) <= 8 for label in labels), labels
        assert "6.89e+19" in [str(cell) for cell in app.query_one(EpochTable).get_row("1")]

    drive(app, check, size=(100, 30))
