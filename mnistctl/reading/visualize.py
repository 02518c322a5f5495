"""``visualize``: which plots a run gets, the data and layers behind them; the figures module draws them.

Conv layers are found generically, by type, so any registered architecture works.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mnistctl.errors import MnistctlError, NotFoundError, RunError, UsageError
from mnistctl.reading import split_predictions
from mnistctl.reading.compare import augment_label
from mnistctl.reading.evaluate import kept_test
from mnistctl.reading.figures import save
from mnistctl.reading.figures.layers import feature_maps_figure, filters_figure
from mnistctl.reading.figures.layerstats import FEW_POINTS, layer_stats_figure
from mnistctl.reading.figures.predictions import (
    confusion_figure,
    samples_figure,
    wrong_figure,
)
from mnistctl.reading.figures.training import curves_figure
from mnistctl.runs import Kind, Run

KINDS = ("curves", "confusion", "filters", "initial-filters", "feature-maps", "wrong", "samples", "saliency", "layer-stats")
NEEDS_WEIGHTS = {"confusion", "filters", "initial-filters", "feature-maps", "wrong", "saliency"}
SAMPLES_PER_CLASS = 12
MAX_REPLAYED_STEPS = 1_000_000  # of a scheduler, to draw the learning rate: about a second
EXPLAINED_WRONG, EXPLAINED_RIGHT = 6, 3
USED_BY = {"split": {"confusion", "wrong", "feature-maps", "saliency"}, "layer": {"filters", "initial-filters"},
           "index": {"feature-maps"}, "image": {"feature-maps"}, "method": {"saliency"}}  # fmt: skip


def expand(what: list[str] | str, run: Run | None = None, which: str = "best") -> list[str]:
    """The plot kinds asked for (repeated or comma-separated); ``all`` expanded to the kinds ``run`` can have drawn
    with its ``which`` weights (every kind without a run); a typo gets the closest kind."""
    from mnistctl.registry import suggest

    asked = [what] if isinstance(what, str) else list(what)
    named = [k.strip() for item in asked for k in item.split(",") if k.strip()]
    if not named:
        raise UsageError("--what names no plot", f"name one or more of {', '.join(KINDS)}, all")
    kinds: list[str] = []
    for kind in named:
        if kind == "all":
            kinds += [k for k in KINDS if k in named or run is None or unavailable(k, run, which) is None]
        elif kind in KINDS:
            kinds.append(kind)
        else:
            hint = suggest(kind, [*KINDS, "all"])
            if not hint.startswith("choose"):
                hint += f" the kinds are {', '.join(KINDS)}, all"
            raise UsageError(f"unknown --what '{kind}'", hint)
    return list(dict.fromkeys(kinds))


def unavailable(kind: str, run: Run, which: str = "best") -> str | None:
    """Why ``run`` cannot have a plot of ``kind`` drawn with its ``which`` weights; None when it can."""
    if kind == "curves" and not run.epochs() and next(run.events(Kind.STEP), None) is None:
        return no_epochs(run)
    if kind in LAYER_KINDS and not has_conv_layers(run):
        return f"{arch_label(run)} has no Conv2d layers"
    needed = "initial" if kind == "initial-filters" else which if kind in NEEDS_WEIGHTS else None
    if needed and not run.weights_path(needed).is_file():
        other = next((w for w in ("last", "initial") if w != needed and run.weights_path(w).is_file()), None)
        return f"run {run.name} has no {needed} weights" + (f"; --weights {other} draws them with its {other} weights" if other else "")
    if kind == "layer-stats" and not run.last(Kind.LAYERS):
        return f"run {run.name} has no layer statistics"
    return None


LAYER_KINDS = {"filters", "initial-filters", "feature-maps"}


def has_conv_layers(run: Run) -> bool:
    """Whether the run's architecture has a conv layer to draw, from the model its config builds (no weights needed)."""
    return _builds_convs(json.dumps(run.config, sort_keys=True))


@functools.cache
def _builds_convs(config: str) -> bool:
    from mnistctl.models import build_model

    return bool(conv_layers(build_model(json.loads(config))))


def arch_label(run: Run) -> str:
    """The run's architecture as messages name it, with the package of a plugin's."""
    from mnistctl.plugins import spec_of

    arch = str(run.config.get("arch", "?"))
    try:
        return arch + spec_of(run.config, "arch").provenance
    except MnistctlError:
        return arch


def no_epochs(run: Run) -> str:
    """That ``run`` has no finished epoch: yet, unless it has ended."""
    return f"run {run.name} has no finished epochs{'' if run.status().ended else ' yet'}"


