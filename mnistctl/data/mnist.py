"""MNIST-format data sets: IDX files, where to find them, checksums, and the whole set in memory."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from mnistctl.data import cache
from mnistctl.errors import DataError, DataFolderError
from mnistctl.fsutil import atomic_path

if TYPE_CHECKING:
    import torch

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_MD5_NAMES = {digest: name for name, digest in MNIST_MD5.items()}
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
ENV_VAR = "MNISTCTL_DATA_DIR"
GZIP_MAGIC = b"\x1f\x8b"
DEFLATE_MAX_RATIO = 1032  # the most deflate inflates one byte to
MISSING_HINT = (
    "put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (optionally .gz) in a folder and pass --data-dir DIR or set MNISTCTL_DATA_DIR"
)


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an IDX file into an array of its declared type and shape."""
    shape, dtype, header, expected = _declared(raw, name)
    if len(raw) != expected:
        raise DataError(
            f"{name} has {len(raw)} bytes but its header {shape} needs {expected}",
            "the file is truncated or corrupt; download it again",
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _declared(raw: bytes, name: str) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """The shape and type an IDX file's header declares, the header's length and the file's length."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{name} is not an IDX file (bad magic number {raw[:4].hex()})", "check that the file is not corrupt")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name} is truncated inside its header", "download the file again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    return shape, dtype, header, header + math.prod(shape) * dtype.itemsize


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzipped when the name ends in .gz)."""
    big_endian = np.dtype(array.dtype).newbyteorder(">")
    codes = {np.dtype(v): k for k, v in IDX_DTYPES.items()}
    if big_endian not in codes:
        raise DataError(f"IDX cannot store {array.dtype} arrays", "use uint8, int8, int16, int32, float32 or float64")
    body = bytes([0, 0, codes[big_endian], array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    body += array.astype(big_endian).tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(body, mtime=0) if str(path).endswith(".gz") else body)


def locate(folder: Path) -> dict[str, Path] | None:
    """The four files in a flat folder or in torchvision's MNIST/raw layout, or None."""
    return next((found for found in map(_files_in, _layouts(folder)) if len(found) == len(FILES)), None)


def _layouts(folder: Path) -> tuple[Path, Path]:
    return folder, folder / "MNIST" / "raw"


def _files_in(base: Path) -> dict[str, Path]:
    """Those of the four files ``base`` holds, gzipped or not."""
    found = {}
    for key, name in FILES.items():
        for candidate in (base / name, base / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
    return found


def _lacking(folder: Path) -> str:
    """What a named folder in which ``locate`` found no set lacks, for its error."""
    if not folder.is_dir():
        if folder.exists():
            return "is not a folder"
        return "is a symbolic link that leads nowhere (to a missing folder, or round a loop)" if folder.is_symlink() else "does not exist"
    found = max(map(_files_in, _layouts(folder)), key=len)
    if not found:
        return "does not hold the four MNIST IDX files"
    missing = [name for key, name in FILES.items() if key not in found]
    return f"holds {len(found)} of the four MNIST IDX files: {', '.join(missing)} missing"


def cache_dir() -> Path:
    return cache.root() / "mnist"


def resolve(data_dir: str | Path | None = None, download: bool = True) -> dict[str, Path]:
    """Find the files: --data-dir, then MNISTCTL_DATA_DIR, then the user cache, then a download."""
    for origin, folder in (("--data-dir", data_dir), (ENV_VAR, os.environ.get(ENV_VAR))):
        if folder:
            found = locate(Path(folder).expanduser())
            if found is None:
                raise DataFolderError(f"{origin} {folder} {_lacking(Path(folder).expanduser())}", MISSING_HINT)
            return found
    found = locate(cache_dir())
    if found is not None:
        return found
    if not download:
        raise DataError("MNIST was not found", MISSING_HINT)
    return _download(cache_dir())


def _download(target: Path) -> dict[str, Path]:
    """torchvision's download, made in a temporary folder and moved into ``target`` once all four files are in:
    a download cut short leaves no partial file for the next run to find and refuse."""
    import tempfile

    from torchvision.datasets import MNIST

    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as tmp:
            MNIST(tmp, download=True)
            for path in (locate(Path(tmp)) or {}).values():
                os.replace(path, target / path.name)
    except Exception as exc:
        reason = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), type(exc).__name__)
        raise DataError(f"MNIST was not found and could not be downloaded ({reason[:160]})", MISSING_HINT) from exc
    found = locate(target)
    if found is None:
        raise DataError("the MNIST download did not produce the four IDX files", MISSING_HINT)
    return found


@dataclass
class Dataset:
    """All images in one uint8 tensor (train first, then test) with their labels."""

    images: "torch.Tensor"
    labels: "torch.Tensor"
    n_train: int
    folder: str
    name: str
    md5: dict[str, str] = field(default_factory=dict)

    @property
    def train_images(self):
        return self.images[: self.n_train]

    @property
    def train_labels(self):
        return self.labels[: self.n_train]

    @property
    def test_images(self):
        return self.images[self.n_train :]

    @property
    def test_labels(self):
        return self.labels[self.n_train :]

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the training pixels, scaled to [0, 1]."""
        import torch

        counts = torch.bincount(self.train_images.flatten(), minlength=256).double()
        levels = torch.arange(256, dtype=torch.float64) / 255
        mean = (counts * levels).sum() / counts.sum()
        variance = (counts * (levels - mean) ** 2).sum() / (counts.sum() - 1)
        return round(mean.item(), 4), round(variance.sqrt().item(), 4)


def load(data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """The set from its IDX files, checked against checksum listings beside them; kept decoded in :mod:`cache`."""
    import torch

    paths = resolve(data_dir, download)
    folder = str(paths["train_images"].parent.resolve())
    cached = cache.read(paths)
    if cached is not None and _whole(*cached):
        arrays, facts = cached
        _check_names(paths, facts["md5"])
        images, labels = torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"])
        return Dataset(images, labels, facts["n_train"], folder, facts["name"], facts["md5"])
    arrays, md5 = {}, {}
    for key, path in paths.items():
        stored, raw = _read_idx(path)
        md5[FILES[key]] = hashlib.md5(raw).hexdigest()
        _verify_listed(path, stored, raw)
        arrays[key] = parse_idx(raw, str(path))
    _check_names(paths, md5)
    _check_shapes(arrays)
    is_mnist = md5 == MNIST_MD5
    images = np.concatenate([arrays["train_images"], arrays["test_images"]]).astype(np.uint8)
    labels = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
    dataset = Dataset(torch.from_numpy(images), torch.from_numpy(labels), len(arrays["train_images"]), folder, "mnist" if is_mnist else "custom", md5)
    cache.write(paths, {"images": images, "labels": labels}, {"n_train": dataset.n_train, "name": dataset.name, "md5": md5})
    return dataset


def _whole(arrays: dict[str, np.ndarray], facts) -> bool:
    """Whether a cache entry holds a set as :func:`load` stores one: an entry damaged or made otherwise is read again from the files."""
    images, labels = arrays["images"], arrays["labels"]
    return (
        isinstance(facts, dict) and type(facts.get("n_train")) is int and isinstance(facts.get("name"), str)
        and isinstance(facts.get("md5"), dict) and sorted(facts["md5"]) == sorted(FILES.values())
        and all(isinstance(digest, str) for digest in facts["md5"].values())
        and images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (28, 28)
        and labels.dtype == np.int64 and labels.shape == images.shape[:1] and 0 < facts["n_train"] < len(labels)
        and 0 <= labels.min() and labels.max() <= 9
    )


def _read_idx(path: Path) -> tuple[bytes, bytes]:
    """A data file's bytes as stored and as IDX (gunzipped by content: a download may be renamed). No more is read or
    inflated than its header declares, so a gzip bomb or a huge file is refused at the cost of the set it claims to be."""
    with open(path, "rb") as f:
        if f.read(2) != GZIP_MAGIC:
            f.seek(0)
            raw = _idx_from(f, str(path), os.fstat(f.fileno()).st_size)
            return raw, raw
        f.seek(0)
        stored = f.read()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(stored)) as inflated:
            raw = _idx_from(inflated, str(path), None, DEFLATE_MAX_RATIO * len(stored))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc})", "download it again") from None
    return stored, raw


def _idx_from(stream: BinaryIO, name: str, size: int | None, most: int | None = None) -> bytes:
    """An IDX file's bytes from ``stream``, whose length is ``size`` (None: unknown, and can be no more than ``most``)."""
    raw = stream.read(4)
    raw += stream.read(4 * raw[3]) if len(raw) == 4 else b""
    shape, _, _, expected = _declared(raw, name)
    if size is not None and size != expected:
        raise DataError(f"{name} has {size} bytes but its header {shape} needs {expected}", "the file is truncated or corrupt; download it again")
    if most is not None and expected > most:
        raise DataError(f"{name} is too short to hold the {expected} bytes its header {shape} needs", "the file is truncated or corrupt; download it again")
    raw += stream.read(expected - len(raw) + 1)
    if len(raw) > expected:
        raise DataError(f"{name} holds more than the {expected} bytes its header {shape} needs", "the file is corrupt; download it again")
    return raw


def _verify_listed(path: Path, stored: bytes, raw: bytes) -> None:
    """Check the file against any MD5SUMS* / SHA256SUMS* listing beside it."""
    for listing in sorted(path.parent.glob("*SUMS*")):
        algorithm = "sha256" if "SHA256" in listing.name.upper() else "md5"
        for line in listing.read_text(errors="replace").splitlines():
            digest, _, listed = line.strip().partition(" ")
            listed = listed.strip().lstrip("*")
            if listed == path.name:
                content = stored
            elif listed + ".gz" == path.name:
                content = raw
            else:
                continue
            if hashlib.new(algorithm, content).hexdigest() != digest.lower():
                raise DataError(
                    f"{path} does not match its checksum in {listing.name}",
                    "the file is corrupt or was replaced; download it again",
                )


def _check_names(paths: dict[str, Path], md5: dict[str, str]) -> None:
    """A file of MNIST's under another of its names: the training and test files swapped, say."""
    for key, path in paths.items():
        held = MNIST_MD5_NAMES.get(md5.get(FILES[key]), FILES[key])
        if held != FILES[key]:
            raise DataError(f"{path} holds MNIST's {held}", "the files were renamed or swapped: give each file the name of what it holds")


def _check_shapes(arrays: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or labels.dtype.kind not in "iu":
            raise DataError(
                f"{split} files hold {images.dtype} images and {labels.dtype} labels",
                "images must be unsigned bytes, IDX type 0x08, and labels integers",
            )
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{split} images have shape {images.shape}, expected N x 28 x 28", "use a 28x28 data set")
        if labels.ndim != 1 or len(labels) != len(images):
            labelled = f"{len(labels)} labels" if labels.ndim == 1 else f"labels of shape {labels.shape}"
            raise DataError(f"{split} has {len(images)} images but {labelled}", "the files do not belong together")
        if len(labels) == 0:
            raise DataError(f"the {split} files hold no images", "use a data set with at least one image per split")
        if labels.min() < 0 or labels.max() > 9:
            raise DataError(f"{split} labels run from {labels.min()} to {labels.max()}", "labels must be the classes 0-9")


def split_indices(n: int, val_size: int, seed: int):
    """Seeded train/validation indices carved from the training set."""
    import torch

    if not 0 <= val_size < n:
        raise DataError(f"a validation split of {val_size} does not fit {n} training images", "the run was made with more training images: pass its data with --data-dir")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values


def run_split(n: int, config: dict):
    """A run's training and validation indices: its seeded split, cut to the number of training images it
    recorded (a run resumed on other data keeps its size), or else to its ``limit``."""
    train, val = split_indices(n, config.get("val_split") or 0, config["seed"])
    count = config.get("data", {}).get("n_train") or config.get("limit")
    return train[: count or None], val


@functools.lru_cache(maxsize=1)
def load_cached(folder: str) -> Dataset:
    """Read once per process, for commands that look at several runs."""
    return load(folder, download=False)
