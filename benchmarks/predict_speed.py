"""Speed, accuracy and memory of ``mnistctl predict``, each beside a baseline measured in the same run.

Every mnistctl figure is a fresh ``mnistctl predict`` process, timed as a user sees it (Python
start and imports included), and so is the Pillow baseline; each rate is the best of ``--rounds``
(the cold start, the median). Three kinds of input, all made from MNIST test digits:

- photo-sized: ~500x800 pages (half PNG, half JPEG) in uneven light with sensor noise, and as
  many such pages lying on a darker desk that shows on one to four sides; the baseline is merely
  decoding the same files to full resolution with Pillow in a process pool on all cores;
- small: each digit cropped tight to its ink, dark on white, upscaled 4x (at most 128 px a
  side), and the same with a white margin; target 2,000 images/s;
- MNIST form: 28x28 PNGs, light on dark, read without --raw; target 10,000 images/s.

Also: accuracy on each kind beside the raw MNIST accuracy of the same model and digits, one
image from a cold start beside ``import torch``, and the peak memory (all processes) over a
folder of 10,000 images. The run needs an ONNX export for the fast cold start; one is written
if missing. Usage:

    MNISTCTL_DATA_DIR=../shared/data/mnist python benchmarks/predict_speed.py --run RUN [--photos 1000] [--small 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

MNISTCTL = [sys.executable, "-m", "mnistctl"]


def photo_page(digit: np.ndarray, rng, desk: bool = False) -> Image.Image:
    """A digit as dark ink on a ~500x800 page, off centre, in uneven light, with sensor noise, RGB;
    with ``desk``, the page lies on a darker desk that shows on one to four sides."""
    height, width = int(rng.integers(760, 840)), int(rng.integers(480, 540))
    size = int(rng.integers(150, 320))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    page = np.zeros((height, width), np.float32)
    top, left = int(rng.integers(0, height - size)), int(rng.integers(0, width - size))
    page[top : top + size, left : left + size] = ink
    reflectance = 1 - 0.85 * page
    if desk:
        reflectance = on_desk(reflectance, rng)
    height, width = reflectance.shape
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.55 + 0.35 * (np.cos(angle) * xx + np.sin(angle) * yy)
    gray = light * reflectance
    rgb = gray[..., None] * np.array([1.0, 0.95, 0.88], np.float32) + rng.normal(0, 0.03, (height, width, 3)).astype(np.float32)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))


def on_desk(page: np.ndarray, rng) -> np.ndarray:
    """The page on a desk of a darker shade, showing 40-140 px wide on a random one to four of its sides."""
    sides = rng.permutation(4)[: rng.integers(1, 5)]
    top, bottom, left, right = (int(rng.integers(40, 140)) if side in sides else 0 for side in range(4))
    desk = np.full((page.shape[0] + top + bottom, page.shape[1] + left + right), rng.uniform(0.1, 0.45), np.float32)
    desk[top : top + page.shape[0], left : left + page.shape[1]] = page
    return desk


def cropped(digit: np.ndarray, margin: bool) -> Image.Image:
    rows, cols = np.nonzero(digit)
    ink = Image.fromarray(255 - digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    ink = ink.resize((ink.width * 4, ink.height * 4), Image.Resampling.BICUBIC)
    if not margin:
        return ink
    pad = max(ink.size) // 8
    page = Image.new("L", (ink.width + 2 * pad, ink.height + 2 * pad), 255)
    page.paste(ink, (pad, pad))
    return page


def write_sets(root: Path, digits: np.ndarray, labels: np.ndarray, photos: int, small: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folders = {kind: root / kind for kind in ("photo", "desk", "tight", "margin", "mnist")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(photos):
        photo_page(digits[i], rng).save(folders["photo"] / f"{i:05d}-{labels[i]}.{'png' if i % 2 else 'jpg'}", quality=90)
    for i in range(photos):
        photo_page(digits[i], rng, desk=True).save(folders["desk"] / f"{i:05d}-{labels[i]}.{'png' if i % 2 else 'jpg'}", quality=90)
    for i in range(small):
        for kind in ("tight", "margin"):
            cropped(digits[i], kind == "margin").save(folders[kind] / f"{i:05d}-{labels[i]}.{'png' if i % 2 else 'jpg'}", quality=90)
    for i in range(len(digits)):
        Image.fromarray(digits[i]).save(folders["mnist"] / f"{i:05d}-{labels[i]}.png")
    return folders


POOL = """
import os, sys
from concurrent.futures import ProcessPoolExecutor
from PIL import Image

def decode(path):
    with Image.open(path) as image:
        image.load()
        return image.size[0]

with ProcessPoolExecutor(os.cpu_count()) as pool:
    list(pool.map(decode, sys.stdin.read().splitlines(), chunksize=16))
