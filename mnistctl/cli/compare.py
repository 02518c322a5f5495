"""``mnistctl compare``: runs side by side, p-values per pair, the ensemble, and overlaid validation curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from mnistctl.cli import options

NAME = "compare"


def command(
    refs: Optional[list[str]] = typer.Argument(None, metavar="[RUN]...", autocompletion=options.complete_runs, help="Runs by name or path; with --all, the runs folder.", show_default=False),
    all_runs: bool = typer.Option(False, "--all", help="Compare every run in the folder (default: $MNISTCTL_RUNS_DIR or ./runs)."),
    runs_dir: options.RunsDir = None,
    sort: Optional[str] = typer.Option(None, "--sort", metavar="COLUMN", help="Sort best first by this column, e.g. test_acc (default), val_acc, test_loss, params, time, throughput, name.", show_default=False),
    as_json: options.Json = False,
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="PNG", parser=options.given_path, help="Write the validation accuracy and loss curves of the runs to this new PNG.", show_default=False),
    stats: bool = typer.Option(True, "--stats/--no-stats", help="McNemar p-values and the ensemble (computes test predictions of runs that have none saved)."),
    wide: bool = typer.Option(False, "--wide", help="Show every column, values whole, the table wider than the terminal if need be."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="COL,COL", help="The columns to show, e.g. test_acc,arch (see --wide for all).", show_default=False),
    ignore_data_mismatch: options.IgnoreDataMismatch = False,
    data_dir: options.DataDir = None,
    study: Optional[str] = typer.Option(None, "--study", metavar="NAME", help="Compare the runs of this sweep study, best validation accuracy first.", show_default=False),
    top: Optional[int] = typer.Option(None, "--top", min=0, metavar="K", help="With --study: the K best runs (0: all) \\[default: 5].", show_default=False),
) -> None:
    """Compare runs: a table best first, McNemar p-values for each pair, and the ensemble's accuracy."""
    from rich.markup import escape

    from mnistctl.console import out, warn
    from mnistctl.errors import UsageError
    from mnistctl.reading.compare import column_key, compare
    from mnistctl.reading.compare import plot as plot_curves

    if top is not None and study is None:
        raise UsageError("--top picks the best runs of a --study", "add --study NAME, or drop --top")
    if wide and columns:
        raise UsageError("--wide shows every column, so --columns would be ignored", "drop one or the other")
    if as_json and (wide or columns):
        raise UsageError(f"--json holds every column, so {'--wide' if wide else '--columns'} would be ignored", "drop one or the other")
    options.new_png(plot, "--plot", "compare.png")
    shown = pick_columns(columns, sort)
    if study is not None:
        from mnistctl.reading.compare import study_runs

        if refs or all_runs:
            raise UsageError("--study selects the runs itself", "drop the run names and --all, or drop --study")
        refs, sort = study_runs(study, runs_dir, 5 if top is None else top), sort or "val_acc"
    result = compare(refs or [], runs_dir, all_runs, sort, stats, ignore_data_mismatch, data_dir)
    for message in result.warnings:
        warn(message)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_runs(result, shown, fit=not (wide or columns), keep=column_key(sort) if sort else None)
        if result.pairs:
            out.print(pairs_table(result.pairs))
        elif stats:
            out.print("[dim]p-values and the ensemble need at least two runs with a test result[/]")
    if plot is not None:
        written = plot_curves(result.runs, plot)
        if not as_json:
            out.print(f"curves written to [bold]{escape(str(written))}[/]", soft_wrap=True)


NARROW = ("name", "test_acc", "val_acc", "params", "epochs", "time")  # the columns that matter most, in order


def pick_columns(asked: str | None, sort: str | None = None):
    """The columns to show: those asked for and the one sorted by, else all of them (fitted to the terminal when printed)."""
    from mnistctl.errors import UsageError
    from mnistctl.reading.compare import COLUMN, COLUMNS, column_key

    if asked is None:
        return list(COLUMNS)
    keys = [column_key(k) for k in asked.split(",") if k.strip()]
    if not keys:
        raise UsageError(f"--columns {asked!r} names no column", "name some, e.g. --columns test_acc,arch,optimizer")
    return [COLUMN[k] for k in dict.fromkeys(["name", *keys, *([column_key(sort)] if sort else [])])]


DROP_FIRST = ("throughput", "test_loss", "best_epoch", "augment", "scheduler", "optimizer", "arch", "status", *reversed(NARROW[1:]))


