"""``mnistctl draw``: draw a digit in the terminal and watch a run read it live."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mnistctl.cli import options

NAME = "draw"


def command(
    run: Optional[List[str]] = typer.Option(None, "--run", "-r", autocompletion=options.complete_runs, help="Run name or path, or a weights file in RUN/weights/ \\[default: latest]. Repeat to average an ensemble."),
    which: options.Weights = None,
    out: Path = typer.Option(Path("drawings"), "--out", metavar="DIR", help="Folder where s saves drawings as 28x28 MNIST-form PNGs (never over a file)."),
    centre: bool = typer.Option(True, "--centre/--no-centre", help="Centre the drawing by mass before reading it, as MNIST digits are."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    runs_dir: options.RunsDir = None,
) -> None:
    """Draw a digit with the mouse or the keyboard and watch the model read it live.

    Left button draws, right button erases; arrows move the cursor, space puts the pen down or lifts it, e switches to the eraser; c clears, f shows the first conv layer's feature maps, s saves the drawing into --out, q quits.

    Example: mnistctl draw --run fast --out my-digits
    """
    from mnistctl import runs
    from mnistctl.models import load_model, pick_device
    from mnistctl.reading.predict import labels

    options.output_folder(out, "--out")
    refs = run or ["latest"]
    _refuse_onnx(refs)
    chosen = [runs.resolve_checkpoint(ref, which, runs_dir) for ref in refs]
    options.refuse_repeated_runs(refs, chosen)
    options.require_terminal("draw", "run it in a terminal; mnistctl predict IMAGE reads the digit in a picture")
    target = pick_device(device)
    import torch

    torch.set_num_threads(1)  # one small image at a time: more threads only contend (benchmarks/draw_latency.py)
    members = [(load_model(r, weights).to(target), *r.normalization) for r, weights in chosen]
    from mnistctl.console import run_app
    from mnistctl.tui.draw import DrawApp
    from mnistctl.tui.reader import Reader

    run_app(DrawApp(Reader(members, labels(chosen), centre), out))


def _refuse_onnx(refs: list[str]) -> None:
    """An exported model is read by predict only: draw needs the run's PyTorch model for its feature maps."""
    import shlex

    from mnistctl.errors import UsageError

    for ref in refs:
        if ref.lower().endswith(".onnx") and Path(ref).is_file():
            raise UsageError(f"--run {ref} is an ONNX export, which draw cannot read",
                             f"predict reads it: mnistctl predict IMAGE --run {shlex.quote(ref)}; draw takes the run it was exported from")
