"""Test-time augmentation for finished runs: each model's softmax averaged over shifted or rotated views.

Prints, per view set, the runs' mean validation loss and total validation errors (the figures a
choice may use), then the test accuracy of their ensemble (reported only). Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/tta.py RUN [RUN ...] [--runs-dir runs]
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from mnistctl.data import normalize
from mnistctl.models import load_model, loss_and_accuracy
from mnistctl.reading.split_predictions import split_data
from mnistctl.runs import resolve

SHIFTS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
VIEW_SETS = {
    "none": ["id"],
    "shift4": ["id", "x-1", "x1", "y-1", "y1"],
    "shift8": ["id", *(f"s{dx},{dy}" for dx, dy in SHIFTS)],
    "rot6": ["id", "r-6", "r6"],
    "shift4+rot6": ["id", "x-1", "x1", "y-1", "y1", "r-6", "r6"],
}


def shifted(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    padded = F.pad(x, (1, 1, 1, 1), value=float(x.amin()))
    return padded[..., 1 + dy : 29 + dy, 1 + dx : 29 + dx]


def rotated(x: torch.Tensor, degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]).expand(len(x), 2, 3)
    background = x.amin()
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, align_corners=False) + background


VIEWS = {
    "id": lambda x: x,
    **{f"s{dx},{dy}": (lambda dx, dy: lambda x: shifted(x, dx, dy))(dx, dy) for dx, dy in SHIFTS},
    "x-1": lambda x: shifted(x, -1, 0), "x1": lambda x: shifted(x, 1, 0),
    "y-1": lambda x: shifted(x, 0, -1), "y1": lambda x: shifted(x, 0, 1),
    "r-6": lambda x: rotated(x, -6), "r6": lambda x: rotated(x, 6),
}


def view_probs(run, split: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Softmax of the run's best weights on every view of the split's images."""
    model = load_model(run, "best")
    images, labels = split_data(run, split)
    mean, std = run.normalization
    fmt = torch.channels_last if run.config.get("channels_last") else torch.contiguous_format
    probs = {}
    with torch.inference_mode():
        for name, view in VIEWS.items():
            chunks = [torch.softmax(model(view(normalize(images[s : s + 256], mean, std)).contiguous(memory_format=fmt)).float(), 1)
                      for s in range(0, len(images), 256)]
            probs[name] = torch.cat(chunks)
    return probs, labels


def averaged(probs: dict[str, torch.Tensor], views: list[str]) -> torch.Tensor:
    return torch.stack([probs[v] for v in views]).mean(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished runs with a validation split")
    parser.add_argument("--runs-dir", default=None)
    args = parser.parse_args()
    runs = [resolve(ref, args.runs_dir) for ref in args.runs]
    val = [view_probs(run, "val") for run in runs]
    test = [view_probs(run, "test") for run in runs]
    print(f"{'views':12s} {'mean val loss':>14s} {'val errors':>11s}   per run              ensemble test acc")
    for name, views in VIEW_SETS.items():
        scores = [loss_and_accuracy(averaged(p, views), labels) for p, labels in val]
        errors = [round((1 - acc) * len(labels)) for (_, acc), (_, labels) in zip(scores, val)]
        mean_loss = sum(loss for loss, _ in scores) / len(scores)
        _, ensemble_acc = loss_and_accuracy(torch.stack([averaged(p, views) for p, _ in test]).mean(0), test[0][1])
        print(f"{name:12s} {mean_loss:14.5f} {sum(errors):11d}   {errors!s:20s} {ensemble_acc:.2%}")


if __name__ == "__main__":
    main()
