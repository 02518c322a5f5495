"""Figures of attributions: which pixels pushed a model towards (red) or away from (blue) a class."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from mnistctl.reading.figures.style import ATTRIBUTION_CMAP, DIGIT_CMAP, bare, styled

INK_LEVEL = 96
SCALE_QUANTILE = 0.99
LEGEND_INCHES = 4.2  # the colour bar, wide enough for its three labels


def scale(maps: list[np.ndarray]) -> float:
    """A robust largest absolute attribution of one example: its few extreme pixels saturate instead of washing out the rest."""
    values = np.abs(np.concatenate([m.ravel() for m in maps])) if maps else np.zeros(1)
    values = values[values > 0]
    return float(np.quantile(values, SCALE_QUANTILE)) if len(values) else 1.0


@styled
def attributions_figure(title: str, reading: str, examples: list[tuple[np.ndarray, str, list[tuple[str, np.ndarray]]]], per_row: int = 3) -> Figure:
    """Examples of (uint8 image, caption, [(class label, attribution map)]) as cards: the digit, then one map per class.

    Each example is scaled on its own so red and blue compare within it; the digit's outline is drawn over every map.
    """
    width = 1 + max((len(maps) for _, _, maps in examples), default=1)
    cols = max(1, min(per_row, len(examples)))
    rows = max(1, -(-len(examples) // cols))
    inches = max(LEGEND_INCHES + 1, cols * (1.75 * width + 0.4))  # one narrow card still fits the legend's labels
    figure = Figure(figsize=(inches, rows * 2.25 + 1.6), layout="constrained")
    figure.suptitle(f"{title}\n{reading}", fontsize=13)
    grid, legend = figure.subfigures(2, 1, height_ratios=[rows * 2.25, 0.55])
    cards = np.atleast_1d(grid.subfigures(rows, cols, squeeze=False)).ravel()
    norm = TwoSlopeNorm(0, -1, 1)
    shown = None
    for card, (image, caption, maps) in zip(cards, examples):
        card.suptitle(caption, fontsize=11.5, fontweight="bold")
        axes = card.subplots(1, width)
        axes[0].imshow(image, cmap=DIGIT_CMAP, vmin=0, vmax=255)
        axes[0].set_title("input", fontsize=10.5)
        limit = scale([m for _, m in maps])
        for ax, (label, attribution) in zip(axes[1:], maps):
            shown = ax.imshow(np.clip(attribution / limit, -1, 1), cmap=ATTRIBUTION_CMAP, norm=norm)
            ax.contour(image, levels=[INK_LEVEL], colors="#3a3a3a", linewidths=0.7, alpha=0.8)
            ax.set_title(label, fontsize=10.5)
        for ax in axes:
            bare(ax)
        for ax in axes[1 + len(maps) :]:
            ax.set_visible(False)
    for card in cards[len(examples) :]:
        card.set_visible(False)
    if shown is not None:
        share = max(0.4, LEGEND_INCHES / inches)
        bar = legend.colorbar(shown, cax=legend.add_axes(((1 - share) / 2, 0.62, share, 0.22)), orientation="horizontal", ticks=[-1, 0, 1])
        bar.ax.set_xticklabels(["away from the class", "no effect", "towards the class"], fontsize=10)
        bar.ax.set_title("attribution, scaled per example (outline: the digit)", fontsize=10)
    return figure
