"""Test accuracy of the presets, with model selection on the validation split only.

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/accuracy.py [default fast best] [--runs-dir DIR]

Each preset trains a full run (minutes to an hour on a 2-core CPU) and prints its test accuracy
and wall time. Targets: default simplecnn >= 99.3%, best (deep-dropout + augmentation) >= 99.6%,
fast >= 99.0% in the shortest time.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from mnistctl.training import config as trainconfig
from mnistctl.training.trainer import Trainer

PRESETS = {"default": None, "fast": "fast", "best": "best"}
TARGETS = {"default": 0.993, "fast": 0.990, "best": 0.996}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--runs-dir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for label in args.presets:
            config = trainconfig.resolve({"seed": args.seed, "name": f"bench-{label}"}, preset=PRESETS[label])
            start = time.perf_counter()
            summary = Trainer(config, runs_dir=args.runs_dir or tmp).run()
            total = time.perf_counter() - start
            rows.append((label, config, summary, total))
            print(f"{label}: {config['arch']} test acc {summary['test_acc']:.2%} in {summary['wall_time']:.0f}s training ({total:.0f}s in all)", flush=True)
    print(f"\n{'preset':<9}{'arch':<14}{'epochs':>7}{'test acc':>10}{'target':>8}{'train s':>9}{'total s':>9}{'img/s':>8}")
    for label, config, summary, total in rows:
        mark = "ok" if summary["test_acc"] >= TARGETS[label] else "MISS"
        print(
            f"{label:<9}{config['arch']:<14}{summary['epochs_run']:>7}{summary['test_acc']:>9.2%} {TARGETS[label]:>6.1%} {mark:<2}"
            f"{summary['wall_time']:>7.0f}{total:>9.0f}{summary['images_per_s']:>8,.0f}"
        )


if __name__ == "__main__":
    main()
