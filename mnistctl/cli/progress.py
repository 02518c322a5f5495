"""Training progress: a Rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mnistctl.console import counted, loss_figure, out, table_width
from mnistctl.runs import Status
from mnistctl.training.trainer import Observer


def make_observer(quiet: bool) -> Observer:
    if quiet:
        return Observer()
    return RichProgress() if out.is_terminal else LogLines()


def epoch_line(event: dict[str, Any], epochs: int) -> str:
    """One finished epoch in under 90 columns: loss and accuracy of train and val, lr, time, speed."""
    val = ""
    if event.get("val_acc") is not None:
        val = f"  val {loss_figure(event['val_loss'])} {event['val_acc']:.2%}"
    star = " [green]★[/]" if event.get("best") else ""
    return (
        f"epoch {event['epoch']:>2}/{epochs}  train {loss_figure(event['train_loss'])} {event['train_acc']:.2%}{val}"
        f"  lr {event['lr']:.3g}  {event['epoch_time']:.1f}s {event['images_per_s']:,.0f} img/s{star}"
    )


def start_line(event: dict[str, Any]) -> str:
    from mnistctl.console import literal

    verb = f"resuming at epoch {event['start_epoch'] + 1}, step {event['start_step']}:" if event["resumed"] else "training"
    processes = event.get("world_size", 1)
    where = f"{event['device']} in {processes} processes" if processes > 1 else event["device"]
    return f"{verb} [bold]{literal(event['dir'])}[/] on {where}, {event['params']:,} parameters"


def summary_line(summary: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """How the run ended; an early stop says why, from the run's ``config``: ``early stopped (no better val_loss for 3 epochs)``."""
    label = Status(summary["status"]).label
    if summary["status"] == Status.EARLY_STOPPED and config and config.get("early_stopping"):
        label += f" (no better {config.get('monitor', 'val_acc')} for {counted(config['early_stopping'], 'epoch')})"
    if summary.get("test_acc") is None:
        return f"[yellow]{label}[/] after {counted(summary['epochs_run'], 'epoch')}"
    return (
        f"[bold green]{label}[/]: test accuracy [bold]{summary['test_acc']:.2%}[/] "
        f"(loss {loss_figure(summary['test_loss'])}) with the best epoch {summary['best_epoch']} of {summary['epochs_run']}, "
        f"{summary['wall_time']:.0f}s"
    )


def figures(loss: float | None, acc: float | None, style: str = "") -> dict[str, str]:
    """The bar's loss and accuracy, in ``style`` when given; a dash when there are none."""
    if loss is None or acc is None:
        return {"loss": "-", "acc": "-"}
    shown = {"loss": loss_figure(loss), "acc": f"{acc:.2%}"}
    return {k: f"[{style}]{v}[/]" for k, v in shown.items()} if style else shown


BAR_WIDTH, LEAST_BAR = 40, 10
ECHO_ROOM = 2  # the "^C" a terminal echoes after the bar: on a full line it would wrap, and the bar would be left behind


class FittedProgress(Progress):
    """The bar's line fitted to the terminal: in a narrow one the elapsed time goes first, then the bar shrinks,
    then it goes, rather than figures being cut to an ellipsis."""

    def __init__(self, console, **options: Any) -> None:
        self.screen = console  # Progress.console is not there yet when its first render is made
        self.label = TextColumn("[bold blue]epoch {task.fields[epoch]:>2}/{task.fields[epochs]}")
        self.count = MofNCompleteColumn()
        self.figures = TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}")
        self.elapsed = TimeElapsedColumn()
        self.eta = (TextColumn("eta"), TimeRemainingColumn())
        super().__init__(self.label, BarColumn(BAR_WIDTH), self.count, self.figures, self.elapsed, *self.eta, console=console, **options)

    def layouts(self) -> list[tuple[bool, list]]:
        """(with a bar, the other columns), widest first."""
        return [
            (True, [self.count, self.figures, self.elapsed, *self.eta]),
            (True, [self.count, self.figures, *self.eta]),
            (False, [self.count, self.figures, *self.eta]),
            (False, [self.count, self.figures]),
            (True, [self.count]),
        ]

    def table(self, columns: list) -> Table:
        table = Table.grid(*(column.get_table_column().copy() for column in columns), padding=(0, 1))
        for task in self.tasks:
            if task.visible:
                table.add_row(*(column(task) for column in columns))
        return table

    def get_renderables(self):
        width = self.screen.width - ECHO_ROOM
        for bar, columns in self.layouts():
            rest = table_width(self.table([self.label, *columns]), self.screen)
            bar_width = min(BAR_WIDTH, width - rest - 1) if bar else 0
            if rest <= width and (not bar or bar_width >= LEAST_BAR):
                break
        yield self.table([self.label, BarColumn(max(bar_width, 1)), *columns] if bar else [self.label, *columns])


class LogLines(Observer):
    def start(self, event: dict[str, Any]) -> None:
        self.epochs = event["epochs"]
        out.print(start_line(event), soft_wrap=True)

    def epoch(self, event: dict[str, Any]) -> None:
        out.print(epoch_line(event, self.epochs), soft_wrap=True)


class RichProgress(Observer):
    """An epoch bar with live loss and accuracy and an ETA, and a line per finished epoch.

    The trainer hands the running figures only at its syncs, every ``log_every`` steps: until an epoch's first,
    the bar shows the last finished epoch's figures, dimmed.
    """

    def start(self, event: dict[str, Any]) -> None:
        self.epochs = event["epochs"]
        out.print(start_line(event), soft_wrap=True)
        self.progress = FittedProgress(out, transient=True)
        self.task = self.progress.add_task("train", total=event["steps_per_epoch"], epoch=event["start_epoch"] + 1, epochs=self.epochs, **figures(None, None))
        self.progress.update(self.task, completed=event["start_step"])
        self.progress.start()
        self._last = 0.0
        self.finished: tuple[float | None, float | None] = (None, None)  # the last finished epoch's train loss and accuracy

    def step(self, epoch: int, step: int, steps: int, loss: float | None, acc: float | None) -> None:
        now = time.monotonic()
        if now - self._last > 0.1 or step == steps:
            self._last = now
            shown = figures(loss, acc) if loss is not None else figures(*self.finished, "dim")
            self.progress.update(self.task, completed=step, epoch=epoch, **shown)

    def epoch(self, event: dict[str, Any]) -> None:
        self.progress.console.print(epoch_line(event, self.epochs), soft_wrap=True)
        done = event["epoch"] >= self.epochs  # the test pass follows: no empty bar for an epoch that will not come
        self.finished = (event["train_loss"], event["train_acc"])
        self.progress.reset(self.task, epoch=min(event["epoch"] + 1, self.epochs), epochs=self.epochs, visible=not done, **figures(*self.finished, "dim"))

    def end(self, summary: dict[str, Any]) -> None:
        self.progress.stop()
