"""Per-sample predictions of a run on a split: computed once, saved in reports/, shared by eval and compare."""

from __future__ import annotations

from pathlib import Path

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


def compute(run: Run, split: str = "test", which: str = "best", dataset=None):
    """Probabilities (N, classes) and targets (N,) of the run's ``which`` weights on ``split``."""
    from mnistctl.models import load_model, predict_proba

    images, labels = split_data(run, split, dataset)
    mean, std = run.normalization
    probs = predict_proba(load_model(run, which), images, mean, std)
    require_finite(probs.numpy(), f"run {run.name} ({which} weights)")
    return probs, labels


def require_finite(probs, model: str = "the model") -> None:
    """Probabilities with NaN or infinity come from damaged weights: refused before they are counted, compared or saved."""
    import numpy as np

    if not np.isfinite(probs).all():
        raise RunError(f"{model} gives probabilities that are not numbers (NaN or infinite)", "its weights are damaged: use other weights, or train again")


def save(run: Run, split: str, which: str, probs, targets, dataset=None) -> Path:
    target = path(run, split)
    checkpoint.save(target, {"probs": probs.float(), "targets": targets.long()}, _meta(run, split, which, dataset))
    return target


def _meta(run: Run, split: str, which: str, dataset) -> dict:
    """What saved predictions are of: the split, the checkpoint and the data's checksums (the run's own unless ``dataset``)."""
    return {"split": split, "checkpoint": which, "data": dataset.md5 if dataset is not None else run.recorded_data.get("md5")}


def load_or_compute(run: Run, split: str = "test", which: str = "best", dataset=None):
    """Saved predictions when they match the checkpoint and the data and are newer than the weights; else computed and saved."""
    from mnistctl.console import warn

    target = path(run, split)
    if target.is_file() and target.stat().st_mtime >= run.weights(which).stat().st_mtime:
        try:
            tensors, meta = checkpoint.load(target)
        except RunError:
            tensors, meta = {}, None
            warn(f"saved predictions in {target} are unreadable; computing them again")
        if meta == _meta(run, split, which, dataset):
            probs, targets = tensors.get("probs"), tensors.get("targets")
            if well_formed(probs, targets):
                return probs, targets
            warn(f"saved predictions in {target} are damaged (not N x classes finite probabilities with N targets); computing them again")
    probs, targets = compute(run, split, which, dataset)
    save(run, split, which, probs, targets, dataset)
    return probs, targets


def well_formed(probs, targets) -> bool:
    return (
        probs is not None and targets is not None and probs.ndim == 2 and targets.ndim == 1
        and len(probs) == len(targets) > 0 and probs.shape[1] > 0 and probs.is_floating_point() and not targets.is_floating_point()
        and bool(probs.isfinite().all())
    )
