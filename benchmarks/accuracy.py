"""Test accuracy and wall time of a preset over seeds, next to the PyTorch MNIST example, in one run.

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/accuracy.py [fast|best|default] [--seeds 0 1 2] [--train-args "..."]

Each seed is `mnistctl train --preset P --seed S` in its own process, timed from process start to
exit (what a user waits for at the prompt). The model is chosen on the validation split (with
``--train-args "--val-split 0"``, all 60,000 images train and the last epoch is kept); the test
accuracy is only reported. With several seeds, the ensemble of their runs is `mnistctl compare`'s.
The example runs one epoch in this process, interleaved, as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"fast": (0.990, 0.989), "best": (0.997, 0.997), "default": (0.993, 0.993)}


def train(preset: str, seed: int, runs_dir: Path, extra: list[str]) -> dict:
    name = f"{preset}-s{seed}"
    command = [sys.executable, "-m", "mnistctl", "train", "--seed", str(seed), "--runs-dir", str(runs_dir), "--name", name, "--quiet", *extra]
    if preset != "default":
        command += ["--preset", preset]
    start = time.perf_counter()
    if subprocess.run(command).returncode:
        sys.exit(f"benchmark stopped: mnistctl train --seed {seed} failed with the error above")
    seconds = time.perf_counter() - start
    summary = json.loads((runs_dir / name / "summary.json").read_text())
    return {"name": name, "seconds": seconds, "load": os.getloadavg()[0], **summary}


def ensemble(names: list[str], runs_dir: Path) -> float | None:
    if len(names) < 2:
        return None
    result = subprocess.run([sys.executable, "-m", "mnistctl", "compare", *names, "--runs-dir", str(runs_dir), "--json"],
                            check=True, capture_output=True, text=True)
    found = json.loads(result.stdout).get("ensemble")
    return found["test_acc"] if found else None


def main() -> None:
    from reference import example_epoch, unpack_for_torchvision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="fast", choices=list(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--no-example", action="store_true", help="skip the example's epoch (for the long presets)")
    parser.add_argument("--train-args", default="", help='more train options for every seed, e.g. "--val-split 0"')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or Path(tmp) / "runs"
        rows = []
        for seed in args.seeds:
            rows.append(train(args.preset, seed, runs_dir, shlex.split(args.train_args)))
            row = rows[-1]
            print(f"seed {seed}: test {row['test_acc']:.2%} (best epoch {row['best_epoch']} of {row['epochs_run']}{' on validation' if row['best_val_acc'] is not None else ', no validation'}), "
                  f"{row['seconds']:.1f}s from start to exit, {row['wall_time']:.1f}s training, load average {row['load']:.1f}", flush=True)
        ens = ensemble([r["name"] for r in rows], runs_dir)
        example = None if args.no_example else example_epoch(unpack_for_torchvision(Path(tmp) / "tv"))
    accs, secs = [r["test_acc"] for r in rows], [r["seconds"] for r in rows]
    mean_target, worst_target = TARGETS[args.preset]
    load = os.getloadavg()[0]
    print(f"\npreset {args.preset} {args.train_args}".rstrip() + f", seeds {args.seeds}, {os.cpu_count()} cores, load average {load:.1f} at the end")
    print(f"test accuracy: mean {statistics.mean(accs):.2%} (target {mean_target:.1%}), worst {min(accs):.2%} (target {worst_target:.1%})")
    print(f"start to exit: mean {statistics.mean(secs):.1f}s, worst {max(secs):.1f}s")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory of a training process: {peak:,.0f} MB")
    if ens is not None:
        print(f"ensemble of the {len(rows)} runs: test {ens:.2%}")
    if example:
        ratio = example["seconds"] / statistics.mean(secs)
        print(f"PyTorch example, one epoch in this run: {example['seconds']:.1f}s, test {example['test_acc']:.2%}, "
              f"load average {os.getloadavg()[0]:.1f} -> a whole {args.preset} run takes {1 / ratio:.2f}x the example's first epoch")


if __name__ == "__main__":
    main()