def print_runs(result, shown, fit: bool, keep: str | None = None) -> None:
    """The runs table, its title and footer as lines of their own. With ``fit``, the least important columns
    (never ``keep``, the one sorted by) are dropped until it fits the terminal; a table still too wide is printed
    at its own width, its values never cut."""
    from rich.measure import Measurement
    from rich.segment import Segments

    from mnistctl.console import out

    def width(table) -> int:
        return Measurement.get(out, out.options.update_width(10_000), table).maximum

    table = runs_table(result, shown, title=None, caption=False)
    while fit and len(shown) > 1 and width(table) > out.width:
        drop = next((k for k in DROP_FIRST if k in {c.key for c in shown} and k != keep), None)
        if drop is None:
            break
        shown = [c for c in shown if c.key != drop]
        table = runs_table(result, shown, title=None, caption=False)
    out.print("Runs, best first", style="table.title")
    out.print(Segments(out.render(table, out.options.update_width(max(width(table), out.width)))), crop=False)
    out.print(footer(shown), style="table.caption")


def footer(shown) -> str:
    from mnistctl.reading.compare import COLUMNS

    hidden = sum(c not in shown for c in COLUMNS) if set(shown) <= set(COLUMNS) else 0
    more = f"; {hidden} more columns with --wide or --columns" if hidden else ""
    return f"[bold green]green[/]: best in its column{more}"


def runs_table(result, shown=None, title: str | None = "Runs, best first", caption: bool = True):
    from rich.table import Table

    from mnistctl.reading.compare import COLUMN, COLUMNS, best_values
    from mnistctl.runs import Status

    shown = shown or list(COLUMNS)
    best = best_values(result.rows, tuple(shown))
    table = Table(title=title, title_justify="left", caption=footer(shown) if caption else None, caption_justify="left")
    for column in shown:
        numeric = column.key in FORMATS or column.key in ("epochs", "best_epoch", "trial")
        table.add_column(column.header, justify="right" if numeric else "left", style="bold cyan" if column.key == "name" else None,
                         overflow="fold", no_wrap=column.key != "name", min_width=len(column.header) if numeric else None)
    for row in result.rows:
        cells = []
        for column in shown:
            text = cell(column.key, row[column.key])
            if column.key == "name" and COLUMN["status"] not in shown and not Status(row["status"]).completed:
                text += f"\n{cell('status', row['status'])}"
            if column.key in best and row[column.key] == best[column.key]:
                text = f"[bold green]{text}[/]"
            cells.append(text)
        table.add_row(*cells)
    if result.ensemble:
        ensemble = result.ensemble
        table.add_section()
        blank = {"name": "ensemble", "arch": f"mean of {len(ensemble['runs'])} runs' probabilities", "test_acc": ensemble["test_acc"], "test_loss": ensemble["test_loss"]}
        table.add_row(*(f"[italic magenta]{cell(c.key, blank.get(c.key))}[/]" for c in shown))
    return table


def pairs_table(pairs: list[dict[str, Any]]):
    from rich.markup import escape
    from rich.table import Table

    from mnistctl.reading.compare import SIGNIFICANCE

    table = Table(title="McNemar's exact test on the test set", title_justify="left", caption=f"significant when p < {SIGNIFICANCE:g}", caption_justify="left")
    for header in ("run A", "run B"):
        table.add_column(header, overflow="fold")  # a long name wraps, whole, rather than being cut to a prefix other names share
    for header in ("only A right", "only B right", "p", ""):
        table.add_column(header, justify="left" if not header else "right", no_wrap=True)
    for pair in pairs:
        verdict = "[bold green]significant[/]" if pair["significant"] else "[dim]not significant[/]"
        table.add_row(escape(pair["run_a"]), escape(pair["run_b"]), f"{pair['b']:,}", f"{pair['c']:,}", p_value(pair["p_value"]), verdict)
    return table


def cell(key: str, value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return ""
    if key == "status":
        from mnistctl.console import TONE_STYLE
        from mnistctl.runs import Status

        status = Status(value)
        return f"[{TONE_STYLE[status.tone]}]{status.label}[/]"
    return escape(FORMATS.get(key, str)(value))


def p_value(p: float) -> str:
    if p == 0:
        return "< 1e-300"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


FORMATS = {
    "params": lambda n: f"{n:,}",
    "val_acc": lambda v: f"{100 * v:.2f}%",
    "test_acc": lambda v: f"{100 * v:.2f}%",
    "test_loss": lambda v: f"{v:.4f}",
    "time": duration,
    "throughput": lambda v: f"{v:,.0f}",
}
