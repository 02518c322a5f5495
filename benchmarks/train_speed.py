"""Training throughput of simplecnn: mnistctl's pipeline against the PyTorch example's DataLoader pipeline.

Also scratch-cnn (hand-written NumPy layers) through the same engine, beside simplecnn.
All run interleaved, on the same machine: the ratios are the figures that hold on a shared
machine. The reference runs in a fresh interpreter each round, with glibc's malloc defaults as the
example has them (mnistctl's training changes them for its own process). Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/train_speed.py [--images 12800] [--rounds 3] [--only LABEL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mnistctl.plugins import archs
from mnistctl.runs import Run
from mnistctl.training import config as trainconfig
from mnistctl.training.trainer import Trainer
from reference import loader, textbook_order, unpack_for_torchvision


def mnistctl_images_per_s(images: int, batch_size: int, runs_dir: Path, **settings) -> float:
    """Images/s of the second of two epochs through the real engine (the first warms up)."""
    config = trainconfig.resolve({"arch": "simplecnn", "epochs": 2, "limit": images, "batch_size": batch_size,
                                  "scheduler": "none", "val_split": 1000, "log_every": 10_000, **settings})
    trainer = Trainer(config, runs_dir=runs_dir)
    trainer.run()
    return Run(trainer.run_dir).epochs()[-1]["images_per_s"]


def reference_images_per_s(root: Path, images: int, batch_size: int) -> float:
    """simplecnn fed by the PyTorch example's pipeline: torchvision dataset, ToTensor + Normalize, DataLoader."""
    train_loader = loader(root, True, batch_size, images, num_workers=1)
    torch.manual_seed(0)
    model = textbook_order(archs().get("simplecnn").factory())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    rate = 0.0
    for _ in range(2):
        model.train()
        start, seen = time.perf_counter(), 0
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
        rate = seen / (time.perf_counter() - start)
    return rate


def reference_in_fresh_process(root: Path, images: int, batch_size: int) -> float:
    code = f"from pathlib import Path; from train_speed import reference_images_per_s as r; print(r(Path({str(root)!r}), {images}, {batch_size}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12_800, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--only", action="append", help="measure only the variants whose label contains this (repeatable)")
    args = parser.parse_args()
    variants = {
        "mnistctl fp32 NCHW": {"channels_last": False, "precision": "fp32"},
        "mnistctl fp32 channels_last": {"precision": "fp32"},
        "mnistctl bf16 channels_last": {"precision": "bf16"},
        "scratch-cnn defaults": {"arch": "scratch-cnn"},
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if any(part in k for part in args.only)}
    results: dict[str, list[float]] = {"reference DataLoader": [], **{k: [] for k in variants}}
    with tempfile.TemporaryDirectory() as tmp:
        root = unpack_for_torchvision(Path(tmp) / "tv")
        for round_ in range(args.rounds):
            results["reference DataLoader"].append(reference_in_fresh_process(root, args.images, args.batch_size))
            for label, settings in variants.items():
                results[label].append(mnistctl_images_per_s(args.images, args.batch_size, Path(tmp) / "runs", **settings))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in results.items()), flush=True)
    baseline = statistics.median(results["reference DataLoader"])
    auto = trainconfig.resolve_precision("auto", torch.device("cpu"))
    print(f"\nsimplecnn, batch {args.batch_size}, {args.images:,} images/epoch, torch {torch.__version__}, {torch.get_num_threads()} threads (simplecnn unless named),"
          f" --precision auto picks {auto} here, load average {os.getloadavg()[0]:.1f}")
    print(f"{'pipeline':<29}{'images/s':>10}{'ratio':>8}")
    for label, rates in results.items():
        rate = statistics.median(rates)
        print(f"{label:<29}{rate:>10,.0f}{rate / baseline:>7.2f}x")
    defaults = f"mnistctl {auto} channels_last"
    if {"scratch-cnn defaults", defaults} <= set(results):
        scratch, simple = (statistics.median(results[k]) for k in ("scratch-cnn defaults", defaults))
        print(f"\nscratch-cnn / simplecnn (both mnistctl defaults): {scratch / simple:.2f}x")


if __name__ == "__main__":
    main()
