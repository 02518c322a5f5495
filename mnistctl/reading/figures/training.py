"""Figures of training over time: a run's learning curves, and runs' validation curves side by side."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mnistctl.reading.figures.style import TEST, TRAIN, VAL, styled


@styled
def curves_figure(title: str, epochs: list[dict], steps: list[dict], steps_per_epoch: int | None, test: dict | None,
                  rates: list[float] | None = None, averaged: bool = False) -> Figure:
    """Loss, accuracy and learning rate by epoch: ``rates`` of every step, else as logged; ``averaged``: a run with --ema,
    whose validation is of the weights' average."""
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    figure.suptitle(f"{title}: learning curves")
    loss, acc, lr = figure.subplots(1, 3)
    x = [e["epoch"] for e in epochs]
    best = [e["epoch"] for e in epochs if e.get("best")]
    if steps:
        loss.plot([s["step"] / steps_per_epoch for s in steps], [s["loss"] for s in steps], color=TRAIN, alpha=0.25, lw=1, label="train (per logged step)")
    validated = [e for e in epochs if e.get("val_loss") is not None]  # none in a run trained with --val-split 0
    loss.plot(x, [e["train_loss"] for e in epochs], "o-", color=TRAIN, label="train (epoch mean)")
    acc.plot(x, [100 * e["train_acc"] for e in epochs], "o-", color=TRAIN, label="train")
    val_label = "validation (weight average)" if averaged else "validation"
    if validated:
        loss.plot([e["epoch"] for e in validated], [e["val_loss"] for e in validated], "s-", color=VAL, label=val_label)
        acc.plot([e["epoch"] for e in validated], [100 * e["val_acc"] for e in validated], "s-", color=VAL, label=val_label)
    loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    if test:
        acc.plot([test["epoch"]], [100 * test["test_acc"]], "*", ms=16, color=TEST, label=f"test, best checkpoint: {test['test_acc']:.2%}")
    acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    acc.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    if best:
        for ax in (loss, acc):
            ax.axvline(best[-1], color="grey", ls=":", lw=1.5, label=f"best epoch ({best[-1]})")
    if rates:
        lr.plot([(k + 1) / steps_per_epoch for k in range(len(rates))], rates, color="purple")
    elif steps and all("lr" in s for s in steps):
        lr.plot([s["step"] / steps_per_epoch for s in steps], [s["lr"] for s in steps], color="purple")
    else:
        lr.plot(x, [e["lr"] for e in epochs], "o-", color="purple")
    rates = [line for line in lr.lines[0].get_ydata() if line > 0]
    if rates and max(rates) / min(rates) > 20:
        lr.set_yscale("log")
    lr.set(title="Learning rate", xlabel="epoch", ylabel="learning rate")
    for ax in (loss, acc, lr):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if len(x) > 1:
        loss.legend()
        acc.legend()
    else:  # one epoch: every point on one vertical line, which a legend inside would cover
        for ax in (loss, acc):
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
    return figure


@styled
def compare_figure(curves: list[tuple[str, list[dict]]]) -> Figure:
    """Validation accuracy and loss per epoch of each (label, epochs) pair, the best epoch starred."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    for index, (label, epochs) in enumerate(curves):
        style = {"color": f"C{index % 10}", "marker": "o", "markersize": 4}
        x = [e["epoch"] for e in epochs]
        acc_ax.plot(x, [100 * e["val_acc"] for e in epochs], label=label, **style)
        loss_ax.plot(x, [e["val_loss"] for e in epochs], **style)
        best = next((e for e in reversed(epochs) if e.get("best")), None) or max(epochs, key=lambda e: e["val_acc"])
        acc_ax.plot(best["epoch"], 100 * best["val_acc"], "*", color=style["color"], markersize=13, markeredgecolor="black", markeredgewidth=0.6)
    acc_ax.set(title="Validation accuracy (★ best epoch)", xlabel="epoch", ylabel="accuracy")
    acc_ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    loss_ax.set(title="Validation loss", xlabel="epoch", ylabel="cross-entropy")
    last = max(e["epoch"] for _, epochs in curves for e in epochs)
    for ax in (acc_ax, loss_ax):
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    longest = max(len(label) for label, _ in curves)
    fig.legend(loc="outside lower center", ncols=max(1, min(len(curves), 140 // longest)))
    fig.suptitle(f"Validation curves of {len(curves)} run{'s' * (len(curves) > 1)}")
    return fig
