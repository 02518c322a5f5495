"""How fast ``mnistctl draw`` reads a drawing, per architecture, against a bare forward pass.

    python benchmarks/draw_latency.py [--reads 200] [--threads 1 2]

For every registered architecture (untrained: speed does not depend on the weights) it times,
on the CPU, a bare ``model(x)`` on one normalised image (the baseline), a full read (centring,
normalisation, softmax) and a read with the first conv layer's feature maps, with 1 and with the
default number of torch threads. The pad needs at least 10 reads per second.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mnistctl.data import normalize
from mnistctl.models import build_model
from mnistctl.plugins import archs
from mnistctl.tui.pixels import SIDE, stroke
from mnistctl.tui.reader import Reader


def median_ms(fn, reads: int) -> float:
    fn()
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()])
    args = parser.parse_args()
    drawing = np.zeros((SIDE, SIDE), np.float32)
    stroke(drawing, (5.0, 14.0), (23.0, 14.0))
    print(f"{'arch':<14}{'threads':>8}{'forward ms':>12}{'read ms':>9}{'ratio':>7}{'+maps ms':>10}{'ratio':>7}{'reads/s':>9}")
    for name in archs().names():
        model = build_model({"arch": name}).eval()
        reader = Reader([(model, 0.1307, 0.3081)], [name])
        x = normalize(torch.from_numpy(reader.model_input(drawing))[None], 0.1307, 0.3081)
        for threads in dict.fromkeys(args.threads):
            torch.set_num_threads(threads)

            def forward():
                with torch.inference_mode():
                    model(x)

            base = median_ms(forward, args.reads)
            read = median_ms(lambda: reader.read(drawing), args.reads)
            maps = median_ms(lambda: reader.read(drawing, maps=True), args.reads)
            print(f"{name:<14}{threads:>8}{base:>12.2f}{read:>9.2f}{read / base:>7.2f}{maps:>10.2f}{maps / base:>7.2f}{1000 / maps:>9.0f}")


if __name__ == "__main__":
    main()
