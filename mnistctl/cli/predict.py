from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

NAME = "predict"


def command(
    images: List[str] = typer.Argument(..., help="Image files or folders of images; - reads one image from standard input."),
    run: Optional[List[str]] = typer.Option(None, "--run", "-r", help="Run name or path (default: the latest run). Repeat to average an ensemble."),
    checkpoint: Optional[List[Path]] = typer.Option(None, "--checkpoint", "-c", help="A weights file <run>/weights/<name>.safetensors. Repeatable."),
    which: str = typer.Option("best", "--weights", help="Which weights of each --run: best, last or initial."),
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, max=10, help="How many likeliest digits to show."),
    raw: bool = typer.Option(False, "--raw", help="Images are already in MNIST form (28x28, white on black): skip preparation."),
    save_input: Optional[Path] = typer.Option(None, "--save-input", help="Write the prepared 28x28 images the model saw to this folder."),
    explain: Optional[Path] = typer.Option(None, "--explain", help="Write a PNG of why: each prepared image beside its attributions for its top classes (integrated gradients)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where runs live (default: $MNISTCTL_RUNS_DIR or ./runs)."),
) -> None:
    """Read handwritten digits from photos, scans or drawings.

    Each image is prepared the way MNIST was made: inverted if dark on light, background and lighting removed, cropped to the ink, fitted into 20x20 and centred by mass in 28x28. Exits 1 if any image could not be read.

    Example: mnistctl predict photo.jpg scans/ --top-k 3
    """
    import json
    import sys

    from mnistctl import runs
    from mnistctl.cli import report
    from mnistctl.models import pick_device
    from mnistctl.reading import predict

    target = pick_device(device)
    members = [predict.member_from_checkpoint(path, target) for path in checkpoint or []]
    if run or not members:
        members += [predict.member_from_run(runs.resolve(ref, runs_dir), which, target) for ref in run or ["latest"]]
    results = predict.predict(predict.expand(images), members, top_k, raw, stdin=sys.stdin.buffer)
    failures = [r for r in results if isinstance(r, predict.Failure)]
    for failure in failures:
        report(failure.error.message, failure.error.hint)
    if save_input is not None:
        predict.save_inputs(results, save_input)
    if explain is not None:
        from mnistctl.reading.attributions import explain_predictions

        if explain_predictions([r for r in results if isinstance(r, predict.Prediction)], members, explain, min(top_k, 3)):
            from mnistctl.console import err

            err.print(f"explained in {explain}", soft_wrap=True)
    if json_out:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        _print_table([r for r in results if isinstance(r, predict.Prediction)], [m.name for m in members])
    if failures:
        raise typer.Exit(1)


def _print_table(predictions, models: list[str]) -> None:
    from rich.table import Table

    from mnistctl.console import out

    if not predictions:
        return
    table = Table(box=None, title=f"model: {' + '.join(models)}", title_justify="left", title_style="dim")
    table.add_column("image", overflow="fold")
    table.add_column("digit", justify="right", style="bold")
    table.add_column("probability", justify="right")
    table.add_column("top-k")
    for p in predictions:
        table.add_row(p.source, str(p.digit), f"{p.probability:.1%}", "  ".join(f"{d}: {q:.1%}" for d, q in p.top))
    out.print(table)
