"""Prediction speed of ``mnistctl predict``: a folder of photo-like PNGs, and one image from a cold start.

Both are timed as a user sees them, as a fresh ``mnistctl`` process (Python start and torch
import included). A run is needed only for its architecture: without --run an untrained one of
--arch is written to a temporary folder (speed does not depend on the weights). Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/predict_speed.py [--images 1000] [--run RUN] [--arch simplecnn]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mnistctl import data, runs
from mnistctl.fsutil import write_json
from mnistctl.models import build_model
from mnistctl.runs import checkpoint


def photo(digit: np.ndarray, rng) -> Image.Image:
    """An MNIST digit as dark ink on a 240x240 light page, off centre, in uneven light, RGB."""
    size = int(rng.integers(70, 140))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    page = np.zeros((240, 240), np.float32)
    top, left = rng.integers(0, 240 - size, 2)
    page[top : top + size, left : left + size] = ink
    light = 0.6 + 0.3 * np.linspace(0, 1, 240)[None, :]
    gray = light * (1 - 0.85 * page) + rng.normal(0, 0.03, page.shape)
    return Image.fromarray((np.clip(gray, 0, 1) * 255).astype(np.uint8)).convert("RGB")


def untrained_run(root: Path, arch: str, dataset) -> Path:
    config = {"name": "bench", "arch": arch, "arch_options": {}, "seed": 0, "val_split": 0,
              "data": {"dir": dataset.folder, "mean": 0.1307, "std": 0.3081}}
    path = runs.create(root, "bench")
    write_json(path / "config.json", config)
    checkpoint.save_model(path / "weights" / "best.safetensors", build_model(config))
    return path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--run", default=None, help="run to predict with (default: an untrained --arch run)")
    parser.add_argument("--arch", default="simplecnn")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mnistctl = [sys.executable, "-m", "mnistctl"]
    dataset = data.load()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i, digit in enumerate(dataset.test_images[: args.images].numpy()):
            photo(digit, rng).save(folder / f"{i:05d}.png")
        run = args.run or str(untrained_run(Path(tmp) / "runs", args.arch, dataset))
        one = folder / "00000.png"
        shutil.copy(one, Path(tmp) / "one.png")
        single = [timed([*mnistctl, "predict", str(Path(tmp) / "one.png"), "--run", run]) for _ in range(args.rounds)]
        many = [timed([*mnistctl, "predict", str(folder), "--run", run, "--json"]) for _ in range(args.rounds)]
        help_start = [timed([*mnistctl, "predict", "--help"]) for _ in range(args.rounds)]
    single_s, many_s, start_s = statistics.median(single), statistics.median(many), statistics.median(help_start)
    print(f"model: {run}")
    print(f"one image, cold start (python + torch import + model + prediction): {single_s * 1000:.0f} ms")
    print(f"{args.images} PNGs in one call: {many_s:.2f} s, {args.images / many_s:.0f} images/s "
          f"({args.images / (many_s - single_s):.0f} images/s past the start-up)")
    print(f"mnistctl predict --help (no torch): {start_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
