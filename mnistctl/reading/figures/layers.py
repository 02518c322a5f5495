"""Figures of a model's insides: conv filters and feature maps."""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from mnistctl.reading.figures.style import (
    ACTIVATION_CMAP,
    DIGIT_CMAP,
    ERROR,
    TEST,
    WEIGHTS_CMAP,
    bare,
    styled,
)

MAX_CHANNELS = 16

def mosaic(tiles: np.ndarray, cols: int, gap: tuple[int, int]) -> np.ndarray:
    """Tiles (n, h, w) in rows of ``cols``, separated by NaN gaps (rows, columns) that draw as background."""
    n, h, w = tiles.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap[0]) - gap[0], cols * (w + gap[1]) - gap[1]), np.nan)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        out[r * (h + gap[0]) : r * (h + gap[0]) + h, c * (w + gap[1]) : c * (w + gap[1]) + w] = tile
    return out


def show_tiles(ax, tiles: np.ndarray, cols: int, labels: list[str] | None, cmap: str, norm, gap: tuple[int, int]):
    """One image of many tiles, each labelled above; a single artist keeps big grids fast to render."""
    h, w = tiles.shape[1:]
    image = ax.imshow(mosaic(tiles, cols, gap), cmap=matplotlib.colormaps[cmap].with_extremes(bad="white"), norm=norm)
    for k, label in enumerate(labels or []):
        r, c = divmod(k, cols)
        ax.text(c * (w + gap[1]) + (w - 1) / 2, r * (h + gap[0]) - 0.6, label, ha="center", va="bottom", fontsize=9)
    ax.set_axis_off()
    return image


@styled
def filters_figure(title: str, weight: np.ndarray) -> Figure:
    """Kernels of a conv layer (out, in, kh, kw) on one symmetric colour scale."""
    n_out, n_in, kh, kw = weight.shape
    limit = float(np.abs(weight).max()) or 1.0
    norm = TwoSlopeNorm(0, -limit, limit)
    if n_in == 1:
        cols = min(8, n_out)
        rows = -(-n_out // cols)
        side = 1.0 if n_out > 8 else 1.5
        gap = (max(2, kh // 2 + 1), max(1, kw // 4 + 1))
        aspect = (rows * (kh + gap[0])) / (cols * (kw + gap[1]))
        figure = Figure(figsize=(cols * side + 1.8, cols * side * aspect + 1.1), layout="constrained")
        figure.suptitle(f"{title}\n{n_out} kernels of {kh}×{kw}", fontsize=13)
        ax = figure.subplots()
        image = show_tiles(ax, weight[:, 0], cols, [str(i) for i in range(n_out)], WEIGHTS_CMAP, norm, gap)
    else:
        shown_out, shown_in = min(n_out, MAX_CHANNELS), min(n_in, MAX_CHANNELS)
        figure = Figure(figsize=(shown_in * 0.55 + 2.2, shown_out * 0.55 + 1.6), layout="constrained")
        figure.suptitle(f"{title}\n{kh}×{kw} kernels; output channels {shown_out} of {n_out}, input channels {shown_in} of {n_in}", fontsize=13)
        ax = figure.subplots()
        tiles = weight[:shown_out, :shown_in].reshape(-1, kh, kw)
        image = show_tiles(ax, tiles, shown_in, None, WEIGHTS_CMAP, norm, (1, 1))
        ax.set_axis_on()
        ax.set_xticks([i * (kw + 1) + (kw - 1) / 2 for i in range(shown_in)], [str(i) for i in range(shown_in)], fontsize=9)
        ax.set_yticks([o * (kh + 1) + (kh - 1) / 2 for o in range(shown_out)], [str(o) for o in range(shown_out)], fontsize=9)
        ax.set(xlabel="input channel", ylabel="output channel")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    figure.colorbar(image, ax=ax, label="weight", shrink=0.9, aspect=25)
    return figure


@styled
def feature_maps_figure(title: str, image: np.ndarray, probs: np.ndarray, label: int | None, layers: dict[str, tuple[Any, np.ndarray]]) -> Figure:
    """The input with the predicted probabilities, then the most active channels of each conv layer."""
    cols = 8
    heights = [2.6] + [0.5 + 1.7 * -(-min(len(out), MAX_CHANNELS) // cols) for _, out in layers.values()]
    figure = Figure(figsize=(13, sum(heights) + 0.6), layout="constrained")
    predicted = int(probs.argmax())
    truth = f"true {label}, " if label is not None else ""
    figure.suptitle(f"{title}\n{truth}predicted {predicted} ({probs[predicted]:.1%})")
    parts = np.atleast_1d(figure.subfigures(len(heights), 1, height_ratios=heights, hspace=0.02))
    digit, bars = parts[0].subplots(1, 2, width_ratios=[1, 2.6])
    digit.imshow(image, cmap=DIGIT_CMAP, vmin=0, vmax=255)
    digit.set_title("input (28×28)")
    bare(digit)
    colours = [ERROR if (c == predicted and label is not None and c != label) else (TEST if c == predicted else "#9aa5b1") for c in range(len(probs))]
    bars.bar(range(len(probs)), probs, color=colours)
    bars.set(title="predicted probabilities", xlabel="class", ylabel="probability", ylim=(0, 1.05), xticks=range(len(probs)))
    bars.grid(axis="y", alpha=0.3)
    for part, (name, (conv, output)) in zip(parts[1:], layers.items()):
        strength = np.abs(output).mean(axis=(1, 2))
        shown = np.argsort(-strength, kind="stable")[:MAX_CHANNELS]
        kernel = "×".join(map(str, conv.kernel_size))
        c, h, w = output.shape
        part.suptitle(
            f"{name}: Conv2d {conv.in_channels}→{conv.out_channels}, {kernel}, output {c}×{h}×{w} — {len(shown)} most active of {c} channels",
            fontsize=11, fontweight="bold", x=0.01, ha="left",
        )
        ax = part.subplots()
        limit = float(np.abs(output[shown]).max()) or 1.0
        gap = (max(3, h // 4), max(2, w // 8))
        maps = show_tiles(ax, output[shown], cols, [f"ch {k}" for k in shown], ACTIVATION_CMAP, TwoSlopeNorm(0, -limit, limit), gap)
        part.colorbar(maps, ax=ax, label="activation", shrink=0.9, aspect=12)
    return figure
