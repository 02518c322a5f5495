"""What ``train --log-layers`` costs: the same run with and without layer statistics, interleaved in one process.

1. Whole runs: the training loop of the second epoch (validation excluded), without statistics, at the
   default interval and at every step, interleaved over rounds; medians and their ratios.
2. Single steps: plain steps and logging steps alternated on one model and batch, so that a busy
   machine slows both alike; the median extra cost of a logging step, divided by the interval, is
   the overhead at the default interval.
Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/layer_stats_overhead.py [--arch simplecnn] [--images 12800] [--rounds 3] [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mnistctl.runs import Run
from mnistctl.training import config as trainconfig
from mnistctl.training.layerstats import DEFAULT_EVERY, LayerStats
from mnistctl.training.trainer import Trainer


def training_seconds(arch: str, images: int, batch_size: int, every: int | None, runs_dir: Path) -> float:
    """Seconds in the training loop of the second of two epochs (the first warms up)."""
    config = trainconfig.resolve({"arch": arch, "epochs": 2, "limit": images, "batch_size": batch_size, "scheduler": "none",
                                  "val_split": 1000, "log_layers": every, "precision": "fp32"})  # fmt: skip
    trainer = Trainer(config, runs_dir=runs_dir)
    trainer.run()
    return Run(trainer.run_dir).epochs()[-1]["epoch_time"]


def step_seconds(arch: str, batch_size: int, steps: int) -> tuple[float, float]:
    """Median seconds of a plain step and of a logging step, alternated, as the trainer takes them."""
    import torch.nn.functional as F

    from mnistctl.models import build_model

    torch.manual_seed(0)
    model = build_model(trainconfig.resolve({"arch": arch})).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    stats = LayerStats(model, every=2)
    x = torch.randn(batch_size, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    times: dict[bool, list[float]] = {False: [], True: []}
    for step in range(1, 2 * steps + 11):
        start = time.perf_counter()
        logging = stats.begin(step, epoch=1)
        loss = F.cross_entropy(model(x), y)
        loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats.before_step()
        optimizer.step()
        stats.after_step()
        if step > 10:  # warm-up
            times[logging].append(time.perf_counter() - start)
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="simplecnn")
    parser.add_argument("--images", type=int, default=12_800, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of whole runs (0: none); medians are reported")
    parser.add_argument("--steps", type=int, default=100, help="plain and logging steps each, alternated")
    args = parser.parse_args()
    print(f"{args.arch}, batch {args.batch_size}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    plain, logging = step_seconds(args.arch, args.batch_size, args.steps)
    extra = logging / plain - 1
    print(f"single steps: plain {1000 * plain:.1f} ms, logging {1000 * logging:.1f} ms (+{extra:.0%});"
          f" at every {DEFAULT_EVERY} steps that is +{extra / DEFAULT_EVERY:.2%} of training time", flush=True)
    if args.rounds:
        whole_runs(args)


def whole_runs(args) -> None:
    variants = {"without --log-layers": None, f"--log-layers (every {DEFAULT_EVERY})": DEFAULT_EVERY, "every step": 1}
    results: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, every in variants.items():
                results[label].append(training_seconds(args.arch, args.images, args.batch_size, every, Path(tmp)))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items()), flush=True)
    baseline = statistics.median(results["without --log-layers"])
    print(f"\nwhole runs, {-(-args.images // args.batch_size)} steps/epoch, median of {args.rounds} rounds")
    print(f"{'training loop':<28}{'seconds':>9}{'ratio':>8}")
    for label, seconds in results.items():
        median = statistics.median(seconds)
        print(f"{label:<28}{median:>9.2f}{median / baseline:>7.3f}x")


if __name__ == "__main__":
    main()
