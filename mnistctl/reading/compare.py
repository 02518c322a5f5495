"""Runs side by side: one row per run, McNemar's exact test per pair, the ensemble of their probabilities."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from mnistctl import runs
from mnistctl.errors import MnistctlError, NotFoundError, RunError, UsageError
from mnistctl.reading.evaluate import kept_test
from mnistctl.registry import format_value, suggest
from mnistctl.runs import Kind, Run, Status

SIGNIFICANCE = 0.05
CLASSES = 10  # a run's predictions hold one probability for each digit


@dataclass(frozen=True)
class Column:
    """A table column; ``better`` is ``max`` or ``min`` when the column has a best value."""

    key: str
    header: str
    better: str | None = None


COLUMNS = (
    Column("name", "run"),
    Column("status", "status"),
    Column("arch", "architecture"),
    Column("params", "params", "min"),
    Column("optimizer", "optimizer"),
    Column("lr", "lr"),
    Column("weight_decay", "weight decay"),
    Column("batch_size", "batch size"),
    Column("scheduler", "scheduler"),
    Column("augment", "augment"),
    Column("epochs", "epochs"),
    Column("best_epoch", "best epoch"),
    Column("val_acc", "best val acc", "max"),
    Column("test_acc", "test acc", "max"),
    Column("test_loss", "test loss", "min"),
    Column("time", "train time", "min"),
    Column("throughput", "img/s", "max"),
)
COLUMN = {c.key: c for c in COLUMNS}
DEFAULT_SORT = ("test_acc", "val_acc")


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    runs: list[Run]
    pairs: list[dict[str, Any]] = field(default_factory=list)
    ensemble: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.rows, "pairs": self.pairs, "ensemble": self.ensemble, "warnings": self.warnings}


def compare(
    refs: list[str], root: str | Path | None = None, all_runs: bool = False, sort: str | None = None, stats: bool = True,
    ignore_data_mismatch: bool = False, data_dir: str | Path | None = None,
) -> Comparison:
    """Rows of the runs named by ``refs`` (or every run in the folder with ``all_runs``), sorted best first."""
    warnings: list[str] = []
    found = collect(refs, root, all_runs, warnings)
    described = []
    for run in found:
        try:
            described.append((describe(run, warnings), run))
        except MnistctlError as exc:
            warnings.append(f"skipped {run.name}: {exc}")
    if not described:
        raise_unreadable(found, warnings)
    _tell_apart([row for row, _ in described], [run for _, run in described])
    order = sort_order([row for row, _ in described], sort)
    rows, kept = [described[i][0] for i in order], [described[i][1] for i in order]
    result = Comparison(rows, kept, warnings=warnings)
    if stats:
        add_statistics(result, ignore_data_mismatch, data_dir)
    return result


def raise_unreadable(found: list[Run], warnings: list[str]) -> NoReturn:
    """Every run found is damaged: the warnings say why, then one RunError naming where they are."""
    from mnistctl.console import warn

    for message in warnings:
        warn(message)
    folders = {run.path.parent for run in found}
    where = f"the runs in {folders.pop()}" if len(folders) == 1 else "these runs"
    raise RunError("no run could be read", f"the warnings above say why; check {where}")


def _tell_apart(rows: list[dict[str, Any]], found: list[Run]) -> None:
    """Runs in folders of the same name, from different places, are named by their paths."""
    for row, name in zip(rows, runs.shown_names(found)):
        row["name"] = name


def collect(refs: list[str], root: str | Path | None, all_runs: bool, warnings: list[str]) -> list[Run]:
    """The runs to compare; a named run that does not exist is a NotFoundError, one named twice is compared once."""
    if all_runs:
        if len(refs) > 1:
            raise UsageError("--all takes at most one runs folder", "name runs without --all, or pass one folder: mnistctl compare --all runs")
        folder = runs.runs_dir(refs[0] if refs else root)
        if not folder.is_dir():
            raise NotFoundError(f"no runs folder {folder}", "train a run first, or pass the folder: mnistctl compare --all DIR")
        found = [Run(p) for p in sorted(folder.iterdir()) if runs.is_run_dir(p)]
        if not found:
            raise NotFoundError(f"no runs in {folder}", runs.first_run_hint(refs[0] if refs else root))
        return found
    if not refs:
        raise UsageError("nothing to compare", "name the runs, e.g. mnistctl compare lenet simplecnn, or use --all")
    found, seen = [], {}
    for ref in refs:
        run = runs.resolve(ref, root)  # a name typed wrong is bad input, not a damaged run
        if run.path.resolve() in seen:
            warnings.append(f"{ref} is the run {seen[run.path.resolve()]} again; it is compared once")
            continue
        seen[run.path.resolve()] = ref
        found.append(run)
    return found


def describe(run: Run, warnings: list[str] | None = None) -> dict[str, Any]:
    """One table row; a run still training (or that never tested) has no test cells. A summary value that
    should be a number but is not is left blank, with a warning added to ``warnings``."""
    config = run.config
    if not isinstance(config.get("arch"), str):
        raise RunError(f"{run.config_path} names no architecture", "the run directory is damaged")
    status = run.status()
    summary, wrong = numbers_only(run) if status.ended else ({}, [])
    epochs = run.epochs()
    test = (run.last(Kind.TEST) or {}) if status.ended else {}
    best = best_epoch(epochs)
    row = {
        "name": run.name,
        "path": str(run.path),
        "status": status,
        "arch": arch_label(config),
        "params": summary.get("params") or count_params(config),
        "optimizer": optimizer_label(config),
        "scheduler": scheduler_label(config),
        "augment": augment_label(config.get("augment")),
        **settings(config),
        "epochs": summary.get("epochs_run", len(epochs)),
        "best_epoch": summary.get("best_epoch", best.get("epoch")),
        "val_acc": summary.get("best_val_acc", best.get("val_acc")),
        "test_acc": summary.get("test_acc", test.get("test_acc")),
        "test_loss": summary.get("test_loss", test.get("test_loss")),
        "time": summary.get("wall_time", epochs[-1].get("elapsed") if epochs else None),
        "throughput": summary.get("images_per_s", throughput(epochs)),
    }
    if row["test_acc"] is None and status.completed and (kept := kept_test(run)):  # stopped in the test pass, then evaluated
        row["test_acc"], row["test_loss"] = kept["test_acc"], kept["test_loss"]
    if warnings is not None and status.ended and (why := run.summary_problem):
        warnings.append(f"{why}; shown: the values in {run.metrics_path.name}")
    if wrong and warnings is not None:
        warnings.append(not_numbers(run, wrong, row))
    return row


def best_epoch(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch event of the best checkpoint: the last one marked best (the epoch ``--monitor`` picked, the last one
    without validation); in a log without those marks, the highest validation accuracy."""
    marked = [e for e in epochs if e.get("best") is True]
    return marked[-1] if marked else max(epochs, key=lambda e: e.get("val_acc") or 0, default={})


