"""The PyTorch MNIST example's pipeline, the baseline the benchmarks measure against in the same run.

torchvision's MNIST dataset (ToTensor + Normalize per image) through a DataLoader, read from the
local IDX files (never downloaded): unpacked into a temporary torchvision layout.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mnistctl import data


class ExampleNet(nn.Module):
    """The network of pytorch/examples mnist/main.py: two 3x3 convs, one pooling, fc 128."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = self.dropout2(F.relu(self.fc1(torch.flatten(self.dropout1(x), 1))))
        return F.log_softmax(self.fc2(x), dim=1)


def textbook_order(model: nn.Module) -> nn.Module:
    """Undo mnistctl's pooling-before-ReLU (same function, less work): the baseline runs layers as usually written."""
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for i in range(len(seq) - 1):
                if isinstance(seq[i], nn.MaxPool2d) and isinstance(seq[i + 1], nn.ReLU):
                    seq[i], seq[i + 1] = nn.ReLU(), seq[i]
    return model


def unpack_for_torchvision(target: Path) -> Path:
    """The four IDX files, uncompressed, in torchvision's MNIST/raw layout under target."""
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in data.resolve(download=False).values():
        content = path.read_bytes()
        (raw / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(content) if path.suffix == ".gz" else content)
    return target


def loader(root: Path, train: bool, batch_size: int, images: int | None = None, num_workers: int = 0):
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    dataset = datasets.MNIST(str(root), train=train, download=False, transform=transform)
    if images is not None:
        dataset = Subset(dataset, range(images))
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, num_workers=num_workers)


def example_epoch(root: Path, seed: int = 1) -> dict[str, float]:
    """One epoch of the example as it runs on a CPU (batch 64, Adadelta 1.0), then its test pass."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    model = ExampleNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    model.train()
    for x, y in loader(root, True, 64):
        optimizer.zero_grad()
        F.nll_loss(model(x), y).backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader(root, False, 1000):
            correct += int((model(x).argmax(1) == y).sum())
    return {"seconds": time.perf_counter() - start, "test_acc": correct / 10_000}
