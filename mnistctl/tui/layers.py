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
MARKS = {"dead": ("☠ dead", "bold red"), "exploding": ("▲ exploding", "bold yellow"), "vanishing": ("▼ vanishing", "bold magenta")}
HOW_TO = "no layer statistics in this run: train with --log-layers"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def row(name: str, record: dict[str, Any], reasons: list[str]) -> tuple[Any, ...]:
    weight = main_param(record)
    zeros = record.get("zeros")
    mark = Text(" ").join(Text(*MARKS[r]) for r in reasons)
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
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.columns: tuple[str, ...] = ()

    def on_resize(self) -> None:
        self._fill()

    def show(self, state: RunState) -> None:
        event = state.layers
        if event is None or id(event) == self.shown:
            return
        self.shown = id(event)
        layers = event["layers"]
        marked = diagnose(layers)
        self.rows = {name: row(name, record, marked.get(name, [])) for name, record in layers.items()}
        self.columns = ()
        self._fill()
        counts = [f"{sum(reason in r for r in marked.values())} {reason}" for reason in MARKS if any(reason in r for r in marked.values())]
        summary = Text(", ".join(counts), style="bold yellow") if counts else Text("no layer looks dead, exploding or vanishing", style="green")
        caption = Text.assemble(f"step {event['step']:,} (epoch {event.get('epoch', '?')}) · {len(layers)} layers · ", summary)
        self.query_one("#layers-caption", Static).update(caption)

    def _fill(self) -> None:
        """The table again when the columns that fit changed: the least telling go first, the name and its marks never."""
        table = self.query_one(DataTable)
        width = {c: max([len(c), *(Text(str(r[i])).cell_len for r in self.rows.values())]) + 2 * table.cell_padding for i, c in enumerate(COLUMNS)}
        columns = list(COLUMNS)
        for left_out in LEFT_OUT_FIRST:
            if sum(width[c] for c in columns) <= table.scrollable_content_region.width:
                break
            columns.remove(left_out)
        if tuple(columns) == self.columns:
            return
        self.columns = tuple(columns)
        table.clear(columns=True)
        for column in columns:
            table.add_column(column, width=width[column] - 2 * table.cell_padding)
        keep = [COLUMNS.index(c) for c in columns]
        for name, cells in self.rows.items():
            table.add_row(*(cells[i] for i in keep), key=name)
