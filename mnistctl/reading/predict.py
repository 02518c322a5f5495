"""Digits of image files: one run or an ensemble, prepared the MNIST way, predicted in batches.

A bad image (missing, not an image, truncated, blank, too large) becomes a :class:`Failure`
in its place; the other images are still predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from mnistctl.data import imageprep
from mnistctl.errors import MnistctlError, NotFoundError
from mnistctl.runs import Run

STDIN = "-"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}


@dataclass
class Member:
    """One model of an ensemble, with the normalisation its run was trained with."""

    name: str
    model: Any
    mean: float
    std: float


@dataclass
class Prediction:
    source: str
    digit: int
    probability: float
    top: list[tuple[int, float]]
    image: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        top = [{"digit": d, "probability": p} for d, p in self.top]
        return {"image": self.source, "digit": self.digit, "probability": self.probability, "top_k": top}


@dataclass
class Failure:
    source: str
    error: MnistctlError

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.source, "error": self.error.message, "hint": self.error.hint}


def member_from_run(run: Run, which: str = "best", device=None) -> Member:
    from mnistctl.models import load_model

    return _member(run, load_model(run, which), device)


def member_from_checkpoint(path: str | Path, device=None) -> Member:
    """A weights file at ``<run>/weights/<name>.safetensors``, built with its run's config."""
    from mnistctl.models import load_model
    from mnistctl.runs import resolve_checkpoint

    run, which = resolve_checkpoint(str(path))
    return _member(run, load_model(run, which), device, name=f"{run.name}:{which}")


def _member(run: Run, model, device, name: str | None = None) -> Member:
    mean, std = run.normalization
    return Member(name or run.name, model.to(device) if device is not None else model, mean, std)


def expand(inputs: Iterable[str]) -> list[str]:
    """Files as given, folders as the image files inside them (sorted, recursively); ``-`` is standard input."""
    sources: list[str] = []
    for item in inputs:
        path = Path(item)
        if item != STDIN and path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            sources.extend(found or [item])
        else:
            sources.append(item)
    return sources


def load_one(source: str, raw: bool, stdin: BinaryIO | None):
    """The prepared uint8 (28, 28) image of one source."""
    if source == STDIN:
        if stdin is None:
            raise NotFoundError("standard input is not available", "pass a file instead of -")
        return imageprep.load_prepared(imageprep.read_stdin(stdin), raw, name="stdin")
    if Path(source).is_dir():
        raise NotFoundError(f"{source} holds no images", f"put {', '.join(sorted(IMAGE_SUFFIXES))} files in it")
    return imageprep.load_prepared(source, raw)


def ensemble_proba(members: list[Member], images):
    """Probabilities averaged over the members, each with its own normalisation."""
    from mnistctl.models import predict_proba

    probs = [predict_proba(m.model, images, m.mean, m.std) for m in members]
    return sum(probs[1:], probs[0]) / len(probs)


def predict(
    sources: list[str],
    members: list[Member],
    top_k: int = 3,
    raw: bool = False,
    stdin: BinaryIO | None = None,
) -> list[Prediction | Failure]:
    """Prepare every source, predict all good ones in batches, and keep the input order."""
    import numpy as np
    import torch

    results: list[Prediction | Failure | None] = []
    good, images = [], []
    for i, source in enumerate(sources):
        try:
            images.append(load_one(source, raw, stdin))
            good.append(i)
            results.append(None)
        except MnistctlError as exc:
            results.append(Failure("stdin" if source == STDIN else source, exc))
    if good:
        probs = ensemble_proba(members, torch.from_numpy(np.stack(images)))
        k = min(top_k, probs.shape[1])
        values, digits = probs.topk(k, dim=1)
        for row, i in enumerate(good):
            top = [(int(d), float(p)) for d, p in zip(digits[row], values[row])]
            source = "stdin" if sources[i] == STDIN else sources[i]
            results[i] = Prediction(source, top[0][0], top[0][1], top, images[row])
    return results


def save_inputs(results: list[Prediction | Failure], folder: str | Path) -> list[Path]:
    """Write each prepared 28x28 image as a PNG named after its source; repeated names get -2, -3..."""
    from PIL import Image

    from mnistctl.fsutil import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, taken = [], set()
    for result in results:
        if not isinstance(result, Prediction):
            continue
        stem = Path(result.source).stem or "image"
        name, n = f"{stem}.png", 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}.png"
        taken.add(name)
        with atomic_path(folder / name) as tmp:
            Image.fromarray(result.image).save(tmp, format="PNG")
        written.append(folder / name)
    return written