def throughput(epochs: list[dict[str, Any]]) -> float | None:
    """Images trained per second of the run's time so far, validation included, as its summary will count them."""
    done = [(number(e.get("images_per_s")), number(e.get("epoch_time"))) for e in epochs]
    images = sum(rate * seconds for rate, seconds in done if rate and seconds)
    elapsed = number(epochs[-1].get("elapsed")) if epochs else None
    return images / elapsed if images and elapsed else None


SUMMARY_NUMBERS = ("params", "epochs_run", "best_epoch", "best_val_acc", "test_acc", "test_loss", "wall_time", "images_per_s")
FRACTIONS = ("best_val_acc", "test_acc")


def number(value: Any) -> int | float | None:
    """``value`` when it is a finite number (not a bool), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def value_problem(key: str, value: Any) -> str | None:
    """Why a value of summary.json cannot be what ``key`` says (all its numbers are counts, times or accuracies), or None."""
    if value is None:
        return None
    if number(value) is None:
        return "not a number"
    if key in FRACTIONS and not 0 <= value <= 1:
        return "not from 0 to 1"
    return "negative" if value < 0 else None


def summary_value(run: Run, key: str) -> int | float | None:
    """One number of the run's summary, None when it is missing or damaged."""
    value = (run.summary or {}).get(key)
    return None if value_problem(key, value) else value


