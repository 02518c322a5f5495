"""What the dashboard knows about a run, folded from its metric events one at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mnistctl.runs import STALLED_AFTER, Kind, Status
from mnistctl.runs.events import derive_status

NOTABLE = (Kind.START, Kind.CHECKPOINT, Kind.EARLY_STOP, Kind.TEST, Kind.END)


@dataclass
class Progress:
    epoch: int  # epochs completed
    epochs: int
    step: int  # global step
    steps: int  # total steps of the run
    steps_per_epoch: int
    current: int  # the epoch shown: the one under way, or the last one once training is over

    @property
    def step_in_epoch(self) -> int:
        """Steps done in the epoch shown: none before its first step is logged, all once it is over."""
        if not self.steps_per_epoch or not self.current:
            return 0
        return min(max(self.step - (self.current - 1) * self.steps_per_epoch, 0), self.steps_per_epoch)


@dataclass
class RunState:
    config: dict[str, Any] | None = None
    config_problem: str | None = None  # why config.json could not be read
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    last_step: dict[str, Any] | None = None
    layers: dict[str, Any] | None = None  # the latest layer statistics (train --log-layers)
    early_stop: dict[str, Any] | None = None  # no epoch follows it, only the test pass
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    losses: list[tuple[float, float]] = field(default_factory=list)  # (epoch position, step loss)
    notes: list[dict[str, Any]] = field(default_factory=list)  # notable events and the dashboard's own notes
    mtime: float | None = None
    watched_since: float = field(default_factory=time.time)
    stalled_at: float | None = None  # when this dashboard saw the run stall, if it saw it running first
    _origin: tuple[float, int] | None = None  # (time, global step) when this session started
    _latest: tuple[float, int] | None = None  # the last global step logged, by a step, layers or epoch event

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == Kind.START:
            resumed_at = event.get("start_epoch", 0)
            self.start, self.end, self.last_step, self.early_stop = event, None, None, None
            self._origin = self._latest = (event["time"], resumed_at * event.get("steps_per_epoch", 0) + event.get("start_step", 0))
            kept = self._position(self._latest[1])  # what was logged past the resume point is trained again
            self.losses = [p for p in self.losses if p[0] <= kept]
            self.epochs = {n: e for n, e in self.epochs.items() if n <= resumed_at}
        elif kind == Kind.STEP:
            self.last_step = event
            self._latest = (event["time"], event["step"])
            self.losses.append((self._position(event["step"]), event["loss"]))
        elif kind == Kind.EPOCH:
            self.epochs[event["epoch"]] = event
            self._latest = (event["time"], event["epoch"] * (self.start or {}).get("steps_per_epoch", 0))
        elif kind == Kind.LAYERS:
            self.layers = event
            self._latest = (event["time"], event["step"])
        elif kind == Kind.EARLY_STOP:
            self.early_stop = event
        elif kind == Kind.END:
            self.end = event
        if kind in NOTABLE and not (kind == Kind.CHECKPOINT and event.get("kind") != "best"):
            self.notes.append(event)

    def note(self, text: str, level: str = "warning", when: float | None = None) -> None:
        self.notes.append({"event": "note", "time": time.time() if when is None else when, "level": level, "text": text})

    def status(self, now: float | None = None, stalled_after: float = STALLED_AFTER) -> Status:
        now = time.time() if now is None else now
        return derive_status(self.end or self.start, now - (self.mtime or self.watched_since), stalled_after)

    @property
    def progress(self) -> Progress:
        start = self.start or {}
        epochs = start.get("epochs") or (self.config or {}).get("epochs") or 0
        per_epoch = start.get("steps_per_epoch", 0)
        epoch = max(self.epochs, default=start.get("start_epoch", 0))
        step = max(self._latest[1] if self._latest else 0, epoch * per_epoch, (self.end or {}).get("step", 0))
        return Progress(epoch, epochs, step, epochs * per_epoch, per_epoch, epoch + 1 if self.training else epoch)

    @property
    def training(self) -> bool:
        """Whether an epoch is under way, or was when the run stopped; not after the last epoch or an early stop."""
        start = self.start or {}
        if not start or self.early_stop or (self.end and Status(self.end["status"]).completed):
            return False
        return max(self.epochs, default=start.get("start_epoch", 0)) < (start.get("epochs") or 0)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the pace of this session so far (validation included); None when unknown or over."""
        if self.end or not self._origin or not self._latest:
            return None
        (t0, s0), (t1, s1) = self._origin, self._latest
        if t1 <= t0 or s1 <= s0:
            return None
        left = (self.progress.steps - s1) * (t1 - t0) / (s1 - s0)
        now = time.time() if now is None else now
        return max(0.0, left - max(0.0, now - t1))

    @property
    def last_logged(self) -> float | None:
        """The time of the last start, step, epoch or layers event."""
        return self._latest[0] if self._latest else None

    @property
    def best(self) -> dict[str, Any] | None:
        best = [e for e in self.epochs.values() if e.get("best")]
        return best[-1] if best else None

    def _position(self, step: int) -> float:
        per_epoch = (self.start or {}).get("steps_per_epoch") or 0
        return step / per_epoch if per_epoch else float(step)
