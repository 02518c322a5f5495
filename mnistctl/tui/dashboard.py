"""One run's dashboard: a worker tails the run directory and posts messages; the panels show the folded state."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.worker import get_current_worker

from mnistctl.errors import RunError
from mnistctl.runs import STALLED_AFTER, Kind, Run, Status
from mnistctl.runs.reader import Chunk, EventTail
from mnistctl.tui.charts import AccuracyChart, LossChart
from mnistctl.tui.layers import LayerPanel
from mnistctl.tui.state import RunState
from mnistctl.tui.widgets import (
    EpochTable,
    EventLog,
    ProgressPanel,
    RatesPanel,
    RunHeader,
    StatusBadge,
    duration,
)

TOP_ROWS = 5  # the header and the progress row
CHART_ROWS = 8  # the fewest a chart reads in
BOTTOM_ROWS = 5  # the epoch table and events: borders, a header and a row
NARROW = 60  # fewer columns: the rates panel shrinks, the epochs and events share the width evenly


class ConfigRead(Message, bubble=False):
    def __init__(self, config: dict[str, Any] | None, problem: str | None = None) -> None:
        super().__init__()
        self.config, self.problem = config, problem


class MetricsRead(Message, bubble=False):
    def __init__(self, chunk: Chunk) -> None:
        super().__init__()
        self.chunk = chunk


class Note(Message, bubble=False):
    def __init__(self, text: str, level: str = "warning", when: float | None = None) -> None:
        super().__init__()
        self.text, self.level, self.when = text, level, when


class Dashboard(Vertical):
    """Everything about one run. Remove it and mount another to watch a different run."""

    def __init__(self, run_path: Path, stalled_after: float = STALLED_AFTER, poll: float = 0.25, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_path = Path(run_path)
        self.stalled_after = stalled_after
        self.poll = poll
        self.state = RunState()
        self.status = ""

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with Horizontal(id="progress-row"):
            yield ProgressPanel(id="progress")
            yield RatesPanel(id="rates")
        with Horizontal(id="charts"):
            yield LossChart(id="loss-chart")
            yield AccuracyChart(id="acc-chart")
        with Horizontal(id="bottom"):
            yield EpochTable(id="epochs")
            yield EventLog(id="events", wrap=True, markup=False, min_width=1)
        yield LayerPanel(id="layers")

    def on_mount(self) -> None:
        self.query_one("#epochs").border_title = "Epochs"
        self.query_one("#events").border_title = "Events"
        self.query_one(RunHeader).show(self.state)
        self.tick()
        self.set_interval(1.0, self.tick)
        self.follow()

    def on_resize(self, event: events.Resize) -> None:
        """The epochs and events take 35% of the height, less when the charts need it, none in a very short terminal."""
        bottom = min(round(0.35 * event.size.height), event.size.height - TOP_ROWS - CHART_ROWS)
        self.set_class(bottom < BOTTOM_ROWS, "short")
        self.set_class(event.size.width < NARROW, "narrow")
        self.query_one("#bottom").styles.height = max(bottom, BOTTOM_ROWS)
        self.tick()

    @work(thread=True, exclusive=True, group="tail")
    def follow(self) -> None:
        """Read the config once and metrics.jsonl incrementally, posting what is new."""
        worker = get_current_worker()
        run = Run(self.run_path)
        tail = EventTail(run.metrics_path)
        config_read = False
        last_mtime = None
        while not worker.is_cancelled:
            if not config_read and run.config_path.exists():
                try:
                    self.post_message(ConfigRead(run.config))
                except RunError as exc:
                    self.post_message(ConfigRead(None, exc.message))
                config_read = True
            chunk = tail.read()
            if chunk.mtime is None and last_mtime is not None:  # it was there: the run was deleted or moved
                last_mtime = None
                self.post_message(Note(f"{run.metrics_path.name} is gone: the run was deleted or moved", "error"))
            elif chunk.events or chunk.corrupt or chunk.restarted or chunk.mtime != last_mtime:
                last_mtime = chunk.mtime
                self.post_message(MetricsRead(chunk))
            time.sleep(self.poll)

    def on_config_read(self, message: ConfigRead) -> None:
        if message.problem:
            self.state.config_problem = message.problem
            self.state.note(message.problem, "error")
        else:
            self.state.config = {**message.config, "name": self.run_path.name}  # the folder's name, as compare and the keys show it
        self.query_one(RunHeader).show(self.state)
        self.tick()

    def on_metrics_read(self, message: MetricsRead) -> None:
        chunk = message.chunk
        if chunk.restarted:
            self.state = RunState(config=self.state.config, config_problem=self.state.config_problem)
            self.state.note("the metrics file was rewritten; reading it again")
        for event in chunk.events:
            self.state.apply(event)
        self.state.mtime = chunk.mtime
        if any(e["event"] == Kind.START for e in chunk.events):
            self.query_one(RunHeader).show(self.state)  # the device training picked
        if chunk.corrupt:
            self.state.note(f"skipped {chunk.corrupt} unreadable metrics line(s) (first: {chunk.first_problem})", "error")
        for chart in (self.query_one(LossChart), self.query_one(AccuracyChart)):
            chart.show(self.state)
        self.query_one(EpochTable).show(self.state)
        self.query_one(LayerPanel).show(self.state)
        self.tick()

    def show_layers(self, on: bool) -> None:
        """Switch between the charts with the epoch table and the per-layer view."""
        self.set_class(on, "layers-view")

    def on_note(self, message: Note) -> None:
        self.state.note(message.text, message.level, message.when)
        self.tick()

    def tick(self) -> None:
        """The time-dependent panels: status (stalled?), ETA, elapsed; and the event log."""
        now = time.time()
        status = self.state.status(now, self.stalled_after)
        if status == Status.STALLED != self.status and (end := Run(self.run_path).summary_end(self.state.start)):
            self.state.apply(end)  # metrics.jsonl lost its end: the summary written after the last start says how it ended
            status = self.state.status(now, self.stalled_after)
        if status != self.status:
            if status == Status.STALLED:
                since = now - (self.state.mtime or self.state.watched_since)
                self.state.note(f"stalled: no new metrics for {duration(since)}")
                self.state.stalled_at = now if self.status == Status.RUNNING else None
            elif self.status == Status.STALLED:
                self.state.note("metrics are coming in again", "info")
            self.status = status
        self.query_one(StatusBadge).show(status)
        self.query_one(ProgressPanel).show(self.state, status, now)
        self.query_one(RatesPanel).show(self.state, self.has_class("narrow"))
        self.query_one(EventLog).show(self.state)
