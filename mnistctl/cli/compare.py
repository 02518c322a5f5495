"""``mnistctl compare``: runs side by side, p-values per pair, the ensemble, and overlaid validation curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from mnistctl.cli import options
from mnistctl.console import loss_figure

NAME = "compare"


def command(
    refs: Optional[list[str]] = typer.Argument(None, metavar="[RUN]...", autocompletion=options.complete_runs, help="Runs by name or path; with --all, the runs folder.", show_default=False),
    all_runs: bool = typer.Option(False, "--all", help="Compare every run in the folder (default: $MNISTCTL_RUNS_DIR or ./runs)."),
    runs_dir: options.RunsDir = None,
    sort: Optional[str] = typer.Option(None, "--sort", metavar="COLUMN", help="Sort by this column: test_acc (default), val_acc, test_loss, params, time, throughput best first; others smallest first, e.g. lr, weight_decay, batch_size, epochs, name.", show_default=False),
    as_json: options.Json = False,
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="PNG", parser=options.given_path, help="Write the validation accuracy and loss curves of the runs to this new PNG.", show_default=False),
    stats: bool = typer.Option(True, "--stats/--no-stats", help="McNemar p-values and the ensemble (computes test predictions of runs that have none saved)."),
    wide: bool = typer.Option(False, "--wide", help="Show every column, values whole, the table wider than the terminal if need be."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="COL,COL", help="The columns to show, e.g. test_acc,arch,lr (see --wide for all; weight_decay and batch_size too).", show_default=False),
    ignore_data_mismatch: options.IgnoreDataMismatch = False,
    data_dir: options.DataDir = None,
    study: Optional[str] = typer.Option(None, "--study", metavar="NAME", help="Compare the runs of this sweep study, best validation accuracy first.", show_default=False),
    top: Optional[int] = typer.Option(None, "--top", min=0, metavar="K", help="With --study: the K best runs (0: all) \\[default: 5].", show_default=False),
) -> None:
    """Compare runs: a table best first, McNemar p-values for each pair, and the ensemble's accuracy."""
    from mnistctl.console import dumps, literal, out, print_whole, warn
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
    if not all_runs:
        refuse_comma_lists(refs or [], runs_dir)
    result = compare(refs or [], runs_dir, all_runs, sort, stats, ignore_data_mismatch, data_dir)
    for message in result.warnings:
        warn(message)
    if as_json:
        print(dumps(result.to_json(), indent=2))
    else:
        print_runs(result, shown, fit=not (wide or columns), keep=column_key(sort) if sort else None, wrap=not wide)
        if result.pairs:
            print_whole(pairs_table(result.pairs, out.width))
        elif stats:
            out.print("[dim]p-values and the ensemble need at least two runs with a test result[/]")
    if plot is not None:
        written = plot_curves(result.runs, plot)
        if not as_json:
            out.print(f"curves written to [bold]{literal(written)}[/]", soft_wrap=True)


def refuse_comma_lists(refs: list[str], runs_dir) -> None:
    """``fast,simple`` meant as ``fast simple``: runs are named apart, unlike the values of --columns and --what."""
    import shlex

    from mnistctl import runs
    from mnistctl.errors import NotFoundError, UsageError

    for ref in (ref for ref in refs if "," in ref):
        try:
            runs.resolve(ref, runs_dir)
        except NotFoundError:
            apart = " ".join(shlex.quote(part) for part in ref.split(",") if part)
            raise UsageError(f"no run '{ref}'", f"name the runs with spaces between them: mnistctl compare {apart}") from None


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


DROP_FIRST = ("weight_decay", "lr", "batch_size", "throughput", "test_loss", "best_epoch", "augment", "scheduler", "optimizer", "arch", "status", *reversed(NARROW[1:]))


WORDS = ("arch", "optimizer", "scheduler")  # a name, then its options: wrapped at spaces, one a line

NAME_FLOOR = 10  # a name wraps no narrower than this before the columns asked for are printed wider than the terminal