def numbers_only(run: Run) -> tuple[dict[str, Any], list[str]]:
    """The run's summary without the values that should be numbers in range but are not (a damaged or hand-edited file),
    and the keys of those values."""
    summary = run.summary or {}
    wrong = [key for key in SUMMARY_NUMBERS if value_problem(key, summary.get(key))]
    return {key: value for key, value in summary.items() if key not in wrong}, wrong


ROW_KEY = {"epochs_run": "epochs", "best_val_acc": "val_acc", "wall_time": "time", "images_per_s": "throughput"}


def not_numbers(run: Run, wrong: list[str], row: dict[str, Any]) -> str:
    """The warning for summary values that are not numbers in range, saying where each value shown instead comes from."""
    summary = run.summary or {}
    held = ", ".join(f"{key}={summary[key]!r} ({value_problem(key, summary[key])})" for key in wrong)
    found = [key for key in wrong if row[ROW_KEY.get(key, key)] is not None]
    shown = [f"{key} from {'the architecture' if key == 'params' else run.metrics_path.name}" for key in found]
    if missing := [key for key in wrong if key not in found]:
        shown.append(f"{' and '.join(missing)} as missing")
    return f"{run.summary_path} holds {held}; shown: {'; '.join(shown)}"


def study_runs(name: str, root: str | Path | None = None, top: int = 5) -> list[str]:
    """Paths of the runs a sweep trained for study ``name``, best validation accuracy first, the ``top`` ones (0: all)."""
    found = []
    for run in runs.list_runs(root):
        try:
            study = run.config.get("study") or {}
        except MnistctlError:
            continue
        if study.get("name") == name:
            val_acc = summary_value(run, "best_val_acc") or best_epoch(run.epochs()).get("val_acc") or 0
            found.append((val_acc, run))
    if not found:
        raise NotFoundError(f"no runs of study '{name}' in {runs.runs_dir(root)}", "check --runs-dir, or start it with: mnistctl sweep --study NAME --space FILE")
    found.sort(key=lambda pair: -pair[0])
    return [str(run.path) for _, run in found[: top or None]]


def count_params(config: dict[str, Any]) -> int | None:
    """From the registry at default options; otherwise by building the model. None for an unknown architecture."""
    from mnistctl.plugins import archs
    from mnistctl.registry import parse_options

    try:
        spec = archs().get(config["arch"])
        options = parse_options(spec, config.get("arch_options") or {})
        if spec.params is not None and all(spec.defaults[k] == v for k, v in options.items()):
            return spec.params
        return sum(p.numel() for p in spec.build(**options).parameters())
    except MnistctlError:  # unknown, or options that cannot build it (a damaged config.json)
        return None


def arch_label(config: dict[str, Any]) -> str:
    """The architecture, followed by the options that differ from its defaults."""
    return _label(config, "arch", "archs")


def scheduler_label(config: dict[str, Any]) -> str:
    """The scheduler, followed by the options that differ from its defaults."""
    return _label(config, "scheduler", "schedulers") if config.get("scheduler") else "none"


def _label(config: dict[str, Any], setting: str, kind: str) -> str:
    """The spec a config names in ``setting``, followed by the options that differ from its defaults (all, when it is not registered)."""
    from mnistctl.plugins import registry

    options = config.get(f"{setting}_options")
    options = options if isinstance(options, dict) else {}
    name = str(config[setting])
    defaults = registry(kind).get(name).defaults if name in registry(kind) else {}
    changed = [f"{k}={_shown(v)}" for k, v in options.items() if format_value(defaults.get(k, object())) != format_value(v)]
    return " ".join([name, *changed])


