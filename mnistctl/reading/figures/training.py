"""Figures of training over time: a run's learning curves, and runs' validation curves side by side."""

from __future__ import annotations

import textwrap

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mnistctl.reading.figures.style import TEST, TRAIN, VAL, ExactPercent, styled


@styled
def curves_figure(title: str, epochs: list[dict], steps: list[dict], steps_per_epoch: int | None, test: dict | None,
                  rates: list[float] | None = None, averaged: bool = False, training: bool = False) -> Figure:
    """Loss, accuracy and learning rate by epoch: ``rates`` of every step, else as logged; ``averaged``: a run with --ema,
    whose validation is of the weights' average; ``training``: a run still training."""
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    figure.suptitle(f"{title}: learning curves")
    loss, acc, lr = figure.subplots(1, 3)
    x = [e["epoch"] for e in epochs]
    best = [e["epoch"] for e in epochs if e.get("best")]
    alone = len(steps) == 1 and not epochs  # the only thing to draw, as a point: a line of one point draws nothing
    if len(steps) > 1 or alone:
        loss.plot([s["step"] / steps_per_epoch for s in steps], [s["loss"] for s in steps], "o" if alone else "-", color=TRAIN,
                  alpha=0.25 if epochs else 1, lw=1, label="train (per logged step)")
    validated = [e for e in epochs if e.get("val_loss") is not None]  # none in a run trained with --val-split 0
    if epochs:
        loss.plot(x, [e["train_loss"] for e in epochs], "o-", color=TRAIN, label="train (epoch mean)")
        acc.plot(x, [100 * e["train_acc"] for e in epochs], "o-", color=TRAIN, label="train")
    val_label = "validation (weight average)" if averaged else "validation"
    if validated:
        loss.plot([e["epoch"] for e in validated], [e["val_loss"] for e in validated], "s-", color=VAL, label=val_label)
        acc.plot([e["epoch"] for e in validated], [100 * e["val_acc"] for e in validated], "s-", color=VAL, label=val_label)
    loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    if test:  # hollow and under the validation marker, which shows through it at the same epoch
        acc.plot([test["epoch"]], [100 * test["test_acc"]], "*", ms=18, mfc="none", mec=TEST, mew=2, color=TEST, zorder=1.9,
                 label=f"test, best checkpoint: {test['test_acc']:.2%}")
    if not epochs:  # in its first epoch, or stopped or failed there: only the logged steps
        acc.text(0.5, 0.5, "first epoch still training" if training else "no epoch finished", transform=acc.transAxes, ha="center", va="center", color="grey")
        acc.set_yticks([])
    acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    acc.yaxis.set_major_formatter(ExactPercent())
    if best:
        for ax in (loss, acc):
            ax.axvline(best[-1], color="grey", ls=":", lw=1.5, label=f"best epoch ({best[-1]})")
    if rates:
        lr.plot([(k + 1) / steps_per_epoch for k in range(len(rates))], rates, color="purple")
    elif (len(steps) > 1 or alone) and all("lr" in s for s in steps):
        lr.plot([s["step"] / steps_per_epoch for s in steps], [s["lr"] for s in steps], "o" if alone else "-", color="purple")
    else:
        logged = [e for e in epochs if "lr" in e]  # every run writes it; a hand-edited file may not
        lr.plot([e["epoch"] for e in logged], [e["lr"] for e in logged], "o-", color="purple")
        if not logged:
            lr.text(0.5, 0.5, "not logged", transform=lr.transAxes, ha="center", va="center", color="grey")
            lr.set(yticks=[], xlim=loss.get_xlim())
    if alone and len(lr.lines[0].get_xdata()) < 2:  # one point spans no range: the epoch it is in
        lr.set_xlim(0, 1)
    rates = [line for line in lr.lines[0].get_ydata() if line > 0]
    if rates and max(rates) / min(rates) > 20:
        lr.set_yscale("log")
    lr.set(title="Learning rate", xlabel="epoch", ylabel="learning rate")
    if not epochs:  # the steps of the first epoch, on the same axis as its rates
        for ax in (loss, acc):
            ax.set_xlim(lr.get_xlim())
    for ax in (loss, acc, lr):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if len(x) > 1:
        loss.legend()
        acc.legend()
    else:  # one epoch: every point on one vertical line, which a legend inside would cover
        for ax in (loss, acc):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
    return figure


LABEL_CHARS = 48  # a longer legend label is cut in the middle of the run's name


def short_label(label: str, limit: int = LABEL_CHARS) -> str:
    """``label`` cut to ``limit`` characters by an ellipsis in the run's name, whose start and end tell runs apart; a
    last "(…)" part, the run's result, is kept whole."""
    if len(label) <= limit:
        return label
    name, sep, tail = label.rpartition(" (") if label.endswith(")") else (label, "", "")
    if not sep or len(tail) + 2 > limit // 2:
        name, sep, tail = label, "", ""
    room = limit - len(sep) - len(tail) - 1
    return name[: -(-room // 2)] + "…" + name[len(name) - room // 2 :] + sep + tail


@styled
def compare_figure(curves: list[tuple[str, list[dict]]]) -> Figure:
    """Validation accuracy and loss per epoch of each (label, epochs) pair, the best epoch starred; runs whose epochs
    are empty (none finished with validation) are named in a note under the title."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    drawn = [(label, epochs) for label, epochs in curves if epochs]
    missing = [label for label, epochs in curves if not epochs]
    for index, (label, epochs) in enumerate(drawn):
        style = {"color": f"C{index % 10}", "marker": "o", "markersize": 4}
        x = [e["epoch"] for e in epochs]
        acc_ax.plot(x, [100 * e["val_acc"] for e in epochs], label=short_label(label), **style)
        loss_ax.plot(x, [e["val_loss"] for e in epochs], **style)
        best = next((e for e in reversed(epochs) if e.get("best")), None) or max(epochs, key=lambda e: e["val_acc"])
        acc_ax.plot(best["epoch"], 100 * best["val_acc"], "*", color=style["color"], markersize=13, markeredgecolor="black", markeredgewidth=0.6)
    acc_ax.set(title="Validation accuracy (★ best epoch)", xlabel="epoch", ylabel="accuracy")
    acc_ax.yaxis.set_major_formatter(ExactPercent())
    loss_ax.set(title="Validation loss", xlabel="epoch", ylabel="cross-entropy")
    last = max((e["epoch"] for _, epochs in drawn for e in epochs), default=1)
    for ax in (acc_ax, loss_ax):
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if drawn:
        longest = max(len(short_label(label)) for label, _ in drawn)
        fig.legend(loc="outside lower center", ncols=max(1, min(len(drawn), 140 // longest)))
    runs = f"{len(drawn)} of {len(curves)} runs" if missing else f"{len(drawn)} run{'s' * (len(drawn) != 1)}"
    title = f"Validation curves of {runs}"
    if missing:
        have = "has" if len(missing) == 1 else "have"
        note = f"{len(missing)} run{'s' * (len(missing) > 1)} {have} no finished epoch with validation: "
        title += "\n" + textwrap.fill(note + ", ".join(short_label(label) for label in missing), 110)
    fig.suptitle(title)
    return fig
