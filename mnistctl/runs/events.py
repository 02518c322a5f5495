"""What a run records in metrics.jsonl: the event kinds, their fields, and the status a run is in."""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from mnistctl.registry import with_article


class Status(StrEnum):
    WAITING = "waiting"  # claimed, nothing logged yet
    RUNNING = "running"
    STALLED = "stalled"  # no event for a while and no end
    FINISHED = "finished"
    EARLY_STOPPED = "early_stopped"
    INTERRUPTED = "interrupted"  # stopped on request, resumable
    PRUNED = "pruned"  # stopped by a sweep as hopeless
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in ENDED

    @property
    def completed(self) -> bool:
        """Trained to the end (or stopped early by choice) and tested."""
        return self in (Status.FINISHED, Status.EARLY_STOPPED)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def tone(self) -> str:
        """How a status is shown: done, live, idle, warn or error (styles key on this, not on status words)."""
        return TONES[self]


ENDED = frozenset({Status.FINISHED, Status.EARLY_STOPPED, Status.INTERRUPTED, Status.PRUNED, Status.FAILED})
TONES = {
    Status.WAITING: "idle",
    Status.RUNNING: "live",
    Status.STALLED: "warn",
    Status.FINISHED: "done",
    Status.EARLY_STOPPED: "done",
    Status.INTERRUPTED: "warn",
    Status.PRUNED: "warn",
    Status.FAILED: "error",
}


class Kind(StrEnum):
    START = "start"
    STEP = "step"
    EPOCH = "epoch"
    CHECKPOINT = "checkpoint"
    EARLY_STOP = "early_stop"
    TEST = "test"
    END = "end"
    LAYERS = "layers"  # per-layer statistics of one step (train --log-layers)


class Event(TypedDict):
    event: str
    time: float


class StartEvent(Event):
    run: str
    epochs: int
    steps_per_epoch: int
    start_epoch: int
    start_step: int
    resumed: bool
    device: str
    params: int
    world_size: NotRequired[int]  # processes training together; absent in runs made before it


class StepEvent(Event):
    epoch: int
    step: int  # global step
    loss: float  # mean over the steps since the last step event
    lr: float
    images_per_s: float


class EpochEvent(Event):
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    epoch_time: float
    elapsed: float
    images_per_s: float
    best: bool


class CheckpointEvent(Event):
    epoch: int
    kind: str  # best or last
    val_acc: float | None
    val_loss: float | None  # absent in older runs


class EarlyStopEvent(Event):
    epoch: int
    patience: int
    best_epoch: int


class TestEvent(Event):
    checkpoint: str
    epoch: int
    test_loss: float
    test_acc: float


class EndEvent(Event, total=False):
    status: str
    message: str
    step: int  # the global step the run ended at; absent in runs made before it
    test_acc: float
    test_loss: float


class ParamStats(TypedDict):
    norm: float  # ||w|| before the step
    grad: float | None  # ||dL/dw||; None when the parameter got no gradient
    update: float | None  # ||w_after - w_before|| / ||w_before||


class LayerStats(TypedDict, total=False):
    type: str  # the module's class name
    mean: float  # of the layer's output
    std: float
    zeros: float  # fraction of exact zeros (dead ReLUs)
    grad: float | None  # ||dL/d output||
    params: dict[str, ParamStats]  # by the parameter's own name (weight, bias)


class LayersEvent(Event):
    epoch: int
    step: int  # the global step the statistics were taken at
    layers: dict[str, LayerStats]  # by qualified module name, in forward order; "#2" marks a module's second call


REQUIRED: dict[str, tuple[str, ...]] = {
    Kind.START: ("epochs", "steps_per_epoch"),
    Kind.STEP: ("step", "loss"),
    Kind.EPOCH: ("epoch", "train_loss", "train_acc"),
    Kind.CHECKPOINT: ("epoch", "kind"),
    Kind.EARLY_STOP: ("epoch",),
    Kind.TEST: ("test_acc", "test_loss"),
    Kind.END: ("status",),
    Kind.LAYERS: ("step", "layers"),
}
NUMBERS = ("time", "epoch", "step", "epochs", "steps_per_epoch", "loss", "train_loss", "train_acc", "test_acc", "test_loss",
           "lr", "images_per_s", "epoch_time", "elapsed", "params")
