"""Plots of a run as PNGs: learning curves, confusion matrices, filters, feature maps, mistakes and samples.

Figures are built with matplotlib's object API (no pyplot, no window), so they render headless.
Conv layers are found generically, by type, so any registered architecture works.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mnistctl import predictions
from mnistctl.errors import NotFoundError, RunError, UsageError
from mnistctl.fsutil import atomic_path
from mnistctl.runs import Run

KINDS = ("curves", "confusion", "filters", "initial-filters", "feature-maps", "wrong", "samples")
NEEDS_WEIGHTS = {"confusion", "filters", "initial-filters", "feature-maps", "wrong"}
MAX_CHANNELS = 16
MAX_WRONG = 40
SAMPLES_PER_CLASS = 12

STYLE = {
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.dpi": 110,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "figure.titlesize": 15,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "image.interpolation": "nearest",
}
TRAIN, VAL, TEST, ERROR = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"
WEIGHTS_CMAP, ACTIVATION_CMAP, DIGIT_CMAP = "RdBu_r", "RdBu_r", "gray_r"


def expand(what: list[str] | str) -> list[str]:
    """The plot kinds asked for, ``all`` expanded; an unknown kind fails listing the valid ones."""
    asked = [what] if isinstance(what, str) else list(what)
    kinds: list[str] = []
    for kind in asked:
        if kind == "all":
            kinds += KINDS
        elif kind in KINDS:
            kinds.append(kind)
        else:
            raise UsageError(f"unknown --what '{kind}'", f"choose from: {', '.join(KINDS)}, all")
    return list(dict.fromkeys(kinds))


def conv_layers(model) -> dict[str, Any]:
    """Every Conv2d of a model by qualified name, in definition order."""
    from torch import nn

    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Conv2d)}


def pick_layer(model, layer: str | None) -> str:
    """The conv layer named (or numbered from 0) by ``layer``; the first one by default."""
    names = list(conv_layers(model))
    if not names:
        raise UsageError(f"{type(model).__name__} has no Conv2d layers", "filters and feature maps need a convolutional model")
    if layer is None:
        return names[0]
    if layer in names:
        return layer
    if layer.isdigit() and int(layer) < len(names):
        return names[int(layer)]
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    raise NotFoundError(f"no conv layer '{layer}'", f"the conv layers are {listing}")


def capture_feature_maps(model, x) -> dict[str, Any]:
    """The output of every conv layer for the batch ``x``, captured with forward hooks, in execution order."""
    import torch

    captured: dict[str, Any] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, output, name=name: captured.__setitem__(name, output.detach().float()))
        for name, module in conv_layers(model).items()
    ]
    try:
        with torch.inference_mode():
            logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {"logits": logits, **captured}


@dataclass
class Options:
    which: str = "best"
    split: str = "test"
    layer: str | None = None
    index: int = 0
    image: str | None = None


class Plots:
    """The plots of one run; data, weights and predictions are loaded once, when first needed."""

    def __init__(self, run: Run, options: Options | None = None, dataset=None):
        self.run = run
        self.options = options or Options()
        if dataset is not None:
            self.dataset = dataset

    def make(self, kinds: list[str], out: Path) -> list[Path]:
        self.check(kinds)
        paths = []
        with matplotlib.rc_context(STYLE):
            for kind in kinds:
                name, figure = getattr(self, kind.replace("-", "_"))()
                paths.append(save(figure, out / name))
        return paths

    def check(self, kinds: list[str]) -> None:
        """Fail on bad input before any plot is written."""
        if NEEDS_WEIGHTS & set(kinds):
            self.run.weights(self.options.which)
        if "initial-filters" in kinds:
            self.run.weights("initial")
        if {"filters", "initial-filters", "feature-maps"} & set(kinds):
            pick_layer(self.model, self.options.layer)
        if "feature-maps" in kinds:
            self.input_image()

    @property
    def title(self) -> str:
        arch = self.run.config.get("arch", "?")
        return self.run.name if arch in self.run.name else f"{self.run.name} ({arch})"

    @cached_property
    def dataset(self):
        return predictions.run_dataset(self.run)

    @cached_property
    def model(self):
        from mnistctl.runs import load_model

        return load_model(self.run, self.options.which)

    @cached_property
    def split(self):
        return predictions.split_data(self.run, self.options.split, self.dataset)

    @cached_property
    def predictions(self):
        return predictions.load_or_compute(self.run, self.options.split, self.options.which, self.dataset)

    def curves(self) -> tuple[str, Figure]:
        epochs = {e["epoch"]: e for e in self.run.epochs()}
        if not epochs:
            raise RunError(f"run {self.run.name} has no finished epochs yet", "plot curves once the first epoch is done")
        starts = list(self.run.events("start"))
        steps_per_epoch = starts[-1].get("steps_per_epoch") if starts else None
        steps = list(self.run.events("step")) if steps_per_epoch else []
        tests = list(self.run.events("test"))
        return "curves.png", curves_figure(self.title, [epochs[k] for k in sorted(epochs)], steps, steps_per_epoch, tests[-1] if tests else None)

    def confusion(self) -> tuple[str, Figure]:
        from mnistctl.evaluate import metrics

        probs, targets = self.predictions
        matrix = np.array(metrics(probs, targets)["confusion_matrix"])
        subtitle = f"{self.options.split} split, {self.options.which} checkpoint, {int(matrix.sum()):,} images"
        return f"confusion-{self.options.split}.png", confusion_figure(f"{self.title}: confusion matrix", subtitle, matrix)

    def filters(self, which: str | None = None) -> tuple[str, Figure]:
        from mnistctl.runs import load_model

        model = self.model if which is None else load_model(self.run, which)
        layer = pick_layer(model, self.options.layer)
        label = "before training" if which == "initial" else f"{self.options.which} checkpoint"
        figure = filters_figure(f"{self.title}: filters of {layer}, {label}", conv_layers(model)[layer].weight.detach().float().numpy())
        return f"{'initial-' if which else ''}filters-{layer}.png", figure

    def initial_filters(self) -> tuple[str, Figure]:
        return self.filters("initial")

    def input_image(self) -> tuple[np.ndarray, str, str, int | None]:
        """The image for feature maps: (uint8 28x28, caption, file stem, true label or None)."""
        if self.options.image:
            from mnistctl.imageprep import load_prepared

            return load_prepared(self.options.image), Path(self.options.image).name, Path(self.options.image).stem, None
        images, labels = self.split
        index = self.options.index
        if not 0 <= index < len(images):
            raise UsageError(f"--index {index} is out of range", f"the {self.options.split} split has {len(images):,} images: use 0 to {len(images) - 1}")
        return images[index].numpy(), f"{self.options.split} image #{index}", f"{self.options.split}-{index}", int(labels[index])

    def feature_maps(self) -> tuple[str, Figure]:
        import torch

        from mnistctl.data import normalize

        image, caption, stem, label = self.input_image()
        x = normalize(torch.from_numpy(np.ascontiguousarray(image))[None], *self.run.normalization)
        captured = capture_feature_maps(self.model, x)
        probs = torch.softmax(captured.pop("logits").float(), 1)[0].numpy()
        layers = {name: (conv_layers(self.model)[name], output[0].numpy()) for name, output in captured.items()}
        figure = feature_maps_figure(f"{self.title}: feature maps of {caption}", image, probs, label, layers)
        return f"feature-maps-{stem}.png", figure

    def wrong(self) -> tuple[str, Figure]:
        probs, targets = self.predictions
        images, _ = self.split
        title = f"{self.title}: misclassified {self.options.split} images, most confident first"
        return f"wrong-{self.options.split}.png", wrong_figure(title, images.numpy(), probs.numpy(), targets.numpy())

    def samples(self) -> tuple[str, Figure]:
        from mnistctl.data import split_indices

        dataset, config = self.dataset, self.run.config
        train_idx = np.arange(dataset.n_train)
        counts = {}
        if config.get("val_split"):
            train_idx, val_idx = (i.numpy() for i in split_indices(dataset.n_train, config["val_split"], config["seed"]))
            counts["validation"] = np.bincount(dataset.train_labels.numpy()[val_idx], minlength=10)
        labels = dataset.train_labels.numpy()[train_idx]
        counts = {"train": np.bincount(labels, minlength=10), **counts, "test": np.bincount(dataset.test_labels.numpy(), minlength=10)}
        examples = [dataset.train_images.numpy()[train_idx[labels == c][:SAMPLES_PER_CLASS]] for c in range(len(counts["train"]))]
        return "samples.png", samples_figure(f"{self.title}: training examples and class distribution", examples, counts)


def bare(ax) -> None:
    """An image tile: no ticks, a thin light frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#c8c8c8")
        spine.set_linewidth(0.8)


