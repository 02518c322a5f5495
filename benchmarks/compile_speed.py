"""Does torch.compile pay for itself here? Eager against compiled training steps, interleaved in one process.

The step is mnistctl's: channels-last, bf16 autocast where the CPU has bf16 arithmetic, SGD with
Nesterov momentum. Prints the compile time (the first two compiled steps less two eager ones;
the first round compiles cold, later rounds hit inductor's on-disk cache) and the steady images/s
of each, and how many images a run must train for a cold compile to pay.

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/compile_speed.py [--arch strided-bn] [--set channels=16,32] [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mnistctl import data
from mnistctl.models import build_model
from mnistctl.registry import split_pair
from mnistctl.training.config import resolve_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="simplecnn")
    parser.add_argument("--set", action="append", default=[], help="architecture option KEY=VALUE (repeatable)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    dataset = data.load()
    images, labels = dataset.train_images, dataset.train_labels
    mean, std = dataset.stats()
    bf16 = resolve_precision("auto", torch.device("cpu")) == "bf16"
    options = dict(split_pair(item) for item in args.set)
    generator = torch.Generator().manual_seed(0)

    def build(compiled: bool):
        torch.manual_seed(0)
        from mnistctl.plugins import archs
        from mnistctl.registry import parse_options

        spec = archs().get(args.arch)
        model = build_model({"arch": args.arch, "arch_options": parse_options(spec, options)}).to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        return (torch.compile(model) if compiled else model), optimizer

    def step(model, optimizer) -> None:
        idx = torch.randint(0, len(images), (args.batch_size,), generator=generator)
        x = data.normalize(images[idx], mean, std).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    first: dict[str, list[float]] = {"eager": [], "compiled": []}
    rates: dict[str, list[float]] = {"eager": [], "compiled": []}
    for round_ in range(args.rounds):
        for kind in ("eager", "compiled"):
            torch._dynamo.reset()
            model, optimizer = build(kind == "compiled")
            start = time.perf_counter()
            step(model, optimizer)
            step(model, optimizer)
            first[kind].append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(args.steps):
                step(model, optimizer)
            rates[kind].append(args.steps * args.batch_size / (time.perf_counter() - start))
            print(f"round {round_ + 1} {kind}: first two steps {first[kind][-1]:.1f} s, then {rates[kind][-1]:,.0f} images/s", flush=True)
    eager, compiled = statistics.median(rates["eager"]), statistics.median(rates["compiled"])
    compile_s = first["compiled"][0] - first["eager"][0]
    warm = statistics.median(first["compiled"][1:]) - statistics.median(first["eager"][1:]) if args.rounds > 1 else compile_s
    print(f"\n{args.arch} {options or ''} batch {args.batch_size}, {'bf16' if bf16 else 'fp32'}, {torch.get_num_threads()} threads")
    print(f"eager {eager:,.0f} images/s, compiled {compiled:,.0f} images/s ({compiled / eager:.2f}x), compile time {compile_s:.1f} s cold, {warm:.1f} s cached")
    if compiled > eager:
        saved_per_image = 1 / eager - 1 / compiled
        print(f"compile pays after {compile_s / saved_per_image:,.0f} training images ({compile_s / saved_per_image / 55_000:.1f} epochs of 55,000)")
    else:
        print("compile never pays: the compiled step is not faster")


if __name__ == "__main__":
    main()
