"""The dashboard's per-layer view: the latest layer statistics of a run, one row per layer, odd layers marked."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from mnistctl.training.layerstats import diagnose, main_param
from mnistctl.tui.state import RunState

COLUMNS = ("layer", "", "type", "act mean", "act std", "zeros", "out grad", "w grad", "update")  # marks beside the name, seen at any width
LEFT_OUT_FIRST = ("type", "act mean", "update", "act std", "out grad")  # where the width is short; the marks' evidence stays longest
MARKS = {"dead": ("☠", "bold red"), "exploding": ("▲", "bold yellow"), "vanishing": ("▼", "bold magenta")}  # the symbol before the word
HOW_TO = "no layer statistics in this run: train with --log-layers"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def row(name: str, record: dict[str, Any], reasons: list[str], symbols_only: bool = False) -> tuple[Any, ...]:
    weight = main_param(record)
    zeros = record.get("zeros")
    mark = Text(" ").join(Text(symbol if symbols_only else f"{symbol} {r}", style) for r in reasons for symbol, style in [MARKS[r]])
    return (
        Text(name, style="bold" if reasons else ""), mark, Text(record.get("type", "?"), style="dim"),
        number(record.get("mean")), number(record.get("std")), "-" if zeros is None else f"{100 * zeros:.1f}%",
        number(record.get("grad")), number(weight.get("grad")), number(weight.get("update")),
    )  # fmt: skip


class LayerPanel(Vertical):
    """A caption (step, counts of marked layers) over a table of the latest logged step; columns that do not fit are left out."""

    def compose(self) -> ComposeResult:
        yield Static(HOW_TO, id="layers-caption")
        yield DataTable(id="layers-table", cursor_type="none", zebra_stripes=True)

    def on_mount(self) -> None:
        self.border_title = "Layers"
        self.shown: int | None = None
        self.records: dict[str, dict[str, Any]] = {}
        self.marked: dict[str, list[str]] = {}
        self.columns: tuple[tuple[str, ...], bool] | None = None  # those shown, and whether the marks are symbols only

    def on_resize(self) -> None:
        self._fill()

    def show(self, state: RunState) -> None:
        event = state.layers
        if event is None or id(event) == self.shown:
            return
        self.shown = id(event)
        layers = event["layers"]
        marked = diagnose(layers)
        self.records, self.marked, self.columns = layers, marked, None
        self._fill()
        counts = [f"{sum(reason in r for r in marked.values())} {MARKS[reason][0]} {reason}" for reason in MARKS if any(reason in r for r in marked.values())]
        summary = Text(", ".join(counts), style="bold yellow") if counts else Text("no layer looks dead, exploding or vanishing", style="green")
        caption = Text.assemble(f"step {event['step']:,} (epoch {event.get('epoch', '?')}) · {len(layers)} layers · ", summary)
        self.query_one("#layers-caption", Static).update(caption)

    def _fill(self) -> None:
        """The table again when the columns that fit changed: the least telling go first, the name and its marks never;
        where even so they do not fit, the marks keep their symbols only (the caption names them)."""
        table = self.query_one(DataTable)
        room = table.scrollable_content_region.width
        for symbols_only in (False, True):
            rows = {name: row(name, record, self.marked.get(name, []), symbols_only) for name, record in self.records.items()}
            width = {c: max([len(c), *(Text(str(r[i])).cell_len for r in rows.values())]) + 2 * table.cell_padding for i, c in enumerate(COLUMNS)}
            columns = list(COLUMNS)
            for left_out in LEFT_OUT_FIRST:
                if sum(width[c] for c in columns) <= room:
                    break
                columns.remove(left_out)
            if sum(width[c] for c in columns) <= room:
                break
        if (tuple(columns), symbols_only) == self.columns:
            return
        self.columns = (tuple(columns), symbols_only)
        table.clear(columns=True)
        for column in columns:
            table.add_column(column, width=width[column] - 2 * table.cell_padding)
        keep = [COLUMNS.index(c) for c in columns]
        for name, cells in rows.items():
            table.add_row(*(cells[i] for i in keep), key=name)