def _shown(value: Any) -> str:
    """An option's value in a label: a float in six significant digits, as the learning rate is (a sweep draws 0.3130054492...)."""
    return f"{value:g}" if isinstance(value, float) else format_value(value)


def optimizer_label(config: dict[str, Any]) -> str:
    name = config.get("optimizer") or "?"
    parts = [name] + ([f"lr={config['lr']:g}"] if isinstance(config.get("lr"), (int, float)) else [])
    if config.get("weight_decay"):
        parts.append(f"wd={config['weight_decay']:g}")
    if isinstance(config.get("ema"), float):
        parts.append(f"ema={config['ema']:g}")
    return " ".join(parts)


NUMBER_SETTINGS = ("lr", "weight_decay", "ema", "batch_size")
OPTION_SETTINGS = ("arch_options", "optimizer_options", "scheduler_options")


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """What the labels hold as text, as values for --json: the learning rate, weight decay, weight average's decay and batch
    size as numbers (None when unset or not a number); the options and the augmentation as the run's config.json has them."""
    tables = {**{key: config.get(key) for key in OPTION_SETTINGS}, "augment_options": config.get("augment")}
    return {**{key: number(config.get(key)) for key in NUMBER_SETTINGS}, **{key: t if isinstance(t, dict) else {} for key, t in tables.items()}}


def augment_label(augment: dict[str, Any] | None) -> str:
    if not augment or not any(augment.values()):
        return "none"
    parts = []
    if augment.get("rotation"):
        parts.append(f"rot {augment['rotation']:g}°")
    if augment.get("shift"):
        parts.append(f"shift {augment['shift']:g}")
    if augment.get("zoom"):
        parts.append(f"zoom {augment['zoom']:g}")
    if augment.get("elastic"):
        parts.append(f"elastic {augment['elastic']:g}")
    return " ".join(parts)



def sort_order(rows: list[dict[str, Any]], key: str | None = None) -> list[int]:
    """Row indices, best first by ``key`` (default: test accuracy, then validation accuracy); blanks last."""
    keys = list(DEFAULT_SORT) if key is None else [column_key(key), *DEFAULT_SORT]
    order = list(range(len(rows)))
    for k in reversed(keys):
        descending = COLUMN[k].better == "max"
        present = [i for i in order if rows[i][k] is not None]
        blank = [i for i in order if rows[i][k] is None]
        order = sorted(present, key=lambda i: rows[i][k], reverse=descending) + blank
    return order


def column_key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    aliases = {c.header.replace(" ", "_"): c.key for c in COLUMNS}
    key = aliases.get(key, key)
    if key not in COLUMN:
        raise UsageError(f"unknown column '{name}'", suggest(key, list(COLUMN)))
    return key


COMPLETED_ONLY = frozenset({"val_acc", "test_acc", "test_loss", "time"})
"""Columns whose best is taken among completed runs only: a run that failed, was interrupted or is still training has a
shorter time and a partial accuracy. Parameters and throughput do not depend on how a run ended."""


def completed(row: dict[str, Any]) -> bool:
    """Whether the row's run trained to the end (or stopped early by choice); a row without a status counts as completed."""
    return "status" not in row or Status(row["status"]).completed


