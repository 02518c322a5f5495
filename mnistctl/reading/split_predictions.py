"""Per-sample predictions of a run on a split: computed once, saved in reports/, shared by eval and compare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistctl.errors import RunError, UsageError
from mnistctl.runs import Run, checkpoint

SPLITS = ("test", "val")


def path(run: Run, split: str) -> Path:
    return run.report_path(f"predictions-{split}.safetensors")


def split_data(run: Run, split: str, dataset=None):
    """uint8 images and labels of the run's ``test`` or ``val`` split."""
    from mnistctl import data

    if split not in SPLITS:
        raise UsageError(f"unknown split '{split}'", "use test or val")
    config = run.config
    dataset = dataset or run.dataset()
    if split == "test":
        return dataset.test_images, dataset.test_labels
    if not config.get("val_split"):
        raise UsageError(f"run {run.name} was trained without a validation split", "use --split test")
    _, val_idx = data.run_split(dataset.n_train, config)
    return dataset.train_images[val_idx], dataset.train_labels[val_idx]


def compute(run: Run, split: str = "test", which: str = "best", dataset=None, weights: checkpoint.Loaded | None = None):
    """Probabilities (N, classes) and targets (N,) of the run's ``which`` weights (as ``weights`` if already read) on ``split``."""
    from mnistctl.models import load_model, predict_proba

    images, labels = split_data(run, split, dataset)
    mean, std = run.normalization
    model = load_model(run, which, weights.tensors if weights is not None else None)
    probs = predict_proba(model, images, mean, std)
    require_finite(probs.numpy(), f"run {run.name} ({which} weights)")
    return probs, labels


def require_finite(probs, model: str = "the model") -> None:
    """Probabilities with NaN or infinity come from damaged weights: refused before they are counted, compared or saved."""
    import numpy as np

    if not np.isfinite(probs).all():
        raise RunError(f"{model} gives probabilities that are not numbers (NaN or infinite)", "its weights are damaged: use other weights, or train again")


def save(run: Run, split: str, which: str, probs, targets, dataset=None, digest: str | None = None) -> Path:
    """Keep predictions in reports/, with the SHA-256 of the weights' bytes they were computed from."""
    target = path(run, split)
    checkpoint.save(target, {"probs": probs.float(), "targets": targets.long()}, _meta(run, split, which, dataset, digest))
    return target


def _meta(run: Run, split: str, which: str, dataset, digest: str | None) -> dict:
    """What saved predictions are of: the split, the checkpoint, the digest of its weights and the data's checksums
    (the run's own unless ``dataset``)."""
    data = dataset.md5 if dataset is not None else run.recorded_data.get("md5")
    return {"split": split, "checkpoint": which, "weights_sha256": digest, "data": data}


@dataclass
class Predictions:
    """A run's predictions on a split and the metadata of the weights that made them (their epoch)."""

    probs: Any
    targets: Any
    weights_meta: Any


_unkept_warned = False


def load_or_compute(run: Run, split: str = "test", which: str = "best", dataset=None):
    """Probabilities and targets of the run's ``which`` weights on ``split``, as :func:`predictions`."""
    result = predictions(run, split, which, dataset)
    return result.probs, result.targets


def predictions(run: Run, split: str = "test", which: str = "best", dataset=None) -> Predictions:
    """Saved predictions when they were computed from exactly the weights on disk (same SHA-256) and the same
    data; else computed from the bytes read and kept in reports/ (from memory, with a warning, if they cannot be)."""
    from mnistctl.console import warn

    weights = checkpoint.read(run.weights(which))  # one read: the digest, the epoch and the model all come from it
    target = path(run, split)
    if target.is_file():
        try:
            tensors, meta = checkpoint.load(target)
        except RunError:
            tensors, meta = {}, None
            warn(f"saved predictions in {target} are unreadable; computing them again")
        if meta == _meta(run, split, which, dataset, weights.digest):
            probs, targets = tensors.get("probs"), tensors.get("targets")
            if well_formed(probs, targets):
                return Predictions(probs, targets, weights.meta)
            warn(f"saved predictions in {target} are damaged (not N x classes finite probabilities with N targets); computing them again")
    probs, targets = compute(run, split, which, dataset, weights)
    try:
        save(run, split, which, probs, targets, dataset, weights.digest)
    except OSError as exc:  # a read-only, full or forbidden reports/: the predictions are still good for this command
        global _unkept_warned
        if not _unkept_warned:
            _unkept_warned = True
            why = exc.strerror or type(exc).__name__
            warn(f"predictions could not be kept in {target.parent} ({why}); using them from memory, computed again next time")
    return Predictions(probs, targets, weights.meta)


def well_formed(probs, targets) -> bool:
    return (
        probs is not None and targets is not None and probs.ndim == 2 and targets.ndim == 1
        and len(probs) == len(targets) > 0 and probs.shape[1] > 0 and probs.is_floating_point() and not targets.is_floating_point()
        and bool(probs.isfinite().all())
    )
