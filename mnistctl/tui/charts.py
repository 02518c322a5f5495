"""Live line charts of loss and accuracy, drawn with plotext; x is the epoch (fractional between epochs)."""

from __future__ import annotations

import math

from rich.text import Text
from textual_plotext import PlotextPlot

from mnistctl.tui.state import RunState
from mnistctl.tui.widgets import leading

Series = dict[str, tuple[list[float], list[float]]]


class MetricChart(PlotextPlot):
    """A chart that replots only when its series change; its title and legend are in its top border, off the data."""

    title = ""
    colors = {"train": 6, "val": 3, "train (steps)": 8}  # ANSI colours: cyan, yellow, grey

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series: Series = {}
        self._epochs = 0
        self._ended = False

    def on_mount(self) -> None:
        super().on_mount()
        self._retitle()
        self._frame()

    def _frame(self) -> None:
        self.plt.xaxes(True, False)  # no frame line above the data, where the title was
        self.plt.yaxes(True, False)

    def series_of(self, state: RunState) -> Series:
        raise NotImplementedError

    def render(self):
        labels = y_labels(self.size.height - 2)  # less the x axis and its labels
        self.plt.yfrequency(labels)
        if ticks := short_ticks([y for _, ys in self.series.values() for y in ys], labels):
            self.plt.yticks(*ticks)  # cleared with the figure when the series change
        return super().render()

    def on_resize(self) -> None:
        self._retitle()

    def _retitle(self) -> None:
        """The legend in the top border, shortened or its entries left out whole where it does not fit; or why there is none."""
        room = self.size.width - 2  # Textual keeps a cell at either end of a top border
        if not self.series:
            why = Text(f" ({'nothing logged' if self._ended else 'no data yet'})")
            self.border_title = leading([Text(self.title, style="bold"), why], room)
            return
        self.border_title = fitting_legend(self.title, {label: self.colors[label] for label in self.series}, room)

    def show(self, state: RunState) -> None:
        series = {label: xy for label, xy in self.series_of(state).items() if len(xy[0]) > label.endswith("(steps)")}  # a line of steps needs two
        epochs, ended = state.progress.epochs, state.end is not None
        if series == self.series and epochs == self._epochs and ended == self._ended:
            return
        self.series, self._epochs, self._ended = series, epochs, ended
        self._retitle()
        plt = self.plt
        plt.clear_figure()
        self._frame()
        if epochs:
            plt.xlim(0, epochs)
            plt.xticks(list(range(0, epochs + 1, math.ceil(epochs / 6))))
        for label, (xs, ys) in series.items():
            marker = "braille" if label.endswith("(steps)") else "hd"
            plt.plot(xs, ys, marker=marker, color=self.colors[label])
        self.refresh()


class LossChart(MetricChart):
    title = "loss"

    def series_of(self, state: RunState) -> Series:
        epochs = sorted(state.epochs.values(), key=lambda e: e["epoch"])
        return {
            "train (steps)": ([x for x, _ in state.losses], [y for _, y in state.losses]),
            "train": _column(epochs, "train_loss"),
            "val": _column(epochs, "val_loss"),
        }


class AccuracyChart(MetricChart):
    title = "accuracy %"

    def series_of(self, state: RunState) -> Series:
        epochs = sorted(state.epochs.values(), key=lambda e: e["epoch"])
        return {"train": _column(epochs, "train_acc", 100), "val": _column(epochs, "val_acc", 100)}


def y_labels(rows: int, most: int = 7) -> int:
    """How many evenly spaced y labels fit ``rows`` rows of data with a row or more between them,
    so that no two round to the same row (plotext would drop one, and the rest would look uneven)."""
    return max(2, min(most, (rows - 1) // 2 + 1))


def short_ticks(values: list[float], count: int) -> tuple[list[float], list[str]] | None:
    """Ticks labelled in 3 significant digits where values are too large for plotext's own labels (a loss
    blowing up to 2e+20 took half the chart's width); None, plotext's own, otherwise."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or max(abs(v) for v in finite) < 1e4:
        return None
    low, high = min(finite), max(finite)
    ticks = [low + (high - low) * i / (count - 1) for i in range(count)] if high > low else [low]
    return ticks, [f"{t:.3g}" for t in ticks]


SHORT = {"train (steps)": "steps"}


LEFT_OUT_FIRST = ("train (steps)", "train", "val")  # the validation line's entry stays longest


def fitting_legend(title: str, colors: dict[str, int], room: int) -> Text:
    """The whole legend where it fits ``room`` cells or the room is unknown; else the short one,
    its least telling entries left out whole until it fits."""
    shown = dict(colors)
    legends = [legend(title, shown)]
    for left_out in (None, *LEFT_OUT_FIRST):
        shown.pop(left_out, None)
        legends.append(legend(title, shown, short=True))
    return next((text for text in legends if text.cell_len <= room), legends[-1]) if room > 0 else legends[0]


def legend(title: str, colors: dict[str, int], short: bool = False) -> Text:
    """``loss  ━ train  ━ val``, each mark in the colour of its line; ``short``: ``loss ━ steps ━ train ━ val``."""
    text = Text(title, style="bold")
    for label, color in colors.items():
        text.append(" ━ " if short else "  ━ ", style=f"color({color})").append(SHORT.get(label, label) if short else label)
    return text


def _column(epochs: list[dict], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    rows = [e for e in epochs if e.get(key) is not None]
    return [float(e["epoch"]) for e in rows], [scale * e[key] for e in rows]
