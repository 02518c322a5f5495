from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mnistctl.cli import options

NAME = "export"


def command(
    run: options.RunArg = "latest",
    fmt: str = typer.Option("onnx", "--format", "-f", help="Export format: onnx."),
    which: options.Weights = None,
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", parser=options.given_path, help="A new file to write (default: RUN/exports/WEIGHTS.onnx, replaced on each export)."),
    data_dir: options.DataDir = None,
    runs_dir: options.RunsDir = None,
    ignore_data_mismatch: options.IgnoreDataMismatch = False,
) -> None:
    """Export a run's model for deployment, checked on the test set.

    The ONNX model (opset 20) takes 'images', uint8 (N, 28, 28) in MNIST form, and returns 'probs', float32 (N, 10) for the digits 0 to 9 in order; the run's normalisation is built in. The file is written only if onnxruntime agrees with PyTorch on every test image (same predictions, probabilities within 1e-4). It says which weights it wrote and the epoch they are from (a run still training saves newer ones), and the file records both. Needs: pip install 'mnistctl\\[onnx]'.

    Example: mnistctl export latest --format onnx -o digits.onnx
    """
    from mnistctl import runs
    from mnistctl.console import out, printable
    from mnistctl.reading import export

    options.new_typed_file(output, "--output", "ONNX", "digits.onnx")
    target, which = runs.resolve_checkpoint(run, which, runs_dir)
    dataset = target.dataset(data_dir, ignore_data_mismatch)
    path, parity = export.export(target, fmt, which, output, dataset)
    out.print(f"wrote {printable(str(path))}", soft_wrap=True, markup=False)
    trained = export.Trained.recorded(export.recorded(path))  # what the file records, even if the run has saved newer weights since
    out.print(f"weights: {trained}{_unfinished(target)}", soft_wrap=True, markup=False, highlight=False)
    out.print(
        f"onnxruntime agrees with PyTorch on {parity.images:,} test images: "
        f"{parity.mismatches} different predictions, max probability difference {parity.max_difference:.1e}",
        soft_wrap=True,
    )


def _unfinished(run) -> str:
    """``; the run is still training`` and the like for a run that has not ended as planned; nothing for one that has."""
    from mnistctl.runs import Status

    said = {Status.RUNNING: "is still training", Status.STALLED: "stalled", Status.INTERRUPTED: "was interrupted",
            Status.PRUNED: "was pruned", Status.FAILED: "failed", Status.WAITING: "has not begun"}.get(run.status())
    return f"; the run {said}" if said else ""