def best_values(rows: list[dict[str, Any]], columns: tuple[Column, ...] = COLUMNS) -> dict[str, Any]:
    """The best value of each column that has one, when at least two rows have a value to compare; in the columns of
    ``COMPLETED_ONLY``, among the runs that completed."""
    best = {}
    for column in columns:
        values = [r[column.key] for r in rows if r[column.key] is not None and (column.key not in COMPLETED_ONLY or completed(r))]
        if column.better and len(values) >= 2:
            best[column.key] = max(values) if column.better == "max" else min(values)
    return best


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the smaller discordant count under Binomial(b + c, 1/2)."""
    n = b + c
    term, tail = 1, 0
    for k in range(min(b, c) + 1):
        tail += term
        term = term * (n - k) // (k + 1)
    return min(1.0, 2 * tail / 2**n)  # exact big-integer division; below 1e-308 it is 0.0


def holm(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-values: each pair's test holds its family of comparisons to the significance level, so
    comparing many runs does not find differences by chance."""
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, i in enumerate(sorted(range(m), key=p_values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def discordant(pred_a, pred_b, targets) -> tuple[int, int]:
    """(b, c): samples only A gets right, and samples only B gets right."""
    right_a, right_b = pred_a == targets, pred_b == targets
    return int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())


def add_statistics(result: Comparison, ignore_data_mismatch: bool = False, data_dir: str | Path | None = None) -> None:
    """Pairwise McNemar tests and the ensemble, over the runs that have a test result and the same test set;
    MNIST from ``data_dir`` when given, else where each run finds it."""
    import torch

    from mnistctl.models import loss_and_accuracy
    from mnistctl.reading.split_predictions import load_or_compute

    tested: list[tuple[str, Any]] = []
    targets = None
    for row, run in zip(result.rows, result.runs):
        if row["test_acc"] is None:
            continue
        try:
            dataset = run.dataset(data_dir, ignore_data_mismatch) if data_dir or ignore_data_mismatch else None
            probs, labels = load_or_compute(run, "test", "best", dataset)
        except MnistctlError as exc:
            result.warnings.append(f"{run.name} is left out of the p-values and ensemble: {exc}")
            continue
        if tuple(probs.shape) != (len(labels), CLASSES):
            result.warnings.append(
                f"{run.name} has predictions of shape {tuple(probs.shape)}, not {(len(labels), CLASSES)} (a probability for each digit"
                " of each test image); it is left out of the p-values and ensemble"
            )
            continue
        if targets is None:
            targets = labels
        elif not torch.equal(labels, targets):
            result.warnings.append(f"{run.name} was tested on a different test set; it is left out of the p-values and ensemble")
            continue
        tested.append((row["name"], probs))
    preds = [(name, probs.argmax(1)) for name, probs in tested]
    for i, (name_a, pred_a) in enumerate(preds):
        for name_b, pred_b in preds[i + 1 :]:
            b, c = discordant(pred_a, pred_b, targets)
            result.pairs.append({"run_a": name_a, "run_b": name_b, "b": b, "c": c, "p_value": mcnemar_exact(b, c)})
    for pair, adjusted in zip(result.pairs, holm([pair["p_value"] for pair in result.pairs])):
        pair.update(p_holm=adjusted, significant=adjusted < SIGNIFICANCE)
    if len(tested) >= 2:
        loss, acc = loss_and_accuracy(torch.stack([p for _, p in tested]).mean(0), targets)
        result.ensemble = {"runs": [name for name, _ in tested], "test_acc": acc, "test_loss": loss}


def plot(runs_: list[Run], path: str | Path) -> Path:
    """One PNG: validation accuracy and loss per epoch of each run, the best epoch marked."""
    from mnistctl.reading.figures import save
    from mnistctl.reading.figures.training import compare_figure

    curves = [(_legend_label(run), [e for e in run.epochs() if e.get("val_acc") is not None]) for run in runs_]
    if not any(epochs for _, epochs in curves):  # the figure names the runs without a curve
        raise RunError("none of these runs has finished an epoch with validation", "plot again once they have")
    return save(compare_figure(curves), path, replace=False)


def _legend_label(run: Run) -> str:
    """The run's name, with its test accuracy when it has one, else its status."""
    status = run.status()
    test_acc = summary_value(run, "test_acc") if status.ended else None
    if test_acc is None and status.completed and (kept := kept_test(run)):
        test_acc = kept["test_acc"]
    return f"{run.name} (test {100 * test_acc:.2f}%)" if test_acc is not None else f"{run.name} ({status.label})"
