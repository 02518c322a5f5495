"""Why a model read a digit as it did: per-pixel attributions with Captum, for any architecture.

Attributions are taken in pixel space (0 = black, 1 = white) of the class logits, with the
normalisation inside the model, so the baseline is the normalised black image. An ensemble is
explained through its mean logit.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mnistctl.errors import UsageError

METHODS = ("integrated-gradients", "saliency", "gradient-shap", "occlusion")
DEFAULT_METHOD = "integrated-gradients"
READING = {
    "integrated-gradients": "integrated gradients from a black image: red pixels pushed towards the class, blue away from it",
    "saliency": "saliency (the gradient): brightening a red pixel would push towards the class, a blue one away from it",
    "gradient-shap": "gradient SHAP from a black image: red pixels pushed towards the class, blue away from it",
    "occlusion": "occlusion (4×4 patches blacked out): red patches pushed towards the class, blue away from it",
}
BATCH = 64


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UsageError(f"unknown --method '{method}'", f"choose from: {', '.join(METHODS)}")
    return method


def scorer(members: Sequence[tuple[Any, float, float]]):
    """A module from images in [0, 1] (N, 1, 28, 28) to the mean logits of (model, mean, std) members, in eval mode."""
    import torch
    from torch import nn

    class Scorer(nn.Module):
        def __init__(self):
            super().__init__()
            self.models = nn.ModuleList(model for model, _, _ in members)
            self.stats = [(mean, std) for _, mean, std in members]

        def forward(self, x):
            logits = [model((x - mean) / std).float() for model, (mean, std) in zip(self.models, self.stats)]
            return torch.stack(logits).mean(0)

    return Scorer().eval()


def attribute(forward, images: np.ndarray, targets: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Attributions (N, K, 28, 28) of uint8 images (N, 28, 28) towards classes ``targets`` (N, K), in batches."""
    import torch

    check_method(method)
    targets = np.asarray(targets).reshape(len(images), -1)
    n, k = targets.shape
    device = next(forward.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(255).unsqueeze(1)
    x = x.repeat_interleave(k, dim=0)
    t = torch.from_numpy(targets.reshape(-1).astype(np.int64))
    forward.eval()
    out = []
    for start in range(0, len(x), BATCH):
        chunk = x[start : start + BATCH].to(device).requires_grad_(True)
        out.append(_attribute(forward, chunk, t[start : start + BATCH].to(device), method).detach().float().cpu())
    maps = torch.cat(out) if out else torch.empty(0, 1, *images.shape[1:])
    return maps.reshape(n, k, *images.shape[1:]).numpy()


def _attribute(forward, x, target, method: str):
    import torch
    from captum import attr

    black = torch.zeros_like(x)
    if method == "integrated-gradients":
        return attr.IntegratedGradients(forward).attribute(x, baselines=black, target=target, n_steps=32, internal_batch_size=512)
    if method == "saliency":
        return attr.Saliency(forward).attribute(x, target=target, abs=False)
    if method == "gradient-shap":
        with torch.random.fork_rng(devices=[]):  # the same noise every time, without touching the caller's RNG
            torch.manual_seed(0)
            return attr.GradientShap(forward).attribute(x, baselines=black[:1], target=target, n_samples=24, stdevs=0.05)
    return attr.Occlusion(forward).attribute(x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0.0, target=target, perturbations_per_eval=32)


def explain_figure(title: str, images: np.ndarray, captions: list[str], columns: list[list[tuple[str, int]]], forward, method: str):
    """The attribution figure: each image beside its maps towards the (label, class) pairs of its row."""
    from mnistctl.reading.figures.attributions import attributions_figure

    width = max((len(c) for c in columns), default=0)
    targets = np.array([[cls for _, cls in row] + [row[-1][1]] * (width - len(row)) for row in columns])
    maps = attribute(forward, images, targets, method)
    rows = [(image, caption, [(label, maps[i, j]) for j, (label, _) in enumerate(row)]) for i, (image, caption, row) in enumerate(zip(images, captions, columns))]
    return attributions_figure(title, READING[method], rows)


def explain_predictions(predictions: list, members: list, path, top: int = 3, method: str = DEFAULT_METHOD, limit: int = 8):
    """``predict --explain``: a PNG of each predicted image (up to ``limit``) and its attributions for its top classes."""
    from mnistctl.reading.figures import save

    shown = predictions[:limit]
    if not shown:
        return None
    forward = scorer([(m.model, m.mean, m.std) for m in members])
    images = np.stack([p.image for p in shown])
    columns = [[(f"{d} ({q:.0%})", d) for d, q in p.top[:top]] for p in shown]
    captions = [_short(p.source) for p in shown]
    title = f"Why {' + '.join(m.name for m in members)} read {'this digit' if len(shown) == 1 else 'these digits'} as {'it' if len(members) == 1 else 'they'} did"
    if len(predictions) > limit:
        title += f" (first {limit} of {len(predictions)} images)"
    return save(explain_figure(title, images, captions, columns, forward, method), path, replace=False)


def _short(source: str, width: int = 24) -> str:
    from pathlib import Path

    name = Path(source).name or source
    return name if len(name) <= width else "…" + name[-(width - 1) :]
