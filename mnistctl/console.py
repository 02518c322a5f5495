"""Shared Rich consoles: results go to stdout, warnings and errors to stderr."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from rich.console import Console

MIN_COLUMNS = 20
if os.environ.get("COLUMNS", "").strip().isdigit() and int(os.environ["COLUMNS"]) < MIN_COLUMNS:
    del os.environ["COLUMNS"]  # a slip (0 printed nothing, 1 a letter a line): the terminal's width is used, else 80
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


TONE_STYLE = {"done": "green", "live": "yellow", "idle": "dim", "warn": "yellow", "error": "red"}
CONTROLS = {c: repr(chr(c))[1:-1] for c in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (\\x1b, \\n): a file's name cannot move the cursor or split a line."""
    return text.translate(CONTROLS)


def literal(value) -> str:
    """A path or name for rich markup: control characters escaped (a newline in a folder name would split the line)
    and markup characters kept as they are."""
    from rich.markup import escape

    return escape(printable(str(value)))


def counted(n, noun: str) -> str:
    """``1 epoch``, ``3 epochs``; an unknown count (``?``) takes the plural."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def loss_figure(value: float) -> str:
    """A loss to 4 decimals; one too large for them (a run blowing up) in 3 significant digits, ``6.89e+19``."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"


NAME_BREAKS = "-_./ "  # a run or plugin name may wrap after these


def pieces(text: str, breaks: str) -> list[str]:
    """``text`` cut after each character of ``breaks``: the parts a wrapped line may end with."""
    parts, part = [], ""
    for char in text:
        part += char
        if char in breaks:
            parts.append(part)
            part = ""
    return [*parts, part] if part else parts


def wrap_at(text: str, width: int, breaks: str = NAME_BREAKS, hard: bool = True) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken after a character of ``breaks`` (a name after '-', a list after
    ','). A part longer than ``width`` is broken mid-part when ``hard``, else it is a line of its own, wider than ``width``."""
    from rich.cells import cell_len

    width = max(width, 1)
    lines, line = [], ""
    for part in pieces(text, breaks):
        if line and cell_len(line + part.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        while hard and cell_len(part.rstrip()) > width and not line:
            cut = ""
            for char in part:
                if cell_len(cut + char) > width:
                    break
                cut += char
            lines.append(cut)
            part = part[len(cut):]
        line += part
    return [*lines, line.rstrip()] if line.strip() or not lines else lines


def least_width(text: str, breaks: str = NAME_BREAKS) -> int:
    """The narrowest ``text`` can be wrapped by :func:`wrap_at` without breaking a part."""
    from rich.cells import cell_len

    return max((cell_len(part.rstrip()) for part in pieces(text, breaks)), default=0)


def table_width(table, console: Console | None = None) -> int:
    """The cells a table takes with every value whole (no cell wrapped or cut)."""
    from rich.measure import Measurement

    console = console or out
    return Measurement.get(console, console.options.update_width(10_000), table).maximum


def tighten(table, width: int) -> bool:
    """Narrow ``table`` until its values fit ``width`` whole: no outer padding, then no outer edge, then no padding at all
    (the rules still part the columns). False when even that is too wide: the caller says so rather than cut values."""
    steps = ({"pad_edge": False}, {"show_edge": False}, {"padding": (0, 0)})
    for step in steps:
        if table_width(table) <= width:
            return True
        for name, value in step.items():
            setattr(table, name, value)
    return table_width(table) <= width


def fit_names(build, full: int, width: int, floor: int = 1):
    """``build(n)``, a table whose names are wrapped to ``n`` cells, for the widest ``n`` from ``floor`` to ``full`` that
    fits ``width``; ``(table, fits)``, the table at ``floor`` when none fits."""
    names = full
    table = build(names)
    while names > floor and table_width(table) > width:
        names = max(floor, names - max(1, table_width(table) - width))
        table = build(names)
    while names < full and table_width(wider := build(names + 1)) <= width:
        names, table = names + 1, wider
    return table, table_width(table) <= width


def print_whole(table, console: Console | None = None) -> None:
    """Print ``table`` at the terminal's width, or at its own when it is wider: its values are never cut."""
    from rich.segment import Segments

    console = console or out
    console.print(Segments(console.render(table, console.options.update_width(max(table_width(table, console), console.width)))), crop=False)


def warn(message: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]warning:[/] {escape(printable(message))}", soft_wrap=True)


def report(message: str, hint: str | None = None) -> None:
    """An error as one red line, with its hint dimmed."""
    from rich.markup import escape

    line = f"[bold red]error:[/] {escape(printable(message))}"
    if hint:
        line += f" [dim]({escape(printable(hint))})[/]"
    err.print(line, soft_wrap=True)


def run_app(app, **options) -> None:
    """Run a Textual app; an error it stopped on is raised here, to be one line like any other, instead of
    Textual's traceback on the screen and exit code 0."""
    import io

    from textual.worker import WorkerFailed

    app.error_console = Console(file=io.StringIO())
    app.run(**options)
    error = app._exception
    if error is not None:
        raise error.error if isinstance(error, WorkerFailed) else error


def dumps(obj: Any, **options: Any) -> str:
    """``json.dumps``, with NaN and infinity written as null: JSON has neither."""
    try:
        return json.dumps(obj, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_nulled(obj), **options)


def _nulled(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nulled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nulled(item) for item in value]
    return value