def learning_rates(config: dict[str, Any], steps_per_epoch: int, steps: list[dict], epochs: int) -> list[float] | None:
    """The rate of every step of the run's first ``epochs`` epochs, replayed from its scheduler: logged steps are too
    sparse to show where a rate drops. None when that cannot be done (too many steps, a plugin gone) or does not
    give the rates the run logged."""
    import warnings

    import torch

    from mnistctl.plugins import spec_of

    total = epochs * steps_per_epoch
    if total > MAX_REPLAYED_STEPS:
        return None
    try:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config["lr"])
        scheduler = spec_of(config, "scheduler").build(optimizer, config["epochs"], steps_per_epoch, **config["scheduler_options"])
        rates = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the optimizer never steps: it has no gradients
            for _ in range(total):
                rates.append(optimizer.param_groups[0]["lr"])
                scheduler.step()
    except Exception:
        return None
    logged = [(s["step"], s["lr"]) for s in steps if isinstance(s.get("lr"), (int, float)) and 1 <= s["step"] <= total]
    return rates if all(np.isclose(rates[step - 1], lr, rtol=1e-5) for step, lr in logged) else None


def refuse_unused(kinds: list[str], given: dict[str, Any]) -> None:
    """Plot options given (not None) that none of ``kinds`` uses are refused rather than ignored."""
    image = given.get("image") is not None
    for name in sorted(given, key=lambda n: n != "image"):  # an unused --image before the options it replaces
        users = USED_BY[name] - ({"feature-maps"} if image and name in ("split", "index") else set())
        if given[name] is None or users & set(kinds):
            continue
        flag = f"--{name} {given[name]}"
        if image and "feature-maps" in kinds and name in ("split", "index"):
            raise UsageError(f"--image replaces the split's images in feature-maps, so {flag} would be ignored", "drop one or the other")
        *others, last = sorted(USED_BY[name])
        users = f"{', '.join(others)} and {last}" if others else last
        raise UsageError(f"{flag} would be ignored: it is only for {users}", f"drop it, or add {'one of them' if others else last} to --what")


def conv_layers(model) -> dict[str, Any]:
    """Every Conv2d of a model by qualified name, in definition order."""
    from torch import nn

    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Conv2d)}


def pick_layer(model, layer: str | None, arch: str | None = None) -> str:
    """The conv layer named (or numbered from 0) by ``layer``; the first one by default. ``arch`` names the model in errors."""
    names = list(conv_layers(model))
    if not names:
        raise UsageError(f"{arch or type(model).__name__} has no Conv2d layers", "filters and feature maps need a convolutional model")
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
    method: str = "integrated-gradients"


