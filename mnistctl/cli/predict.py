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
    save_input: Optional[Path] = typer.Option(None, "--save-input", help="Write the prepared 28x28 images the model saw to this folder (never over an existing file)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as a JSON array."),
    jsonl_out: bool = typer.Option(False, "--jsonl", help="Print one JSON object per line, as each image is read."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes preparing images (0: one per core)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where runs live (default: $MNISTCTL_RUNS_DIR or ./runs)."),
) -> None:
    """Read handwritten digits from photos, scans or drawings.

    Each image is prepared the way MNIST was made: inverted if dark on light, background and lighting removed, cropped to the ink, fitted into 20x20 and centred by mass in 28x28. Results stream as images are read. A run with an ONNX export (mnistctl export) predicts with onnxruntime, without loading PyTorch. Exits 1 if any image could not be read.

    Example: mnistctl predict photo.jpg scans/ --top-k 3
    """
    import sys

    from mnistctl import runs
    from mnistctl.cli import report
    from mnistctl.reading import predict
    from mnistctl.reading.predict_output import Output

    saver = predict.InputSaver(save_input) if save_input is not None else None
    members = [predict.member_from_checkpoint(path, device) for path in checkpoint or []]
    if run or not members:
        members += [predict.member_from_run(runs.resolve(ref, runs_dir), which, device) for ref in run or ["latest"]]
    output = Output("jsonl" if jsonl_out else "json" if json_out else "table", [m.name for m in members])
    failed = False
    with output:
        for result in predict.predict(predict.expand(images), members, top_k, raw, stdin=sys.stdin.buffer, jobs=jobs):
            if isinstance(result, predict.Failure):
                failed = True
                report(result.error.message, result.error.hint)
            elif saver is not None:
                saver.save(result)
            output.add(result)
    if saver is not None and saver.written:
        renamed = f" ({saver.renamed} under a new name, to leave existing files alone)" if saver.renamed else ""
        from mnistctl.console import err

        err.print(f"prepared images: {len(saver.written)} in {save_input}{renamed}", soft_wrap=True, highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)
