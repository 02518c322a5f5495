"""``mnistctl eval``: accuracy, loss, per-class report and confusion matrix of a run on a split."""

from __future__ import annotations

import typer

NAME = "eval"


def command(
    run: str = typer.Argument("latest", help="Run name or directory, 'latest', or a path to RUN/weights/<checkpoint>.safetensors."),
    split: str = typer.Option("test", "--split", help="test, or val (the validation images held out of training)."),
    checkpoint: str = typer.Option(None, "--checkpoint", help="best, last or initial weights \\[default: best]."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    runs_dir: str = typer.Option(None, "--runs-dir", help="Where runs live \\[default: $MNISTCTL_RUNS_DIR or ./runs]."),
) -> None:
    """Evaluate a run: accuracy, loss, per-class precision/recall/F1, confusion matrix, most-confused pairs.

    Writes RUN/reports/eval-SPLIT.json and .txt, and the per-sample predictions that compare reads.
    """
    import json

    from mnistctl import runs
    from mnistctl.console import err, out
    from mnistctl.reading import evaluate

    target, which = runs.resolve_checkpoint(run, checkpoint, runs_dir)
    with err.status(f"evaluating {target.name} ({which}) on the {split} split"):
        result = evaluate.evaluate(target, split, which)
        json_path, text_path = evaluate.save(target, result)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for table in evaluate.tables(result):
        out.print(table)
    out.print(f"[dim]wrote {json_path} and {text_path.name}[/]")
