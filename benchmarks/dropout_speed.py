"""Training throughput of the best preset's strided-bn with torch's dropout and with mnistctl's, interleaved.

Both train through the real engine with the best preset's augmentation and weight decay; they
differ only in how the dropout mask is drawn (`mnistctl.layers.Dropout`). Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/dropout_speed.py [--images 3200] [--rounds 3] [--arch strided-bn]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from mnistctl.layers import Dropout
from mnistctl.training.config import DEFAULT_AUGMENT, PRESETS
from train_speed import mnistctl_images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3200, help="training images per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--arch", default="strided-bn", help="an architecture built with mnistctl.layers.Dropout")
    args = parser.parse_args()
    settings = {"arch": args.arch, "augment": DEFAULT_AUGMENT, "weight_decay": PRESETS["best"]["weight_decay"]}
    ours = Dropout.forward
    rates: dict[str, list[float]] = {"torch's dropout": [], "mnistctl's dropout": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, forward in (("torch's dropout", torch.nn.Dropout.forward), ("mnistctl's dropout", ours)):
                Dropout.forward = forward
                rates[label].append(mnistctl_images_per_s(args.images, 128, Path(tmp) / "runs", **settings))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()), flush=True)
    Dropout.forward = ours
    base, new = (statistics.median(v) for v in rates.values())
    print(f"\n{args.arch}, batch 128, augmented, {torch.get_num_threads()} threads: torch's dropout {base:,.0f} images/s,"
          f" mnistctl's {new:,.0f} images/s ({new / base:.2f}x)")


if __name__ == "__main__":
    main()
