"""What ``train --log-layers`` costs: the same run with and without layer statistics, interleaved in one process.

Training time is the sum of the epochs' training loops (validation excluded); the ratio against the
run without statistics is the figure. Every-step logging is shown too, as the cost of one logging step.
Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/layer_stats_overhead.py [--arch simplecnn] [--images 25600] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from mnistctl.runs import Run
from mnistctl.training import config as trainconfig
from mnistctl.training.layerstats import DEFAULT_EVERY
from mnistctl.training.trainer import Trainer


def training_seconds(arch: str, images: int, batch_size: int, every: int | None, runs_dir: Path) -> float:
    """Seconds in the training loop of the second of two epochs (the first warms up)."""
    config = trainconfig.resolve({"arch": arch, "epochs": 2, "limit": images, "batch_size": batch_size, "scheduler": "none",
                                  "val_split": 1000, "log_layers": every, "precision": "fp32"})  # fmt: skip
    trainer = Trainer(config, runs_dir=runs_dir)
    trainer.run()
    return Run(trainer.run_dir).epochs()[-1]["epoch_time"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="simplecnn")
    parser.add_argument("--images", type=int, default=25_600, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    variants = {"without --log-layers": None, f"--log-layers (every {DEFAULT_EVERY})": DEFAULT_EVERY, "every step": 1}
    results: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, every in variants.items():
                results[label].append(training_seconds(args.arch, args.images, args.batch_size, every, Path(tmp)))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items()), flush=True)
    steps = -(-args.images // args.batch_size)
    baseline = statistics.median(results["without --log-layers"])
    print(f"\n{args.arch}, batch {args.batch_size}, {steps} steps/epoch, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'training':<28}{'seconds':>9}{'ratio':>8}")
    for label, seconds in results.items():
        median = statistics.median(seconds)
        print(f"{label:<28}{median:>9.2f}{median / baseline:>7.3f}x")
    every_step = statistics.median(results["every step"]) / baseline - 1
    print(f"\none logging step costs {every_step:.0%} of a step more; at every {DEFAULT_EVERY} that is {every_step / DEFAULT_EVERY:.1%}")


if __name__ == "__main__":
    main()
