"""Training throughput on 1 and 2 processes of this machine (DDP over gloo), and what each step all-reduces.

Each configuration trains through ``mnistctl train`` (``--nproc 2`` for two processes) in interleaved rounds;
the figure is the images/s of the second epoch, reduced across ranks, so start-up is left out. One process
gets every core, two processes share them (a thread each on two cores). Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/distributed_speed.py [--arch simplecnn] [--images 12800] [--rounds 3]
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

from mnistctl.models import build_model
from mnistctl.plugins import archs
from mnistctl.runs import Run


def images_per_s(nproc: int, threads: int, args: argparse.Namespace, run_dir: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "mnistctl", "train", "--nproc", str(nproc), "--arch", args.arch, "--epochs", "2",
               "--limit", str(args.images), "--batch-size", str(args.batch_size), "--scheduler", "none", "--val-split", "1000",
               "--precision", "fp32", "--runs-dir", str(run_dir.parent), "--name", run_dir.name, "--quiet"]
    subprocess.run(command, env=env, check=True)
    return Run(run_dir).epochs()[-1]["images_per_s"]


def step_time(arch: str, batch_size: int, steps: int = 20) -> float:
    """Seconds per forward+backward+SGD step of one process (one thread) at this batch."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model({"arch": arch, "arch_options": {}})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    for n in range(steps + 3):
        if n == 3:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def gradient_bytes(arch: str) -> int:
    """What DDP all-reduces per step: every trainable parameter's fp32 gradient."""
    model = build_model({"arch": arch, "arch_options": {}})
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="simplecnn")
    parser.add_argument("--images", type=int, default=12_800, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    variants = {f"1 process x {cores} threads": (1, cores), "1 process x 1 thread": (1, 1), f"2 processes x {max(1, cores // 2)} thread(s)": (2, max(1, cores // 2))}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, (nproc, threads) in variants.items():
                rates[name].append(images_per_s(nproc, threads, args, Path(tmp) / f"r{round_}-p{nproc}-t{threads}"))
    base = statistics.median(rates[next(iter(variants))])
    print(f"{args.arch}, global batch {args.batch_size}, {args.images} images/epoch, {cores} cores, median of {args.rounds} rounds")
    for name, values in rates.items():
        print(f"  {name:<28} {statistics.median(values):>8,.0f} images/s  x{statistics.median(values) / base:.2f}")
    print("\nper step: gradient all-reduce size against one process's compute (1 thread)")
    for arch in archs().names():
        size = gradient_bytes(arch)
        full, half = step_time(arch, args.batch_size), step_time(arch, args.batch_size // 2)
        print(f"  {arch:<14} {size / 1e6:>7.3f} MB   step {full * 1e3:7.1f} ms at batch {args.batch_size}, {half * 1e3:7.1f} ms at {args.batch_size // 2}")


if __name__ == "__main__":
    main()
