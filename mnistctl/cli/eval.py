"""``mnistctl eval``: accuracy, loss, per-class report and confusion matrix of a run on a split."""

from __future__ import annotations

import shlex

import typer

from mnistctl.cli import options

NAME = "eval"


def command(
    run: options.RunArg = "latest",
    split: str = typer.Option("test", "--split", metavar="test|val", show_default=False, help="test, or val (the validation images held out of training) \\[default: test]."),
    which: options.Weights = None,
    as_json: options.Json = False,
    runs_dir: options.RunsDir = None,
    data_dir: options.DataDir = None,
    checkpoint: options.OldCheckpoint = None,
    ignore_data_mismatch: options.IgnoreDataMismatch = False,
) -> None:
    """Evaluate a run: accuracy, loss, per-class precision/recall/F1, confusion matrix, most-confused pairs.

    Writes RUN/reports/eval-SPLIT.json and .txt, and the per-sample predictions that compare reads.
    """
    from mnistctl import runs
    from mnistctl.console import dumps, err, literal, out, table_width, tighten, warn
    from mnistctl.reading import evaluate

    target, which = runs.resolve_checkpoint(run, options.weights(which, checkpoint), runs_dir)
    with err.status(f"evaluating {literal(target.name)} ({which}) on the {split} split"):
        dataset = target.dataset(data_dir, ignore_data_mismatch) if data_dir or ignore_data_mismatch else None
        result = evaluate.evaluate(target, split, which, dataset)
        try:
            json_path, text_path = evaluate.save(target, result)
        except OSError as exc:  # a read-only, full or forbidden reports/: the result is still good to show
            json_path = text_path = None
            warn(f"the report could not be kept in {target.path / 'reports'} ({exc.strerror or exc}); it is shown only")
    if as_json:
        print(dumps(result, indent=2))
        return
    for table in evaluate.tables(result):
        if tighten(table, out.width):  # closer columns at narrow widths, so that every count stays whole
            out.print(table)
            continue
        title = str(table.title).split(" (")[0]
        elsewhere = f"--json, or draw it: mnistctl visualize {literal(shlex.quote(str(target.path)))} --what confusion" if title.startswith("Confusion") else "--json"
        out.print(f"{title}: [yellow]needs {table_width(table)} columns, the terminal has {out.width}[/]; see {elsewhere}")
    if json_path is not None:
        out.print(f"[dim]wrote {literal(json_path)} and {literal(text_path.name)}[/]", soft_wrap=True)
