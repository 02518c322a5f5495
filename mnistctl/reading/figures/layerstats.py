"""The layer statistics of a run over training (``train --log-layers``): one panel per statistic, one line per layer."""

from __future__ import annotations

import math
import textwrap
from typing import Any, Callable

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullLocator, PercentFormatter

from mnistctl.reading.figures.style import styled
from mnistctl.training.layerstats import DEAD_ZEROS, EXPLODING_UPDATE, main_param

FEW_POINTS = 3  # so few logged points get larger markers (and visualize a note on logging more)
Getter = Callable[[dict[str, Any]], Any]
PANELS: tuple[tuple[str, Getter, bool], ...] = (  # (title, value of a layer record, log scale)
    ("Activation mean", lambda r: r.get("mean"), False),
    ("Activation std", lambda r: r.get("std"), True),
    ("Fraction of zeros (dead units)", lambda r: r.get("zeros"), False),
    ("Gradient norm of the output (× √batch)", lambda r: r.get("grad"), True),
    ("Gradient norm of the weights", lambda r: main_param(r).get("grad"), True),
    ("Update / weight ratio  ||Δw|| / ||w||", lambda r: main_param(r).get("update"), True),
)


class PlainLog(LogFormatter):
    """Log-axis labels where matplotlib would put them, written 0.02 rather than 2×10⁻²."""

    def __call__(self, x, pos=None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


SHAPES = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p")  # the markers of the 1st, 2nd, 3rd... ten layers


def looks(n: int, points: int) -> list[dict[str, Any]]:
    """Line styles for ``n`` layers with ``points`` logged points each. Colours are tab10's, whose ten hues stay
    apart (larger palettes pair near-identical shades); past ten layers, each ten more take the next marker shape, on
    every line, so colour and shape together tell every layer apart. Few points get larger markers."""
    size = 7 if points <= FEW_POINTS else 4.5
    pool = colormaps["tab10"].colors
    if n <= 10:
        return [{"color": pool[i], **({"marker": "o", "ms": size} if points < 12 else {})} for i in range(n)]
    every = max(1, points // 10)
    return [{"color": pool[i % 10], "marker": SHAPES[i // 10 % len(SHAPES)], "ms": size, "markevery": (i % every, every)} for i in range(n)]


def _series(events: list[dict], name: str, get: Getter, log: bool) -> list[float]:
    values = []
    for event in events:
        value = get(event["layers"].get(name, {}))
        values.append(math.nan if value is None or (log and value <= 0) else value)
    return values


def _overlaps(ax, x: list[float], series: dict[str, list[float]]) -> list[list[str]]:
    """Groups of layers drawn on top of each other (within 1% of the panel's height) at every logged point."""
    ax.autoscale_view()  # the limits the panel is drawn with
    to_axes = ax.transData + ax.transAxes.inverted()
    heights = {name: to_axes.transform(np.column_stack([x, values]))[:, 1] for name, values in series.items()}
    groups: list[list[str]] = []
    for name, height in heights.items():
        group = next((g for g in groups if np.allclose(heights[g[0]], height, rtol=0, atol=0.01, equal_nan=True)), None)
        if group is None:
            groups.append([name])
        else:
            group.append(name)
    return [g for g in groups if len(g) > 1]


def _overlap_note(groups: list[list[str]]) -> str:
    names = [", ".join(g) if len(g) <= 6 else ", ".join(g[:5]) + f" and {len(g) - 5} more" for g in groups]
    return textwrap.fill("on top of each other: " + "; ".join(names), 56)  # no wider than a panel


@styled
def layer_stats_figure(title: str, events: list[dict], steps_per_epoch: int | None = None, span: float | None = None) -> Figure:
    """``events`` are Kind.LAYERS events in step order; parameter-free layers (activations) are dashed. The x-axis
    runs from 0 to the last point, or to ``span`` (in epochs) when that is further."""
    names = list(dict.fromkeys(name for event in events for name in event["layers"]))
    types = {name: rec.get("type", "") for event in events for name, rec in event["layers"].items()}
    has_params = {name for event in events for name, rec in event["layers"].items() if rec.get("params")}
    x = [e["step"] / steps_per_epoch if steps_per_epoch else e["step"] for e in events]
    look = dict(zip(names, looks(len(names), len(x))))
    figure = Figure(figsize=(16, 8.5), layout="constrained")
    figure.suptitle(f"{title}: layer statistics over training")
    axes = figure.subplots(2, 3, sharex=True).ravel()
    drawn = []
    for ax, (panel, get, log) in zip(axes, PANELS):
        series = {name: _series(events, name, get, log) for name in names}
        drawn.append({name: values for name, values in series.items() if not all(math.isnan(v) for v in values)})
        for name, values in drawn[-1].items():
            ax.plot(x, values, "-" if name in has_params else "--", lw=1.6, **look[name])
        if log and ax.lines:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(PlainLog())
            ax.yaxis.set_minor_formatter(PlainLog(labelOnlyBase=False))
        ax.grid(alpha=0.3, which="major")
    axes[0].set_xlim(0, 1.03 * max(span or 0, max(x)))
    zeros, update = axes[2], axes[5]
    zeros.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    zeros.set_ylim(-0.03, 1.03)
    references = [(zeros, {DEAD_ZEROS: "dead above"})]
    if update.lines:
        references.append((update, {1e-3: "typical ~1e-3", EXPLODING_UPDATE: "too large"}))
    for ax, levels in references:  # labelled outside the panel, on its right edge, where no line runs under them
        for level in levels:
            ax.axhline(level, color="grey", ls=":", lw=1.2)
        edge = ax.secondary_yaxis("right")
        edge.set_yticks(list(levels), list(levels.values()), fontsize=9, color="dimgrey")
        edge.yaxis.set_minor_locator(NullLocator())
        edge.tick_params(length=3, color="grey")
        edge.spines["right"].set_visible(False)
    for ax in axes[3:]:
        ax.set_xlabel("epoch" if steps_per_epoch else "step")
    notes = [_overlap_note(groups) if (groups := _overlaps(ax, x, series)) else "" for ax, series in zip(axes, drawn)]
    lines = [note.count("\n") + 1 if note else 0 for note in notes]
    for i, (ax, (panel, *_), note) in enumerate(zip(axes, PANELS, notes)):
        ax.set_title(panel, pad=6 + 12 * max(lines[i // 3 * 3:][:3]))  # the same in a row
        ax.text(0.5, 1.01, note, transform=ax.transAxes, ha="center", va="bottom", fontsize=9, color="dimgrey")
    handles = [axes[0].plot([], [], "-" if n in has_params else "--", lw=2, **{k: v for k, v in look[n].items() if k != "markevery"})[0] for n in names]
    figure.legend(handles, [f"{n}  {types[n]}" for n in names], loc="outside right upper", title="layer (dashed: no parameters)", fontsize=10)
    return figure
