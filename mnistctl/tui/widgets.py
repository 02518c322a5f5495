"""The dashboard's panels. Each shows one concern of a RunState and is updated by ``show(state)``."""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, ProgressBar, RichLog, Static

from mnistctl.console import TONE_STYLE, counted, loss_figure
from mnistctl.reading.compare import augment_label
from mnistctl.registry import format_value
from mnistctl.runs import Kind, Status
from mnistctl.tui.state import RunState


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def leading(parts: list[Text], width: int) -> Text:
    """The first part and as many of the next as fit ``width`` whole, in order; all of them while the width is unknown.
    Each part after the first starts with its separator."""
    shown = parts[0].copy() if parts else Text()
    for part in parts[1:]:
        if 0 < width < shown.cell_len + part.cell_len:
            break
        shown.append_text(part)
    return shown


class Parts(Label):
    """A line of parts, the later ones left out whole when it is too narrow for them, never a word cut."""

    DEFAULT_CSS = "Parts { width: 1fr; }"  # the room it has, not the parts it showed last
    parts: list[Text] = []

    def show_parts(self, parts: list[Text]) -> None:
        self.parts = parts
        self.update(leading(parts, self.size.width))

    def on_resize(self) -> None:
        self.update(leading(self.parts, self.size.width))


class RunHeader(Vertical):
    """The run's name, architecture and key hyperparameters beside its status, and its setup on a second line;
    in a narrow terminal the last terms of each line are left out."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="title-row"):
            yield Parts(id="title")
            yield StatusBadge(id="status")
        yield Parts(id="setup")

    def show(self, state: RunState) -> None:
        c = state.config
        if c is None:
            problem = state.config_problem
            self.query_one("#title", Parts).show_parts([Text(problem, style="red") if problem else Text("waiting for config.json…", style="dim")])
            return
        title = [Text(c.get("name", "?"), "bold"), Text.assemble("  ", (c.get("arch", "?"), "bold cyan"))]
        title += [Text(" · " + term, "dim") for term in training_terms(c)]
        setup = [Text(term if i == 0 else " · " + term, "dim") for i, term in enumerate(setup_terms(c, (state.start or {}).get("device")))]
        options = [f"{k}={format_value(v)}" for k, v in (c.get("arch_options") or {}).items()]
        setup += [Text.assemble((" · " if i == 0 else " ", "dim"), (option, "cyan")) for i, option in enumerate(options)]
        self.query_one("#title", Parts).show_parts(title)
        self.query_one("#setup", Parts).show_parts(setup)


def training_terms(c: dict[str, Any]) -> list[str]:
    optimizer = f"{c.get('optimizer', '?')} lr {short_number(c.get('lr', '?'))}"
    if c.get("weight_decay"):
        optimizer += f" wd {short_number(c['weight_decay'])}"
    if c.get("ema"):
        optimizer += f" ema {short_number(c['ema'])}"
    scheduler = [f"{c['scheduler']} schedule"] if c.get("scheduler") not in (None, "none", "constant") else []  # not a bare "step"
    return [counted(c.get('epochs', '?'), "epoch"), optimizer, *scheduler]


def short_number(value: Any) -> str:
    """A float in three significant digits, as sweeps draw values like 0.02806116792563159."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def setup_terms(c: dict[str, Any], device: str | None = None) -> list[str]:
    """Batch, augmentation, validation, processes, precision and device (the one training picked, when known)."""
    terms = [f"batch {c.get('batch_size', '?')}"]
    if c.get("augment"):
        terms.append(f"aug {augment_label(c['augment'])}")
    if c.get("val_split") == 0:
        terms.append("no validation")
    elif c.get("monitor") == "val_loss":
        terms.append("best by val loss")
    if c.get("early_stopping"):
        terms.append(f"patience {c['early_stopping']}")
    world = c.get("distributed") or {}
    if world.get("world_size", 1) > 1:
        terms.append(f"{world['world_size']} processes ({world.get('backend', '?')})")
    return terms + [str(v) for v in (c.get("precision"), device or c.get("device")) if v]


class StatusBadge(Static):
    """running, finished, failed, stalled…, coloured by a CSS class per tone (done, live, idle, warn, error)."""

    status = Status.WAITING

    def show(self, status: Status) -> None:
        self.status = status
        self.set_classes(f"status-{status.tone}")
        self.update(f"● {status.label.upper()}")


