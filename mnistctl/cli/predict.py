"""``mnistctl predict``: the digit in each of your images, streamed as they are read."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mnistctl.cli import options

NAME = "predict"


def command(
    images: List[str] = typer.Argument(..., help="Image files or folders of images; - reads one image from standard input."),
    run: Optional[List[str]] = typer.Option(None, "--run", "-r", autocompletion=options.complete_runs, help="Run name or path, or a weights file in RUN/weights/ \\[default: latest]. Repeat to average an ensemble."),
    which: options.Weights = None,
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, max=10, help="How many likeliest digits to show."),
    raw: bool = typer.Option(False, "--raw", help="Images are already in MNIST form (28x28, white on black): skip preparation."),
    save_input: Optional[Path] = typer.Option(None, "--save-input", metavar="DIR", parser=options.given_path, help="Write the prepared 28x28 images the model saw to this folder (never over an existing file)."),
    explain: Optional[Path] = typer.Option(None, "--explain", metavar="PNG", parser=options.given_path, help="Write a new PNG of why: each prepared image beside its attributions for its top classes (integrated gradients)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as a JSON array."),
    jsonl_out: bool = typer.Option(False, "--jsonl", help="Print one JSON object per line, as each image is read."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes preparing images (0: one per core)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    runs_dir: options.RunsDir = None,
    checkpoint: Optional[List[Path]] = typer.Option(None, "--checkpoint", "-c", hidden=True, help="Deprecated: pass the weights file to --run."),
) -> None:
    """Read handwritten digits from photos, scans or drawings.

    Each image is prepared the way MNIST was made: inverted if dark on light, background and lighting removed, cropped to the ink, fitted into 20x20 and centred by mass in 28x28. Results stream as images are read. A run with an ONNX export (mnistctl export) predicts with onnxruntime, without loading PyTorch. Exits 1 if any image could not be read.

    Example: mnistctl predict photo.jpg scans/ --top-k 3
    """
    import contextlib
    import functools
    import sys

    from mnistctl import runs
    from mnistctl.console import err, printable, report, warn
    from mnistctl.errors import UsageError
    from mnistctl.reading import predict
    from mnistctl.cli.predict_output import Output

    if checkpoint:
        warn("--checkpoint FILE is deprecated and will be removed in 0.3: pass the file to --run")
    if json_out and jsonl_out:
        raise UsageError("--json and --jsonl cannot be used together", "choose one: --json prints one array, --jsonl one object per line")
    options.new_png(explain, "--explain", "why.png")
    options.output_folder(save_input, "--save-input")
    _check_images(images, sys.stdin)
    refs = [*(run or []), *map(str, checkpoint or [])] or ["latest"]
    chosen = [runs.resolve_checkpoint(ref, which, runs_dir) for ref in refs]
    options.refuse_repeated_runs(refs, chosen)

    names = predict.labels(chosen)

    @functools.cache
    def members() -> list[predict.Member]:
        return [predict.member_from_run(run, weights, device, explain is None, name) for (run, weights), name in zip(chosen, names)]

    saver = predict.InputSaver(save_input) if save_input is not None else None
    output = Output("jsonl" if jsonl_out else "json" if json_out else "table", names)
    explained, failed, unread = [], False, []
    results = predict.predict(predict.expand(images), members, top_k, raw, stdin=sys.stdin and sys.stdin.buffer, jobs=jobs)
    with output, contextlib.closing(results):  # closed on Ctrl-C or SIGTERM too, which ends its workers
        for result in results:
            if isinstance(result, predict.Failure):
                failed = True
                unread.append(result.source)
                report(result.error.message, result.error.hint)
            else:
                if saver is not None:
                    try:
                        saver.save(result)
                    except OSError as exc:  # this image's file alone: the others are still read and saved
                        failed = True
                        report(f"{result.source}: its prepared image could not be saved in {save_input} ({exc.strerror or exc})", "choose another --save-input folder, or shorten the image's name")
                if explain is not None:
                    explained.append(result)
            output.add(result)
    if saver is not None and saver.written:
        renamed = f" ({saver.renamed} under a new name, to leave existing files alone)" if saver.renamed else ""
        err.print(f"prepared images: {len(saver.written)} in {printable(str(save_input))}{renamed}", soft_wrap=True, highlight=False, markup=False)
    if explain is not None and explained:
        from mnistctl.reading.attributions import explain_predictions

        if explain_predictions(explained, members(), explain, min(top_k, 3)):
            err.print(f"explained in {printable(str(explain))}", soft_wrap=True, highlight=False, markup=False)
    elif explain is not None:
        err.print(f"{printable(str(explain))} is not written: no image was read", soft_wrap=True, highlight=False, markup=False)
    if unread and output.count > 1:  # the last line names them, however far up their errors scrolled
        report(f"{len(unread):,} of {output.count:,} images could not be read: {_some(unread)}", "each one's error is above")
    if failed:
        raise typer.Exit(1)


def _some(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _check_images(images: List[str], stdin) -> None:
    """No empty path (it would mean the current folder), and ``-`` at most once, only with something piped in."""
    from mnistctl.errors import UsageError
    from mnistctl.reading.predict import STDIN

    if "" in images:
        raise UsageError("an image path is empty", "name an image file or folder; a shell variable that is not set gives ''")
    given = sum(image == STDIN for image in images)
    if given > 1:
        raise UsageError("- is given twice", "standard input holds one image: pass - once")
    if given and stdin is None:
        raise UsageError("standard input is closed", "pipe an image: mnistctl predict - < photo.jpg")
    if given and stdin.isatty():
        raise UsageError("standard input is a terminal", "pipe an image: mnistctl predict - < photo.jpg")