"""


def decode_pool(files: list[str]) -> float:
    """Seconds for a fresh Python process to decode ``files`` with Pillow in a process pool on all cores,
    timed as mnistctl is, from start to exit (its workers fork from an interpreter that holds only Pillow)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", POOL], input="\n".join(files), capture_output=True, text=True, check=True)
    return time.perf_counter() - start


class PeakMemory(threading.Thread):
    """Samples the summed resident memory of a process and its children (Linux /proc)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, False

    def run(self) -> None:
        while not self.done:
            self.peak = max(self.peak, sum(map(_rss, _tree(self.pid))))
            time.sleep(0.02)


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid] + [p for child in children for p in _tree(int(child))]


def _rss(pid: int) -> int:
    try:
        line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        return 0


def predict(paths: list[str], run: str, memory: bool = False) -> tuple[float, list[dict], int]:
    """Wall time, the JSON lines and (with ``memory``) peak resident bytes of one mnistctl predict call."""
    start = time.perf_counter()
    process = subprocess.Popen([*MNISTCTL, "predict", *paths, "--run", run, "--jsonl"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    sampler = PeakMemory(process.pid) if memory else None
    if sampler:
        sampler.start()
    out = process.stdout.read()
    process.wait()
    elapsed = time.perf_counter() - start
    if sampler:
        sampler.done = True
        sampler.join()
    return elapsed, [json.loads(line) for line in out.splitlines()], sampler.peak if sampler else 0


def accuracy(results: list[dict]) -> float:
    return float(np.mean([r.get("digit") == int(Path(r["image"]).stem.split("-")[1]) for r in results]))


def raw_accuracy(run: str, digits, labels) -> float:
    from mnistctl.models import load_model, predict_proba
    from mnistctl.runs import resolve

    found = resolve(run)
    probs = predict_proba(load_model(found), digits, *found.normalization)
    return float((probs.argmax(1) == labels).float().mean())


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run (an ONNX export is written into it if missing)")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from mnistctl import data
    from mnistctl.reading.export import default_path
    from mnistctl.runs import resolve

    run = str(resolve(args.run).path)
    if not default_path(resolve(run), "best").is_file():
        subprocess.run([*MNISTCTL, "export", run], check=True, stdout=subprocess.DEVNULL)
    dataset = data.load()
    digits, labels = dataset.test_images[:10_000], dataset.test_labels[:10_000]
    raw = {n: raw_accuracy(run, digits[:n], labels[:n]) for n in {args.photos, args.small, 10_000}}
    rounds = range(args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_sets(Path(tmp), digits.numpy(), labels.numpy(), args.photos, args.small)
        files = {kind: sorted(str(p) for p in folder.iterdir()) for kind, folder in folders.items()}
        one = files["photo"][0]
        cold = statistics.median(timed([*MNISTCTL, "predict", one, "--run", run]) for _ in rounds)
        torch_import = statistics.median(timed([sys.executable, "-c", "import torch"]) for _ in rounds)
        print(f"model: {run} ({os.cpu_count()} cores)\n")
        print(f"one image, cold start, end to end: {cold:.2f} s   (import torch alone: {torch_import:.2f} s; target <= 1.5 s)\n")
        print(f"{'input':<34} {'images':>7} {'mnistctl img/s':>15} {'baseline img/s':>15} {'ratio':>6} {'accuracy':>9} {'raw MNIST':>9}")
        for kind, label, target in (("photo", "photo-sized ~500x800 PNG+JPEG", None), ("desk", "such pages lying on a desk", None), ("tight", "small, cropped tight (<=128 px)", 2000),
                                    ("margin", "small, with a margin (<=128 px)", 2000), ("mnist", "MNIST form 28x28, no --raw", 10_000)):
            paths = [str(folders[kind])]
            seconds, results = min((predict(paths, run)[:2] for _ in rounds), key=lambda r: r[0])
            baseline = target or len(files[kind]) / min(decode_pool(files[kind]) for _ in rounds)
            name = "target" if target else "Pillow decode pool"
            speed = len(files[kind]) / seconds
            print(f"{label:<34} {len(files[kind]):>7} {speed:>15,.0f} {baseline:>15,.0f} {speed / baseline:>5.2f}x "
                  f"{accuracy(results):>8.1%} {raw[len(files[kind])]:>8.1%}   (baseline: {name})")
            if target:
                pool = len(files[kind]) / min(decode_pool(files[kind]) for _ in rounds)
                print(f"{'':<34} {'':>7} {'':>15} {pool:>15,.0f} {speed / pool:>5.2f}x   (baseline: Pillow decode pool)")
        mixed = [str(folders["tight"]), str(folders["margin"]), str(folders["mnist"])]
        count = sum(len(files[k]) for k in ("tight", "margin", "mnist"))
        _, _, peak = predict(mixed, run, memory=True)
        print(f"\npeak memory, all processes, {count:,} images (small and MNIST form): {peak / 2**20:,.0f} MB (target < 1,024 MB)")


if __name__ == "__main__":
    main()
