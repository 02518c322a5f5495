"""Figures of predictions and data: the confusion matrix, the wrong predictions, and samples."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mnistctl.reading.figures.style import (
    DIGIT_CMAP,
    ERROR,
    ExactPercent,
    TEST,
    TRAIN,
    VAL,
    bare,
    styled,
)

MAX_WRONG = 40

@styled
def confusion_figure(title: str, subtitle: str, matrix: np.ndarray) -> Figure:
    n = len(matrix)
    figure = Figure(figsize=(15, 6.6), layout="constrained")
    figure.suptitle(f"{title}\n{subtitle}")
    counts_ax, share_ax = figure.subplots(1, 2)
    masked = np.ma.masked_equal(matrix, 0)
    image = counts_ax.imshow(masked, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(matrix.max(), 2)))
    figure.colorbar(image, ax=counts_ax, label="images (log scale)", shrink=0.85)
    for (t, p), count in np.ndenumerate(matrix):
        dark = count > 0 and np.log(count) > 0.6 * np.log(max(matrix.max(), 2))
        counts_ax.text(p, t, str(count), ha="center", va="center", fontsize=10, color="white" if dark else ("black" if count else "#bbbbbb"))
    counts_ax.set_title("Counts")

    rows = matrix.sum(axis=1, keepdims=True)
    share = 100 * matrix / np.maximum(rows, 1)
    errors = np.ma.masked_where(np.eye(n, dtype=bool) | (matrix == 0), share)
    top = max(float(errors.max()) if errors.count() else 1.0, 1.0)
    image = share_ax.imshow(errors, cmap="Reds", vmin=0, vmax=top)
    share_ax.imshow(np.ma.masked_where(~np.eye(n, dtype=bool), share), cmap="Greens", vmin=0, vmax=100, alpha=0.6)
    figure.colorbar(image, ax=share_ax, label="% of the true class (off-diagonal errors)", shrink=0.85,
                    ticks=MaxNLocator(nbins=8, steps=[1, 2, 5, 10]), format=ExactPercent())
    for (t, p), value in np.ndenumerate(share):
        if t == p:  # larger rather than bold: small bold digits read as a serif face beside the others
            share_ax.text(p, t, f"{value:.1f}", ha="center", va="center", fontsize=10.5)
        elif matrix[t, p]:
            share_ax.text(p, t, f"{value:.1f}", ha="center", va="center", fontsize=9.5, color="white" if value > 0.6 * top else "black")
    share_ax.set_title("Row-normalised: % of each true class (diagonal = recall)")
    for ax in (counts_ax, share_ax):
        ax.set(xlabel="predicted class", ylabel="true class", xticks=range(n), yticks=range(n))
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    return figure


@styled
def wrong_figure(title: str, images: np.ndarray, probs: np.ndarray, targets: np.ndarray, limit: int = MAX_WRONG) -> Figure:
    predicted = probs.argmax(1)
    wrong = np.flatnonzero(predicted != targets)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:limit]
    cols = 8
    rows = max(1, -(-len(order) // cols))
    figure = Figure(figsize=(cols * 1.45, rows * 1.75 + 1.0), layout="constrained")
    figure.suptitle(f"{title}\n{len(wrong):,} of {len(targets):,} wrong; each tile: true → predicted, confidence, image index", fontsize=13)
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    for ax, i in zip(axes, order):
        ax.imshow(images[i], cmap=DIGIT_CMAP, vmin=0, vmax=255)
        ax.set_title(f"{targets[i]} → {predicted[i]}  {probs[i, predicted[i]]:.0%}", fontsize=11, color=ERROR, pad=3)
        ax.set_xlabel(f"#{i}", fontsize=8.5, color="#666666", labelpad=1)
    for ax in axes:
        bare(ax)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    if not len(order):
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=14)
        axes[0].axis("off")
    return figure


@styled
def samples_figure(title: str, examples: list[np.ndarray], counts: dict[str, np.ndarray], augmented: list[np.ndarray] | None = None,
                   augmentation: str = "") -> Figure:
    """Examples of each class (and, for a run that augments, the same images as training draws them) beside the class shares."""
    classes = len(examples)
    figure = Figure(figsize=(22 if augmented else 16, 7), layout="constrained")
    figure.suptitle(title)
    *grids, bars = figure.subplots(1, 3 if augmented else 2, width_ratios=[1.35, 1.35, 1] if augmented else [1.35, 1])
    per_class = max((len(d) for d in examples), default=1)
    _digit_rows(grids[0], examples, f"first {per_class} training images of each class")
    if augmented:
        _digit_rows(grids[1], augmented, f"the same, augmented as in training ({augmentation})")
    height = 0.8 / len(counts)
    colours = {"train": TRAIN, "validation": VAL, "test": TEST}
    for k, (split, values) in enumerate(counts.items()):
        offset = (k - (len(counts) - 1) / 2) * height
        bars.barh(np.arange(classes) + offset, 100 * values / values.sum(), height, color=colours.get(split), label=f"{split} ({values.sum():,} images)")
    bars.axvline(100 / classes, color="grey", ls=":", lw=1.5, label="balanced")
    bars.set(title="class distribution", xlabel="share of the split", ylabel="class", yticks=range(classes))
    bars.xaxis.set_major_formatter(PercentFormatter(decimals=0))
    bars.invert_yaxis()
    bars.grid(axis="x", alpha=0.3)
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2)
    return figure


def _digit_rows(ax, examples: list[np.ndarray], title: str) -> None:
    """One row of 28x28 digits per class, labelled with the class."""
    gap, classes = 4, len(examples)
    per_class = max((len(d) for d in examples), default=1)
    mosaic = np.zeros((classes * (28 + gap) - gap, per_class * (28 + gap) - gap), dtype=np.uint8)
    for c, digits in enumerate(examples):
        for k, digit in enumerate(digits):
            mosaic[c * (28 + gap) : c * (28 + gap) + 28, k * (28 + gap) : k * (28 + gap) + 28] = digit
    ax.imshow(mosaic, cmap=DIGIT_CMAP, vmin=0, vmax=255)
    ax.set_title(title)
    ax.set_yticks([c * (28 + gap) + 14 for c in range(classes)], [str(c) for c in range(classes)], fontsize=15, fontweight="bold")
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