OPTIONAL_NUMBERS = ("val_loss", "val_acc")  # null without a validation split
FRACTIONS = ("train_acc", "val_acc", "test_acc")
LAYER_NUMBERS = ("mean", "std", "zeros", "grad")  # of LayerStats, each may be null
PARAM_NUMBERS = ("norm", "grad", "update")  # of ParamStats
NON_NEGATIVE = ("loss", "train_loss", "val_loss", "test_loss", "lr", "images_per_s", "epoch_time", "elapsed", "params")
MAX_EPOCHS = 100_000  # as many as training takes
MAX_STEPS = 2**53  # whole numbers a float holds exactly
COUNTS = {"epoch": MAX_EPOCHS, "epochs": MAX_EPOCHS, "start_epoch": MAX_EPOCHS, "best_epoch": MAX_EPOCHS, "patience": MAX_EPOCHS,
          "step": MAX_STEPS, "steps_per_epoch": MAX_STEPS, "start_step": MAX_STEPS}


def problem(event: Any) -> str | None:
    """Why a decoded line is not a usable event, or None when it is."""
    if not isinstance(event, dict):
        return f"a JSON {type(event).__name__}, not an object"
    kind = event.get("event")
    if not isinstance(kind, str):
        return "no event kind"
    an_event = with_article(f"{kind} event")
    missing = [f for f in REQUIRED.get(kind, ()) if f not in event]
    if missing:
        return f"{an_event} without {', '.join(missing)}"
    wrong = [f for f in NUMBERS if f in event and not _is_number(event[f])]
    wrong += [f for f in OPTIONAL_NUMBERS if event.get(f) is not None and not _is_number(event[f])]
    if wrong:
        return f"{an_event} whose {wrong[0]} is not a number"
    for name, top in COUNTS.items():
        value = event.get(name)
        if value is not None and not (type(value) is int and 0 <= value <= top):
            return f"{an_event} whose {name} is not a whole number from 0 to {top:,}"
    if not _finite(event):
        return f"{an_event} with a number that is not finite (NaN or infinity)"
    if out := _out_of_range(event):
        return f"{an_event} whose {out}"
    if kind == Kind.LAYERS and (wrong := _layers_problem(event["layers"])):
        return f"a layers event whose {wrong}"
    if kind == Kind.END and event["status"] not in Status.__members__.values():
        return f"an end event with unknown status {event['status']!r}"
    return None


def _layers_problem(layers: Any) -> str | None:
    """What in a layers event's statistics is not shaped as :class:`LayerStats`, in words, or None."""
    if not isinstance(layers, dict):
        return "layers is not an object"
    for name, stats in layers.items():
        params = stats.get("params") or {} if isinstance(stats, dict) else None
        if not isinstance(params, dict) or not isinstance(stats.get("type", ""), str) or not _numbers_or_null(stats, LAYER_NUMBERS):
            return f"layer {name} is not an object of statistics"
        if not all(isinstance(param, dict) and _numbers_or_null(param, PARAM_NUMBERS) for param in params.values()):
            return f"layer {name} has parameters that are not objects of statistics"
    return None


def _numbers_or_null(stats: dict[str, Any], names: tuple[str, ...]) -> bool:
    return all(stats.get(name) is None or _is_number(stats[name]) for name in names)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _out_of_range(event: dict[str, Any]) -> str | None:
    """Which of an event's numbers cannot be what it is (an accuracy above 1, a negative loss or time), in words."""
    for name in FRACTIONS:
        if event.get(name) is not None and not 0 <= event[name] <= 1:
            return f"{name} is not from 0 to 1"
    for name in NON_NEGATIVE:
        if event.get(name) is not None and event[name] < 0:
            return f"{name} is negative"
    return None


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a decoded JSON value (json reads them; charts and sums cannot take them), nor an
    integer too large to be a float (json reads those too; ``float()`` of one overflows)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, int):
            if abs(item) > sys.float_info.max:
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def derive_status(last: dict[str, Any] | None, idle_for: float | None, stalled_after: float) -> Status:
    """A run's status from its last start or end event and how long its metrics have been quiet."""
    if last is not None and last.get("event") == Kind.END:
        return Status(last["status"])
    if idle_for is not None and idle_for > stalled_after:
        return Status.STALLED
    return Status.RUNNING if last is not None else Status.WAITING