def save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.15)
    return path


def curves_figure(title: str, epochs: list[dict], steps: list[dict], steps_per_epoch: int | None, test: dict | None) -> Figure:
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    figure.suptitle(f"{title}: learning curves")
    loss, acc, lr = figure.subplots(1, 3)
    x = [e["epoch"] for e in epochs]
    best = [e["epoch"] for e in epochs if e.get("best")]
    if steps:
        loss.plot([s["step"] / steps_per_epoch for s in steps], [s["loss"] for s in steps], color=TRAIN, alpha=0.25, lw=1, label="train (per logged step)")
    loss.plot(x, [e["train_loss"] for e in epochs], "o-", color=TRAIN, label="train (epoch mean)")
    loss.plot(x, [e["val_loss"] for e in epochs], "s-", color=VAL, label="validation")
    loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    acc.plot(x, [100 * e["train_acc"] for e in epochs], "o-", color=TRAIN, label="train")
    acc.plot(x, [100 * e["val_acc"] for e in epochs], "s-", color=VAL, label="validation")
    if test:
        acc.plot([test["epoch"]], [100 * test["test_acc"]], "*", ms=16, color=TEST, label=f"test, best checkpoint: {test['test_acc']:.2%}")
    acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    acc.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    if best:
        for ax in (loss, acc):
            ax.axvline(best[-1], color="grey", ls=":", lw=1.5, label=f"best epoch ({best[-1]})")
    if steps and all("lr" in s for s in steps):
        lr.plot([s["step"] / steps_per_epoch for s in steps], [s["lr"] for s in steps], color="purple")
    else:
        lr.plot(x, [e["lr"] for e in epochs], "o-", color="purple")
    rates = [line for line in lr.lines[0].get_ydata() if line > 0]
    if rates and max(rates) / min(rates) > 20:
        lr.set_yscale("log")
    lr.set(title="Learning rate", xlabel="epoch", ylabel="learning rate")
    for ax in (loss, acc, lr):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    loss.legend()
    acc.legend(loc="lower right")
    return figure


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
    figure.colorbar(image, ax=share_ax, label="% of the true class (off-diagonal errors)", shrink=0.85, format=PercentFormatter(decimals=1))
    for (t, p), value in np.ndenumerate(share):
        if t == p:
            share_ax.text(p, t, f"{value:.1f}", ha="center", va="center", fontsize=9.5, fontweight="bold")
        elif matrix[t, p]:
            share_ax.text(p, t, f"{value:.1f}", ha="center", va="center", fontsize=9.5, color="white" if value > 0.6 * top else "black")
    share_ax.set_title("Row-normalised: % of each true class (diagonal = recall)")
    for ax in (counts_ax, share_ax):
        ax.set(xlabel="predicted class", ylabel="true class", xticks=range(n), yticks=range(n))
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    return figure


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


def samples_figure(title: str, examples: list[np.ndarray], counts: dict[str, np.ndarray]) -> Figure:
    classes = len(examples)
    figure = Figure(figsize=(16, 7), layout="constrained")
    figure.suptitle(title)
    grid, bars = figure.subplots(1, 2, width_ratios=[1.35, 1])
    gap = 4
    mosaic = np.zeros((classes * (28 + gap) - gap, SAMPLES_PER_CLASS * (28 + gap) - gap), dtype=np.uint8)
    for c, digits in enumerate(examples):
        for k, digit in enumerate(digits):
            mosaic[c * (28 + gap) : c * (28 + gap) + 28, k * (28 + gap) : k * (28 + gap) + 28] = digit
    grid.imshow(mosaic, cmap=DIGIT_CMAP, vmin=0, vmax=255)
    grid.set_title(f"first {SAMPLES_PER_CLASS} training images of each class")
    grid.set_yticks([c * (28 + gap) + 14 for c in range(classes)], [str(c) for c in range(classes)], fontsize=15, fontweight="bold")
    grid.set_xticks([])
    grid.tick_params(length=0)
    for spine in grid.spines.values():
        spine.set_visible(False)
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