class Plots:
    """The plots of one run; data, weights and predictions are loaded once, when first needed."""

    def __init__(self, run: Run, options: Options | None = None, dataset=None):
        self.run = run
        self.options = options or Options()
        if dataset is not None:
            self.dataset = dataset

    def make(self, kinds: list[str], out: Path, replace: bool = True) -> list[Path]:
        """Write the plots into ``out``; with ``replace=False`` (a folder the user named) never over a file."""
        self.check(kinds)
        paths = []
        for kind in kinds:
            name, figure = getattr(self, kind.replace("-", "_"))()
            paths.append(save(figure, out / name, replace))
        return paths

    def taken(self, kinds: list[str], out: Path) -> list[str]:
        """The names of the plots asked for that ``out`` already holds (bad input fails first)."""
        self.check(kinds)
        return [name for name in map(self.file_name, kinds) if (out / name).exists() or (out / name).is_symlink()]

    def file_name(self, kind: str) -> str:
        """The PNG a plot kind is written to; one of other weights than the best names them, beside the best's."""
        split = self.options.split
        weights = f"-{self.options.which}" if self.options.which != "best" and kind in NEEDS_WEIGHTS - {"initial-filters"} else ""
        if kind in ("filters", "initial-filters"):
            return f"{kind}-{pick_layer(self.initial_model if kind == 'initial-filters' else self.model, self.options.layer, self.arch)}{weights}.png"
        if kind == "feature-maps":
            return f"feature-maps-{self.input_image[2]}{weights}.png"
        names = {"confusion": f"confusion-{split}", "wrong": f"wrong-{split}", "saliency": f"saliency-{self.options.method}-{split}"}
        return f"{names.get(kind, kind)}{weights}.png"

    def check(self, kinds: list[str]) -> None:
        """Fail on bad input before any plot is written."""
        if (NEEDS_WEIGHTS - {"initial-filters"}) & set(kinds):
            self.run.weights(self.options.which)
        if "initial-filters" in kinds:
            self.run.weights("initial")
            pick_layer(self.initial_model, self.options.layer, self.arch)
        if {"filters", "feature-maps"} & set(kinds):
            pick_layer(self.model, self.options.layer, self.arch)
        if "feature-maps" in kinds:
            self.input_image  # read and prepared here, once
        if "saliency" in kinds:
            from mnistctl.reading.attributions import check_method

            check_method(self.options.method)
        if "layer-stats" in kinds:
            self.layer_events()

    @property
    def arch(self) -> str:
        """The run's architecture as errors name it: ``tinynet from mnistctl-tinynet`` for a plugin's."""
        return arch_label(self.run)

    @property
    def title(self) -> str:
        arch = self.run.config.get("arch", "?")
        return self.run.name if arch in self.run.name else f"{self.run.name} ({arch})"

    @property
    def weights_title(self) -> str:
        """The title of a plot of the model, naming its weights when they are not the best."""
        which = self.options.which
        return self.title if which == "best" else f"{self.title}, {which} checkpoint"

    @cached_property
    def dataset(self):
        return self.run.dataset()

    @cached_property
    def model(self):
        from mnistctl.models import load_model

        return load_model(self.run, self.options.which)

    @cached_property
    def initial_model(self):
        from mnistctl.models import load_model

        return load_model(self.run, "initial")

    @cached_property
    def split(self):
        return split_predictions.split_data(self.run, self.options.split, self.dataset)

    @cached_property
    def predictions(self):
        return split_predictions.load_or_compute(self.run, self.options.split, self.options.which, self.dataset)

    def curves(self) -> tuple[str, Figure]:
        epochs = self.run.epochs()
        steps_per_epoch = (self.run.last(Kind.START) or {}).get("steps_per_epoch")
        steps = list(self.run.events(Kind.STEP)) if steps_per_epoch else []
        training = not self.run.status().ended
        if not epochs and not steps:  # nothing to draw
            every = self.run.config.get("log_every")
            logs = f"it logs its loss every {every} steps" if isinstance(every, int) else "it has logged no step yet"
            raise RunError(no_epochs(self.run), f"{logs}: plot curves again once it has" if training else "it ended before its first epoch was done")
        if training and not epochs:
            from mnistctl.console import warn

            warn(f"run {self.run.name} is still training its first epoch: the curves show the loss of the steps logged so far")
        reached = max(e["epoch"] for e in epochs) if epochs else math.ceil(steps[-1]["step"] / steps_per_epoch)
        rates = learning_rates(self.run.config, steps_per_epoch, steps, reached) if steps_per_epoch else None
        figure = curves_figure(self.title, epochs, steps, steps_per_epoch, self.run.last(Kind.TEST) or kept_test(self.run), rates,
                               averaged=bool(self.run.config.get("ema")), training=training)
        return self.file_name("curves"), figure

    def confusion(self) -> tuple[str, Figure]:
        from mnistctl.reading.evaluate import metrics

        probs, targets = self.predictions
        matrix = np.array(metrics(probs, targets)["confusion_matrix"])
        subtitle = f"{self.options.split} split, {self.options.which} checkpoint, {int(matrix.sum()):,} images"
        return self.file_name("confusion"), confusion_figure(f"{self.title}: confusion matrix", subtitle, matrix)

    def filters(self, which: str | None = None) -> tuple[str, Figure]:
        model = self.initial_model if which == "initial" else self.model
        layer = pick_layer(model, self.options.layer, self.arch)
        label = "before training" if which == "initial" else f"{self.options.which} checkpoint"
        figure = filters_figure(f"{self.title}: filters of {layer}, {label}", conv_layers(model)[layer].weight.detach().float().numpy())
        return self.file_name("initial-filters" if which else "filters"), figure

    def initial_filters(self) -> tuple[str, Figure]:
        return self.filters("initial")

    @cached_property
    def input_image(self) -> tuple[np.ndarray, str, str, int | None]:
        """The image for feature maps: (uint8 28x28, caption, file stem, true label or None); a user's is read and prepared once."""
        if self.options.image:
            from mnistctl.data.imageprep import load_prepared

            return load_prepared(self.options.image), Path(self.options.image).name, Path(self.options.image).stem, None
        images, labels = self.split
        index = self.options.index
        if not 0 <= index < len(images):
            raise UsageError(f"--index {index} is out of range", f"the {self.options.split} split has {len(images):,} images: use 0 to {len(images) - 1}")
        return images[index].numpy(), f"{self.options.split} image #{index}", f"{self.options.split}-{index}", int(labels[index])

    def feature_maps(self) -> tuple[str, Figure]:
        import torch

        from mnistctl.data import normalize

        image, caption, _, label = self.input_image
        x = normalize(torch.from_numpy(np.ascontiguousarray(image))[None], *self.run.normalization)
        captured = capture_feature_maps(self.model, x)
        probs = torch.softmax(captured.pop("logits").float(), 1)[0].numpy()
        layers = {name: (conv_layers(self.model)[name], output[0].numpy()) for name, output in captured.items()}
        figure = feature_maps_figure(f"{self.weights_title}: feature maps of {caption}", image, probs, label, layers)
        return self.file_name("feature-maps"), figure

    def wrong(self) -> tuple[str, Figure]:
        probs, targets = self.predictions
        images, _ = self.split
        title = f"{self.weights_title}: misclassified {self.options.split} images, most confident first"
        return self.file_name("wrong"), wrong_figure(title, images.numpy(), probs.numpy(), targets.numpy())

    def samples(self) -> tuple[str, Figure]:
        from mnistctl.data import run_split

        dataset, config = self.dataset, self.run.config
        train_idx, val_idx = (i.numpy() for i in run_split(dataset.n_train, config))
        counts = {"validation": np.bincount(dataset.train_labels.numpy()[val_idx], minlength=10)} if len(val_idx) else {}
        labels = dataset.train_labels.numpy()[train_idx]
        counts = {"train": np.bincount(labels, minlength=10), **counts, "test": np.bincount(dataset.test_labels.numpy(), minlength=10)}
        examples = [dataset.train_images.numpy()[train_idx[labels == c][:SAMPLES_PER_CLASS]] for c in range(len(counts["train"]))]
        augment = config.get("augment")
        augmented = as_augmented(examples, augment, config.get("seed", 0)) if augment and any(augment.values()) else None
        title = f"{self.title}: training examples and class distribution"
        return self.file_name("samples"), samples_figure(title, examples, counts, augmented, augment_label(augment))

    def saliency(self) -> tuple[str, Figure]:
        from mnistctl.reading.attributions import explain_figure, scorer

        probs, targets = (t.numpy() for t in self.predictions)
        images = self.split[0].numpy()
        predicted, runner_up = np.argsort(-probs, axis=1, kind="stable")[:, :2].T
        wrong = np.flatnonzero(predicted != targets)
        wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:EXPLAINED_WRONG]
        right = np.flatnonzero(predicted == targets)
        right = right[np.linspace(0, len(right) - 1, EXPLAINED_RIGHT).astype(int)] if len(right) else right
        chosen = np.concatenate([wrong, right]).astype(int)
        columns = [
            [(f"{predicted[i]} (predicted)", int(predicted[i])), (f"{targets[i]} (true)", int(targets[i]))]
            if predicted[i] != targets[i]
            else [(f"{predicted[i]} (predicted)", int(predicted[i])), (f"{runner_up[i]} (2nd guess)", int(runner_up[i]))]
            for i in chosen
        ]
        captions = [f"#{i}: {'an' if targets[i] == 8 else 'a'} {targets[i]} read as {predicted[i]} ({probs[i, predicted[i]]:.0%})" for i in chosen]
        title = f"{self.weights_title}: why it read {self.options.split} images as it did ({len(wrong)} most confident mistakes, {len(right)} right)"
        forward = scorer([(self.model, *self.run.normalization)])
        figure = explain_figure(title, images[chosen], captions, columns, forward, self.options.method)
        return self.file_name("saliency"), figure

    def layer_events(self) -> list[dict[str, Any]]:
        """Kind.LAYERS events in step order, the latest for each step (a resumed run repeats some)."""
        by_step = {e["step"]: e for e in self.run.events(Kind.LAYERS)}
        if not by_step:
            every = self.run.config.get("log_layers")
            hint = f"it logged them every {every} steps and stopped before its first" if every else "train with --log-layers"
            raise RunError(f"run {self.run.name} has no layer statistics", hint)
        return [by_step[s] for s in sorted(by_step)]

    def layer_stats(self) -> tuple[str, Figure]:
        from mnistctl.console import warn

        events = self.layer_events()
        steps_per_epoch = (self.run.last(Kind.START) or {}).get("steps_per_epoch")
        epochs = max((e["epoch"] for e in self.run.epochs()), default=0)
        if len(events) <= FEW_POINTS:
            steps = max(events[-1]["step"], epochs * (steps_per_epoch or 0))
            warn(f"run {self.run.name} logged layer statistics at only {len(events)} of its {steps} steps: "
                 f"for a trend, train with a smaller interval, e.g. --log-layers-every {max(1, steps // 10)}")  # fmt: skip
        span = epochs if steps_per_epoch else None
        return self.file_name("layer-stats"), layer_stats_figure(self.title, events, steps_per_epoch, span)


def as_augmented(examples: list[np.ndarray], augment: dict[str, float], seed: int) -> list[np.ndarray]:
    """The uint8 digits of each class warped by the run's augmentation, with a generator seeded by the run's seed."""
    import torch

    from mnistctl import data

    batch = torch.from_numpy(np.concatenate(examples)).float()[:, None] / 255
    warped = data.augment(batch, generator=torch.Generator().manual_seed(seed), **augment)
    digits = (warped[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return np.split(digits, np.cumsum([len(e) for e in examples])[:-1])
