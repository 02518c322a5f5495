"""The figure of a sweep: each trial's validation accuracy with the best so far, and the parameter importances."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mnistctl.reading.figures.style import ERROR, TEST, VAL, ExactPercent, styled


@styled
def sweep_figure(study: str, history: list[tuple[int, float, bool]], importances: dict[str, float]) -> Figure:
    """``history``: (trial number, best validation accuracy or None, completed); pruned and failed trials drawn apart,
    those without an accuracy (failed in their first epoch) on the axis."""
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    fig.suptitle(f"Sweep {study}")
    hist_ax, imp_ax = fig.subplots(1, 2, width_ratios=[3, 2])
    done = [(n, 100 * v) for n, v, completed in history if completed and v is not None]
    stopped = [(n, 100 * v) for n, v, completed in history if not completed and v is not None]
    failed = [n for n, v, _ in history if v is None]
    if done:
        hist_ax.plot(*zip(*done), "o", color=VAL, label="finished trial")
        best, running = [], -1.0
        for n, v in sorted(done):
            running = max(running, v)
            best.append((n, running))
        hist_ax.step(*zip(*best), where="post", color=TEST, lw=2, label="best so far")
    if stopped:
        hist_ax.plot(*zip(*stopped), "x", color=ERROR, label="pruned or stopped (best epoch)")
    if failed:
        hist_ax.plot(failed, [0.0] * len(failed), "^", color="grey", transform=hist_ax.get_xaxis_transform(), clip_on=False,
                     label="failed before an accuracy")
    hist_ax.set(title="Optimisation history", xlabel="trial", ylabel="best validation accuracy")
    numbers = [n for n, _, _ in history]
    pad = max(0.5, 0.03 * (max(numbers) - min(numbers)))  # one trial alone gets whole-number ticks around it
    hist_ax.set_xlim(min(numbers) - pad, max(numbers) + pad)
    hist_ax.set_ylim(top=min(hist_ax.get_ylim()[1], 100.5))  # no accuracy above 100%
    hist_ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    hist_ax.yaxis.set_major_formatter(ExactPercent())
    hist_ax.grid(alpha=0.3)
    hist_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2 if failed else 3, frameon=False)  # below the axes: no trial hidden
    imp_ax.set_xlim(0, 1)
    imp_ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    if importances:
        names = list(importances)[::-1]
        imp_ax.barh(names, [importances[n] for n in names], color=VAL)
    else:
        imp_ax.text(0.5, 0.5, "needs two finished trials that differ", ha="center", va="center", color="grey", transform=imp_ax.transAxes)
        imp_ax.set_yticks([])
    imp_ax.set(title="Parameter importance (fANOVA)", xlabel="share of the variance in validation accuracy")
    return fig