def name_cap(width: int) -> int:
    """The widest a run name is shown before a column is dropped for it: a longer one wraps (after '-', '_', '.', '/')."""
    return max(16, width // 4)


def print_runs(result, shown, fit: bool, keep: str | None = None, wrap: bool = True) -> None:
    """The runs table, its title and footer as lines of their own. With ``fit``, columns (never ``keep``, the one sorted
    by) are dropped until it fits the terminal: first those with one value for every run (named in the footer), then the
    least important; a long run name is wrapped rather than a column dropped for it, and with ``wrap`` so is a column of
    ``WORDS`` whose values differ (one option a line) when that lets it stay; names wrap to fit the columns kept. A table
    still too wide (only with ``wrap`` off, or columns asked for) is printed at its own width, its values never cut."""
    from mnistctl.console import fit_names, out, print_whole, table_width

    def build(columns, names, words=()):
        return runs_table(result, columns, title=None, caption=False, name_width=names, wrapped=words)

    def names_for(columns):
        return min(name_width(result, columns), name_cap(out.width)) if wrap else None  # a run's status joins its name without the status column

    def too_wide(columns, names=None, words=()):
        return table_width(build(columns, names or names_for(columns), words)) > out.width

    same, given, dropped, wrapped = same_for_all(result.rows, shown), shown, [], ()
    words = [k for k in WORDS if len({repr(row[k]) for row in result.rows}) > 1] if wrap else []
    order = [*(k for k in DROP_FIRST if k in same), *DROP_FIRST]
    while fit and len(shown) > 1 and too_wide(shown):
        drop = next((k for k in order if k in {c.key for c in shown} and k != keep), None)
        if drop is None:
            break
        if drop in words and not too_wide(shown, words=[drop]):
            wrapped = [drop]  # its values wrapped at spaces, it stays
            break
        dropped.append(drop)
        shown = [c for c in shown if c.key != drop]
    for key in reversed(dropped):  # one dropped may fit again beside those kept, names unwrapped
        wider = [c for c in given if c in shown or c.key == key]
        if not too_wide(wider, name_width(result, wider), wrapped):
            shown = wider
    if too_wide(shown, words=wrapped):  # columns asked for, or the one sorted by
        wrapped = words
    full, names = name_width(result, shown), names_for(shown)
    table = build(shown, names, wrapped)
    if wrap:
        table, fits = fit_names(lambda n: build(shown, n, wrapped), full, out.width, min(full, NAME_FLOOR))
        if not fits and fit:
            table, fits = fit_names(lambda n: build(shown, n, wrapped), full, out.width)
    out.print("Runs, best first", style="table.title")
    print_whole(table)
    out.print(footer(shown, result.rows, {k: v for k, v in same.items() if k not in {c.key for c in shown}}), style="table.caption")
    if {"test_acc", "test_loss"} & {c.key for c in shown} and (hint := untested_hint(result.rows)):
        out.print(hint, style="dim", soft_wrap=True)


def same_for_all(rows, shown) -> dict[str, Any]:
    """{column key: value} of the columns shown (the name aside) whose value is the same for every run, of two or more."""
    if len(rows) < 2:
        return {}
    values = {c.key: {repr(row[c.key]) for row in rows} for c in shown if c.key != "name"}
    return {key: rows[0][key] for key, found in values.items() if len(found) == 1 and rows[0][key] is not None}


def untested_hint(rows) -> str | None:
    """How to test the runs that completed training without a test result (stopped in their final test pass), or None."""
    import shlex

    from mnistctl.console import literal
    from mnistctl.reading.compare import completed

    untested = [row for row in rows if completed(row) and row["test_acc"] is None]
    if len(untested) == 1:
        row = untested[0]
        return f"{literal(row['name'])} has no test result: mnistctl eval {literal(shlex.quote(row['path']))} tests its best weights"
    if untested:
        return f"{', '.join(literal(row['name']) for row in untested)} have no test result: mnistctl eval RUN tests the best weights of each"
    return None


def name_width(result, shown) -> int:
    """The width of the widest name cell, unwrapped."""
    from rich.cells import cell_len

    return max([cell_len(name_text(row, shown)) for row in result.rows] + [len("ensemble") if result.ensemble else 0, 1])


def name_text(row, shown) -> str:
    """The run's name, followed by its status in brackets when the status column is not shown and it did not complete."""
    from mnistctl.reading.compare import COLUMN, completed
    from mnistctl.runs import Status

    if COLUMN["status"] in shown or completed(row):
        return str(row["name"])
    return f"{row['name']} ({Status(row['status']).label})"


def name_cell(row, shown, width: int | None):
    """The run's name, wrapped to ``width`` after '-', '_', '.', '/' or a space; its status, if added, dim and in brackets."""
    from rich.text import Text

    from mnistctl.console import TONE_STYLE, wrap_at
    from mnistctl.runs import Status

    text = name_text(row, shown)
    lines = wrap_at(text, width) if width else [text]
    cell = Text("\n".join(lines), style="bold cyan")
    if text != str(row["name"]):
        status = Status(row["status"])
        start = len(cell.plain) - len(f"({status.label})")
        cell.stylize(f"not bold {TONE_STYLE[status.tone]}", start)
    return cell


def footer(shown, rows=(), same: dict[str, Any] | None = None) -> str:
    """The note under the runs table; ``same``: the columns left out that have one value for every run, and that value."""
    from mnistctl.console import counted
    from mnistctl.reading.compare import COLUMN, COLUMNS, COMPLETED_ONLY, completed

    same = same or {}
    hidden = sum(c not in shown and c.key not in same for c in COLUMNS) if set(shown) <= set(COLUMNS) else 0
    more = f"; {counted(hidden, 'more column')} with --wide or --columns" if hidden else ""
    if same:
        more = "; same for all: " + ", ".join(f"{COLUMN[k].header} {cell(k, v)}" for k, v in same.items()) + more
    if any(c.key in COMPLETED_ONLY for c in shown) and not all(completed(row) for row in rows):
        more = f" (accuracy, loss and time: of completed runs only){more}"
    return f"[bold green]green[/]: best in its column{more}"


def runs_table(result, shown=None, title: str | None = "Runs, best first", caption: bool = True, name_width: int | None = None, wrapped=()):
    """The runs table; run names wrapped to ``name_width`` when given, the values of the columns ``wrapped`` at spaces."""
    from rich.table import Table

    from mnistctl.console import least_width, wrap_at
    from mnistctl.reading.compare import COLUMNS, best_values

    shown = shown or list(COLUMNS)
    best = best_values(result.rows, tuple(shown))
    table = Table(title=title, title_justify="left", caption=footer(shown, result.rows) if caption else None, caption_justify="left")
    for column in shown:
        numeric = column.key in FORMATS or column.key in ("epochs", "best_epoch", "trial")
        table.add_column(column.header, justify="right" if numeric else "left", style="bold cyan" if column.key == "name" else None,
                         overflow="fold", no_wrap=True, min_width=len(column.header) if numeric else None)
    for row in result.rows:
        cells = []
        for column in shown:
            if column.key == "name" and "status" in row:
                text = name_cell(row, shown, name_width)
            elif column.key in wrapped and row[column.key] is not None:
                text = cell(column.key, "\n".join(wrap_at(str(row[column.key]), 1, " ", hard=False)))
            else:
                text = cell(column.key, row[column.key])
            if column.key in best and row[column.key] == best[column.key]:
                text = f"[bold green]{text}[/]"
            cells.append(text)
        table.add_row(*cells)
    if result.ensemble:
        ensemble = result.ensemble
        table.add_section()
        arch = f"mean of {len(ensemble['runs'])} runs' probabilities"
        if "arch" in wrapped:
            arch = "\n".join(wrap_at(arch, max(least_width(str(row["arch"]), " ") for row in result.rows), " ", hard=False))
        blank = {"name": "\n".join(wrap_at("ensemble", name_width)) if name_width else "ensemble", "arch": arch, "test_acc": ensemble["test_acc"], "test_loss": ensemble["test_loss"]}
        table.add_row(*(f"[italic magenta]{cell(c.key, blank.get(c.key))}[/]" for c in shown))
    return table


PAIR_HEADERS = ("run A", "run B", "only A right", "only B right", "p", "")


def pairs_table(pairs: list[dict[str, Any]], width: int | None = None):
    """McNemar's test per pair. To fit ``width``: the count headers wrap, then the verdict becomes a '*' after the p-value,
    then the run names wrap after '-', '_', '.', '/' (whole parts, unless a part alone is wider than what is left), then
    the columns close up. Still too wide, it is wider than ``width``: print it with print_whole."""
    from mnistctl.console import fit_names, table_width, tighten

    if width is None:
        return _pairs_table(pairs, 0, None)
    for compact in (0, 1):
        table = _pairs_table(pairs, compact, None)
        if table_width(table) <= width:
            return table
    full = max(len(name) for pair in pairs for name in (pair["run_a"], pair["run_b"]))
    table, fits = fit_names(lambda n: _pairs_table(pairs, 2, n), full, width, min(full, 8))
    if not fits:
        def tight(n):
            table = _pairs_table(pairs, 2, n)
            tighten(table, width)
            return table

        table, fits = fit_names(tight, full, width, min(full, 4))
    return table


def _pairs_table(pairs: list[dict[str, Any]], compact: int, names: int | None):
    from rich.table import Table
    from rich.text import Text

    from mnistctl.console import wrap_at
    from mnistctl.reading.compare import SIGNIFICANCE

    starred = compact >= 2
    adjusted = f", Holm-adjusted for {len(pairs)} pairs" if len(pairs) > 1 else ""
    caption = f"*: significant, p < {SIGNIFICANCE:g}{adjusted}" if starred else f"significant when p < {SIGNIFICANCE:g}{adjusted}"
    table = Table(title="McNemar's exact test on the test set", title_justify="left", caption=caption, caption_justify="left")
    for header in ("run A", "run B"):
        table.add_column(header, no_wrap=True)  # names are wrapped here, at sensible points, never cut to a prefix other names share
    for header in ("only A right", "only B right"):
        table.add_column(header.replace(" right", "\nright") if compact else header, justify="right", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    if not starred:
        table.add_column("", justify="left", no_wrap=True)
    for pair in pairs:
        run_a, run_b = (Text("\n".join(wrap_at(pair[k], names) if names else [pair[k]])) for k in ("run_a", "run_b"))
        p = p_value(pair["p_holm"])
        if starred:
            verdict = [f"[bold green]{p} *[/]" if pair["significant"] else f"[dim]{p}[/]  "]
        else:
            verdict = [p, "[bold green]significant[/]" if pair["significant"] else "[dim]not significant[/]"]
        table.add_row(run_a, run_b, f"{pair['b']:,}", f"{pair['c']:,}", *verdict)
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


TINY_P = 1e-300  # below it a float loses digits (subnormal from 2.2e-308) and then becomes 0


def p_value(p: float) -> str:
    if p < TINY_P:
        return f"< {TINY_P:g}"
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
    "test_loss": loss_figure,
    "time": duration,
    "throughput": lambda v: f"{v:,.0f}",
    "lr": lambda v: f"{v:g}",
    "weight_decay": lambda v: f"{v:g}",
    "batch_size": lambda n: f"{n:,}",
}