class ProgressPanel(Vertical):
    """Epoch and step progress bars with the ETA; in a narrow terminal the percentages, then the elapsed time
    and the run's step count, are left out."""

    LEAST_BAR = 12  # the cells of a bar with its percentage; in fewer the percentage is left out

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("epoch", id="epoch-label")
            yield ProgressBar(id="epoch-bar", show_eta=False)
        with Horizontal():
            yield Label("step", id="step-label")
            yield ProgressBar(id="step-bar", show_eta=False)
        yield Parts("", id="eta")

    def show(self, state: RunState, status: Status, now: float | None = None) -> None:
        p = state.progress
        epochs, per_epoch = p.epochs or "?", p.steps_per_epoch or "?"
        labels = {"epoch": (f"epoch {p.current}/{epochs}", f"epoch {epochs}/{epochs}"), "step": (f"step {p.step_in_epoch}/{per_epoch}", f"step {per_epoch}/{per_epoch}")}
        label_width = 1 + max(len(widest) for _, widest in labels.values())  # the bars do not move as the counts grow
        for name, total, done in (("epoch", p.epochs, p.epoch), ("step", p.steps_per_epoch, p.step_in_epoch)):
            label = self.query_one(f"#{name}-label", Label)
            label.update(labels[name][0])
            label.styles.width = label_width
            bar = self.query_one(f"#{name}-bar", ProgressBar)
            bar.update(total=total or None, progress=done)
            bar.show_percentage = not 0 < self.size.width - label_width < self.LEAST_BAR
        now = time.time() if now is None else now
        until = now
        if status.ended:
            eta = "done" if status.completed else "failed" if status == Status.FAILED else "stopped"
        elif status == Status.STALLED:  # the clock stops where it was when the stall was seen, else at the last event
            eta, until = "stalled", state.stalled_at or state.last_logged or now
        else:
            eta = duration(state.eta(now))
        parts = [Text(f"ETA {eta}"), Text(f"  elapsed {duration(elapsed_seconds(state, until))}")]
        if p.steps:
            parts.append(Text(f"  step {p.step:,}/{p.steps:,}"))
        self.query_one("#eta", Parts).show_parts(parts)


def elapsed_seconds(state: RunState, now: float) -> float | None:
    """Training time as train reports it: the last epoch's ``elapsed`` plus, while an epoch is under way,
    the time since, up to ``now`` or the run's end. The test pass after the last epoch is not counted."""
    if state.start is None:
        return None
    last_epoch = state.epochs[max(state.epochs)] if state.epochs else None
    base = last_epoch.get("elapsed", 0.0) if last_epoch else 0.0
    if not state.training:
        return base
    since = max(last_epoch["time"] if last_epoch else 0.0, state.start["time"])  # not the time a resumed run lay idle
    return base + max(0.0, (state.end or {}).get("time", now) - since)


class RatesPanel(Static):
    """Learning rate, throughput and the best validation accuracy so far; ``narrow``, the best without its epoch."""

    def show(self, state: RunState, narrow: bool = False) -> None:
        latest = [e for e in (state.last_step, state.epochs.get(max(state.epochs, default=0))) if e]
        step = max(latest, key=lambda e: e["time"]) if latest else {}
        lr = f"{step['lr']:.2e}" if "lr" in step else "-"
        speed = f"{step['images_per_s']:,.0f}" if "images_per_s" in step else "-"
        best = state.best
        if not best:
            best_text = "-"
        elif best.get("val_acc") is None:
            best_text = "no val" if narrow else f"epoch {best['epoch']} (no val)"
        else:
            best_text = percent(best["val_acc"]) + ("" if narrow else f" (ep {best['epoch']})")
        self.update(Text.assemble(("lr    ", "dim"), lr, ("\nimg/s ", "dim"), speed, ("\nbest  ", "dim"), best_text))


Column = tuple[str, int, Callable[[dict[str, Any]], str]]


