"""``mnistctl predict``: the digit in each of your images, streamed as they are read."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mnistctl.cli import options

NAME = "predict"


def command(
    images: List[str] = typer.Argument(..., help="Image files or folders of images; - reads one image from standard input."),
    run: Optional[List[str]] = typer.Option(None, "--run", "-r", autocompletion=options.complete_runs, help="Run name or path, a weights file in RUN/weights/, or a .onnx file mnistctl export wrote (copied anywhere: no run needed) \\[default: latest]. Repeat to average an ensemble of any of these."),
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

    Each image is prepared the way MNIST was made: inverted if dark on light, background and lighting removed, cropped to the ink, fitted into 20x20 and centred by mass in 28x28. Results stream as images are read. A run with an ONNX export (mnistctl export), or the exported file itself, predicts with onnxruntime, without loading PyTorch. Exits 1 if any image could not be read.

    Example: mnistctl predict photo.jpg scans/ --top-k 3

    Example: mnistctl predict photo.jpg --run digits.onnx
    """
    import contextlib
    import functools
    import sys

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
    models = [_model(ref, which, runs_dir) for ref in refs]
    from_runs = [(ref, model) for ref, model in zip(refs, models) if not isinstance(model, predict.Export)]
    options.refuse_repeated_runs([ref for ref, _ in from_runs], [model for _, model in from_runs])
    if len(from_runs) < len(models):
        _check_exports(refs, models, which, device, explain)
    run_names = iter(predict.labels([model for _, model in from_runs]))
    names = [predict.export_label(model, printable(ref)) if isinstance(model, predict.Export) else next(run_names) for ref, model in zip(refs, models)]

    @functools.cache
    def members() -> list[predict.Member]:
        return [predict.member_from_export(model, name) if isinstance(model, predict.Export) else predict.member_from_run(*model, device, explain is None, name)
                for model, name in zip(models, names)]

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


def _model(ref: str, which, runs_dir):
    """A run and its weights, or an ONNX file ``mnistctl export`` wrote (by its .onnx name, or any file that is not a run's)."""
    from mnistctl import runs
    from mnistctl.errors import UsageError
    from mnistctl.reading.members import open_export
    from mnistctl.reading.predict import is_export

    if is_export(ref):
        return open_export(ref)
    try:
        return runs.resolve_checkpoint(ref, which, runs_dir)
    except UsageError:
        if Path(ref).suffix != ".safetensors" and Path(ref).is_file():  # an export under another name, or said not to be one
            return open_export(ref)
        raise


def _check_exports(refs: List[str], models: list, which, device: str, explain) -> None:
    """What an ONNX file cannot do: other weights, another device, attributions; nor be averaged with its own weights."""
    from mnistctl.errors import UsageError
    from mnistctl.reading.members import Export, weights_digest

    seen: dict = {}
    for ref, model in zip(refs, models):
        if isinstance(model, Export):
            run, weights = model.metadata["mnistctl.run"], model.metadata.get("mnistctl.weights", "best")
            if which and which != weights:
                raise UsageError(f"--weights {which} contradicts {ref}, an export of the {weights} weights", "leave --weights out for an ONNX file; pick a run's weights with RUN/weights/<best|last|initial>.safetensors")
            if device not in ("auto", "cpu"):
                raise UsageError(f"--device {device} does not apply to {ref}: onnxruntime runs it on the CPU", "leave --device out, or pass the run it was exported from")
            if explain is not None:
                raise UsageError(f"--explain needs a run's PyTorch model, and {ref} is an ONNX file", f"pass the run it was exported from instead: --run {run}")
            key = model.digest or model.path.resolve()
        else:
            key = weights_digest(model[0].weights(model[1]))
        if key in seen:
            again = f"--run {ref} is given twice" if seen[key] == ref else f"--run {seen[key]} and --run {ref} are the same weights"
            raise UsageError(again, "pass each model once: an export is the same model as the weights it was made from")
        seen[key] = ref


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
