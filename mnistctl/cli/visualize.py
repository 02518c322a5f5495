"""``mnistctl visualize``: PNG plots of a run."""

from __future__ import annotations

from typing import List, Optional

import typer

from mnistctl.cli import options

NAME = "visualize"


def command(
    run: options.RunArg = "latest",
    what: List[str] = typer.Option(
        ["all"], "--what", "-w", autocompletion=options.complete_plot_kinds,
        help="curves, confusion, filters, initial-filters, feature-maps, wrong, samples, saliency, layer-stats (runs trained with --log-layers) or all; comma-separated or repeated.",
    ),
    out: Optional[str] = typer.Option(None, "--out", metavar="DIR", help="Folder for the PNGs \\[default: RUN/plots]."),
    which: options.Weights = None,
    split: Optional[str] = typer.Option(None, "--split", metavar="test|val", help="Images for confusion, wrong, feature-maps and saliency: test or val \\[default: test]."),
    layer: Optional[str] = typer.Option(None, "--layer", metavar="NAME|N", help="Conv layer for filters: its name (e.g. features.3) or number \\[default: the first]."),
    index: Optional[int] = typer.Option(None, "--index", metavar="N", help="Image of the split whose feature maps to show \\[default: 0]."),
    image: Optional[str] = typer.Option(None, "--image", metavar="FILE", help="Show the feature maps of your own digit image instead (prepared as in predict)."),
    method: Optional[str] = typer.Option(None, "--method", help="Attribution method for saliency: integrated-gradients, saliency, gradient-shap or occlusion \\[default: integrated-gradients]."),
    data_dir: options.DataDir = None,
    runs_dir: options.RunsDir = None,
    checkpoint: options.OldCheckpoint = None,
    ignore_data_mismatch: options.IgnoreDataMismatch = False,
) -> None:
    """Plot a run as PNGs: learning curves, confusion matrix, conv filters, feature maps, mistakes, samples, attributions, layer statistics.

    Writes into RUN/plots, replacing plots of the same name, or into a --out folder, never over a file; prints each path.
    """
    from pathlib import Path

    from mnistctl.console import err, literal, printable, warn
    from mnistctl.console import out as console
    from mnistctl.errors import RunError, UsageError
    from mnistctl.reading.visualize import Options, Plots, expand, refuse_unused, unavailable
    from mnistctl.runs import resolve_checkpoint

    given = {"split": split, "layer": layer, "index": index, "image": image, "method": method}
    refuse_unused(expand(what), given)  # bad input fails before the run is looked up
    options.output_folder(out, "--out")
    target, which = resolve_checkpoint(run, options.weights(which, checkpoint), runs_dir)
    kinds = expand(what, target, which)
    skipped: dict[str, list[str]] = {}  # why: the kinds "all" left out for it; a run without layer statistics is the usual
    for kind in (k for k in expand(what) if k not in kinds and k != "layer-stats"):
        skipped.setdefault(unavailable(kind, target, which), []).append(kind)
    if not kinds:
        raise RunError(f"nothing to plot: {'; '.join(skipped)}", "train the run further, or choose other weights with --weights")
    dataset = target.dataset(data_dir, ignore_data_mismatch) if data_dir or ignore_data_mismatch else None
    plots = Plots(target, Options(which=which, **{k: v for k, v in given.items() if v is not None}), dataset)
    if out is not None and (taken := plots.taken(kinds, Path(out))):
        raise UsageError(f"--out {out} already holds {', '.join(taken)}", "choose another folder, or move them away first")
    with err.status(f"plotting {', '.join(kinds)} for {literal(target.name)}"):
        paths = plots.make(kinds, Path(out) if out else target.plots_dir, replace=out is None)
    for why, left_out in skipped.items():
        warn(f"skipped {', '.join(left_out)}: {why}")
    for path in paths:
        console.print(printable(str(path)), soft_wrap=True, markup=False)