def _number(key: str, spec: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: "-" if e.get(key) is None else format(e[key], spec)


def _loss(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: "-" if e.get(key) is None else loss_figure(e[key])


def _percent(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: percent(e.get(key))


class EpochTable(DataTable):
    """One row per finished epoch, the best starred; columns that do not fit the width are left out."""

    COLUMNS: tuple[Column, ...] = (  # (label, priority: lower stays longer, cell)
        ("epoch", 0, lambda e: f"{e['epoch']}{' ★' if e.get('best') else ''}"),
        ("train loss", 1, _loss("train_loss")),
        ("train acc", 3, _percent("train_acc")),
        ("val loss", 1, _loss("val_loss")),
        ("val acc", 0, _percent("val_acc")),
        ("lr", 4, _number("lr", ".2e")),
        ("time", 2, lambda e: "-" if e.get("epoch_time") is None else f"{e['epoch_time']:.1f}s"),
    )
    WIDTHS = {"epoch": 5, "train loss": 10, "train acc": 9, "val loss": 8, "val acc": 7, "lr": 8, "time": 6}

    def on_mount(self) -> None:
        self.cursor_type = "none"
        self.zebra_stripes = True
        self.epochs: dict[int, dict[str, Any]] = {}
        self._shown: dict[int, tuple[str, ...]] = {}
        self._columns: tuple[Column, ...] = ()

    def on_resize(self) -> None:
        self._fit_columns()
        self.scroll_end(animate=False)  # the newest epoch in view at every size, not only at the size its row came in

    def _fit_columns(self) -> None:
        room = self.scrollable_content_region.width
        columns = list(self.COLUMNS)
        while len(columns) > 2 and sum(self.WIDTHS[c[0]] + 2 * self.cell_padding for c in columns) > room:
            columns.remove(max(columns, key=lambda c: c[1]))
        if tuple(columns) != self._columns:
            self._columns = tuple(columns)
            self.clear(columns=True)
            self._shown = {}
            for label, _, _ in columns:
                self.add_column(label, key=label)
            self.show_epochs(self.epochs)

    def show(self, state: RunState) -> None:
        self.show_epochs(state.epochs)

    def show_epochs(self, epochs: dict[int, dict[str, Any]]) -> None:
        self.epochs = dict(epochs)
        if not self._columns:
            return
        for n in [n for n in self._shown if n not in epochs]:
            self.remove_row(str(n))
            del self._shown[n]
        added = False
        for n, e in sorted(epochs.items()):
            row = tuple(cell(e) for _, _, cell in self._columns)
            if self._shown.get(n) == row:
                continue
            if n in self._shown:
                for (label, _, _), value in zip(self._columns, row):
                    self.update_cell(str(n), label, value)
            else:
                self.add_row(*row, key=str(n))
                added = True
            self._shown[n] = row
        if added:
            self.scroll_end(animate=False)


class EventLog(RichLog):
    """Starts, best checkpoints, early stopping, test results, the end, and the dashboard's own warnings."""

    def on_mount(self) -> None:
        self._shown = 0
        self._notes: list[dict[str, Any]] = []

    def on_resize(self) -> None:
        """Wrap the lines again at the new width."""
        self.clear()
        self._shown = 0
        self._write(self._notes)

    def show(self, state: RunState) -> None:
        self._notes = state.notes
        self._write(state.notes)

    def _write(self, notes: list[dict[str, Any]]) -> None:
        for event in notes[self._shown :]:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))
            text, style = describe(event)
            self.write(Text.assemble((stamp + " ", "dim"), (text, style)))
        self._shown = len(notes)


def describe(e: dict[str, Any]) -> tuple[str, str]:
    """An event as one line of text and its style."""
    kind = e.get("event")
    if kind == Kind.START:
        if e.get("resumed"):
            return f"resumed at epoch {e.get('start_epoch', 0) + 1} of {e.get('epochs', '?')}, step {e.get('start_step', 0)}", "bold"
        return f"started: {counted(e.get('epochs', '?'), 'epoch')} × {counted(e.get('steps_per_epoch', '?'), 'step')}", "bold"
    if kind == Kind.CHECKPOINT:
        if e.get("kind") == "best":
            if e.get("val_acc") is None:  # trained without validation: every epoch is kept as the best
                return f"best epoch {e.get('epoch')} saved: the latest (no validation)", "green"
            val_loss = e.get("val_loss")
            loss_text = f", loss {loss_figure(val_loss)}" if isinstance(val_loss, (int, float)) else ""
            return f"best epoch {e.get('epoch')} saved: val {percent(e.get('val_acc'))}{loss_text}", "green"
        return f"{e.get('kind', '?')} checkpoint saved: epoch {e.get('epoch')}", "dim"
    if kind == Kind.EARLY_STOP:
        return f"early stopping at epoch {e.get('epoch')}: no gain for {counted(e.get('patience'), 'epoch')}, best {e.get('best_epoch')}", "yellow"
    if kind == Kind.TEST:
        return f"test {percent(e.get('test_acc'))}, loss {loss_figure(e.get('test_loss', 0))} ({e.get('checkpoint')}, epoch {e.get('epoch')})", "bold cyan"
    if kind == Kind.END:
        status = Status(e["status"])
        message = f": {e['message']}" if e.get("message") else ""
        return f"{status.label}{message}", f"bold {TONE_STYLE[status.tone]}"
    return e.get("text", str(e)), {"error": "bold red", "info": ""}.get(e.get("level", ""), "yellow")
