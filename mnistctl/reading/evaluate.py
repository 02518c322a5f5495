"""Metrics of a run on a split: accuracy, loss, per-class report, confusion matrix; saved in reports/."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

from mnistctl.console import loss_figure
from mnistctl.errors import MnistctlError
from mnistctl.fsutil import read_json, write_json, write_text
from mnistctl.reading import split_predictions
from mnistctl.runs import Run

TOP_CONFUSED = 5


def metrics(probs, targets) -> dict[str, Any]:
    """Accuracy, loss, sklearn's per-class report, the confusion matrix and the most-confused pairs."""
    import numpy as np
    from sklearn.metrics import classification_report, confusion_matrix

    from mnistctl.models import loss_and_accuracy

    loss, accuracy = loss_and_accuracy(probs, targets)
    classes = list(range(probs.shape[1]))
    y_true, y_pred = targets.numpy(), probs.argmax(1).numpy()
    report = classification_report(y_true, y_pred, labels=classes, output_dict=True, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    return {
        "n": len(y_true),
        "accuracy": accuracy,
        "loss": loss,
        "errors": int(len(y_true) - np.trace(matrix)),
        "per_class": [{"class": c, **_row(report[str(c)])} for c in classes],
        "macro_avg": _row(report["macro avg"]),
        "weighted_avg": _row(report["weighted avg"]),
        "confusion_matrix": matrix.tolist(),
        "most_confused": most_confused(matrix),
    }


def _row(entry: dict[str, float]) -> dict[str, float | int]:
    return {"precision": entry["precision"], "recall": entry["recall"], "f1": entry["f1-score"], "support": int(entry["support"])}


def most_confused(matrix, top: int = TOP_CONFUSED) -> list[dict[str, int]]:
    """The largest off-diagonal cells of a confusion matrix, most frequent first."""
    cells = [(int(matrix[t][p]), t, p) for t in range(len(matrix)) for p in range(len(matrix)) if t != p and matrix[t][p]]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [{"true": t, "predicted": p, "count": n} for n, t, p in cells[:top]]


def evaluate(run: Run, split: str = "test", which: str = "best", dataset=None) -> dict[str, Any]:
    """Evaluate the run's ``which`` weights on ``split``; per-sample predictions are saved for compare."""
    found = split_predictions.predictions(run, split, which, dataset)
    return {
        "run": run.name,
        "split": split,
        "checkpoint": which,
        "epoch": checkpoint_epoch(run, which, found.weights_meta),
        **({"step_in_epoch": step} if (step := steps_into_epoch(found.weights_meta)) else {}),
        **metrics(found.probs, found.targets),
        "predictions": str(split_predictions.path(run, split).relative_to(run.path)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def checkpoint_epoch(run: Run, which: str, meta: Any = None) -> int | None:
    """The epoch a checkpoint was saved at (0 for the initial weights): from ``meta``, the metadata of the very
    weights that were used, when it records one; else from the run's metrics."""
    if which == "initial":
        return 0
    epoch = meta.get("epoch") if isinstance(meta, dict) else None
    if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
        return epoch
    epoch = None
    for event in run.events("checkpoint"):
        if event.get("kind") == which:
            epoch = event.get("epoch")
    return epoch


def steps_into_epoch(meta: Any) -> int | None:
    """The steps of an unfinished epoch that weights saved by a stopped run have trained on."""
    step = meta.get("step_in_epoch") if isinstance(meta, dict) else None
    return step if type(step) is int and step > 0 else None


def kept_test(run: Run) -> dict[str, Any] | None:
    """The test result ``eval`` kept for the best weights, as a test event: what a run stopped in its final test pass
    has instead of its own. None when there is none, it is damaged, or the weights are newer than it."""
    path = report_paths(run, "test")[0]
    try:
        report = read_json(path)
        if path.stat().st_mtime < run.weights_path("best").stat().st_mtime:
            return None
    except (OSError, ValueError, RecursionError, MnistctlError):
        return None
    if not isinstance(report, dict) or report.get("split") != "test" or report.get("checkpoint") != "best":
        return None
    acc, loss, epoch = report.get("accuracy"), report.get("loss"), report.get("epoch")
    if not all(type(v) in (int, float) and math.isfinite(v) for v in (acc, loss)) or not 0 <= acc <= 1 or loss < 0:
        return None
    return {"event": "test", "checkpoint": "best", "epoch": epoch if type(epoch) is int else None, "test_acc": acc, "test_loss": loss}


def report_paths(run: Run, split: str, which: str = "best") -> tuple[Path, Path]:
    """reports/eval-<split>.json and .txt for the best weights; eval-<split>-<which> for others, so none overwrites them."""
    stem = f"eval-{split}" if which == "best" else f"eval-{split}-{which}"
    return run.report_path(f"{stem}.json"), run.report_path(f"{stem}.txt")


def save(run: Run, result: dict[str, Any]) -> tuple[Path, Path]:
    """Write the result's report as JSON and the same tables as plain text, each atomically."""
    json_path, text_path = report_paths(run, result["split"], result["checkpoint"])
    write_json(json_path, result)
    write_text(text_path, render_text(result))
    return json_path, text_path


def tables(result: dict[str, Any]) -> list:
    """Rich tables: summary, per-class report, confusion matrix, most-confused pairs."""
    from rich.markup import escape
    from rich.table import Table

    epoch = f" (epoch {result['epoch']})" if result.get("epoch") is not None else ""
    if result.get("step_in_epoch") and result.get("epoch") is not None:  # stopped mid-epoch: not the weights of the epoch before
        epoch = f" ({result['step_in_epoch']:,} steps into epoch {result['epoch'] + 1})"
    summary = Table(title=f"Evaluation of {escape(result['run'])}", title_justify="left")
    for name in ("split", "checkpoint", "images", "accuracy", "loss", "errors"):
        summary.add_column(name, justify="left" if name in ("split", "checkpoint") else "right")
    summary.add_row(
        result["split"], result["checkpoint"] + epoch, f"{result['n']:,}",
        f"[bold green]{result['accuracy']:.2%}[/]", loss_figure(result["loss"]), f"{result['errors']:,}",
    )

    report = Table(title="Per-class report", title_justify="left")
    report.add_column("class", style="bold cyan", justify="right")
    for name in ("precision", "recall", "f1", "support"):
        report.add_column(name, justify="right")
    worst = min(result["per_class"], key=lambda r: r["f1"])["class"]
    for row in result["per_class"]:
        style = "yellow" if row["class"] == worst else None
        report.add_row(str(row["class"]), *_cells(row), style=style)
    report.add_section()
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        report.add_row(label, *_cells(result[key]), style="bold")

    matrix = result["confusion_matrix"]
    confusion = Table(title="Confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    confusion.add_column("", style="bold cyan", justify="right")
    for c in range(len(matrix)):
        confusion.add_column(str(c), justify="right", header_style="bold cyan")
    for t, row in enumerate(matrix):
        confusion.add_row(str(t), *(_count(n, t == p) for p, n in enumerate(row)))

    pairs = Table(title=f"Most confused pairs (top {TOP_CONFUSED})", title_justify="left")
    for name in ("true", "predicted as", "count", "% of true class"):
        pairs.add_column(name, justify="right")
    supports = [r["support"] for r in result["per_class"]]
    for pair in result["most_confused"]:
        share = pair["count"] / supports[pair["true"]] if supports[pair["true"]] else 0.0
        pairs.add_row(str(pair["true"]), str(pair["predicted"]), str(pair["count"]), f"{share:.1%}")
    return [summary, report, confusion, pairs]


def _cells(row: dict[str, float | int]) -> list[str]:
    return [f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", f"{row['support']:,}"]


def _count(n: int, diagonal: bool) -> str:
    if diagonal:
        return f"[green]{n}[/]"
    return f"[red]{n}[/]" if n else "[dim]0[/]"


def render_text(result: dict[str, Any]) -> str:
    """The tables as plain text, for reports/eval-<split>.txt."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False, highlight=False)
    for table in tables(result):
        console.print(table)
        console.print()
    return buffer.getvalue()
