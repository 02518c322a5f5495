"""Digits of image files: one run or an ensemble, prepared the MNIST way, predicted as they stream.

Sources are read in chunks, in order. With more than one chunk, a pool of worker processes (one
per core) decodes and prepares them, a few chunks ahead, while this process predicts the chunks
already prepared, so results start at once and memory stays flat however large the folder. A
chunk holds about :data:`CHUNK_SECONDS` of work, sized from what the chunks so far cost: many
small images, or a few photos, so that every core stays busy to the end. A bad image (missing, not
an image, truncated, blank, too large) becomes a :class:`Failure` in its place; the other images
are still predicted. What an image's reading warns of (a picture of several frames read from its
first) travels with its chunk and is warned here, once per image, before its result.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mnistctl.allocator import keep_freed_memory
from mnistctl.console import warn
from mnistctl.cpus import usable_cores
from mnistctl.data import fastdecode, imagefile, imageprep
from mnistctl.data.imagefile import IMAGE_SUFFIXES
from mnistctl.errors import DataError, MnistctlError, NotFoundError
from mnistctl.reading.members import Export, Member, load, onnx_member
from mnistctl.runs import Run, shown_names

STDIN = "-"
CHUNK = 16
MAX_CHUNK = 1024
CHUNK_SECONDS = 0.03
AHEAD = 2


@dataclass
class Prediction:
    source: str
    digit: int
    probability: float
    top: list[tuple[int, float]]
    image: Any = field(default=None, repr=False)
    saved: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        top = [{"digit": d, "probability": p} for d, p in self.top]
        found = {"image": self.source, "digit": self.digit, "probability": self.probability, "top_k": top}
        return found | ({"prepared": str(self.saved)} if self.saved else {})


@dataclass
class Failure:
    source: str
    error: MnistctlError

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.source, "error": self.error.message, "hint": self.error.hint}


def label(run: Run, which: str = "best", name: str | None = None) -> str:
    """The name a run's weights are shown by: the run's name (or ``name``), with the weights when they are not the best."""
    name = name or run.name
    return name if which == "best" else f"{name} ({which})"


def labels(chosen: list[tuple[Run, str]]) -> list[str]:
    """Each model's label; runs of the same name from different folders are named by their paths, as compare does
    (one run's best and last weights are one run: named by its name)."""
    found = {run.path.resolve(): run for run, _ in chosen}
    names = dict(zip(found, shown_names(list(found.values()))))
    return [label(run, which, names[run.path.resolve()]) for run, which in chosen]


def member_from_run(run: Run, which: str = "best", device: str = "auto", onnx: bool = True, name: str | None = None) -> Member:
    return load(run, which, device, name=name or label(run, which), onnx=onnx)


def is_export(ref: str) -> bool:
    """A path to an ONNX file, given where a run is accepted."""
    return Path(ref).suffix.lower() == ".onnx" and not Path(ref).is_dir()


def export_label(export: Export, shown: str) -> str:
    """``digits.onnx (fast, best, from epoch 3 of 10)``: the file as given, and the run and weights it records."""
    from mnistctl.reading.export import Trained

    return f"{shown} ({export.metadata['mnistctl.run']}, {Trained.recorded(export.metadata)})"


def member_from_export(export: Export, name: str) -> Member:
    """An export predicts as it is: it takes the prepared uint8 images, normalises them and gives the digits 0-9 in order."""
    return onnx_member(export.session, name)


def member_from_checkpoint(path: str | Path, device: str = "auto", onnx: bool = True) -> Member:
    """A weights file at ``<run>/weights/<name>.safetensors``, built with its run's config."""
    from mnistctl.runs import resolve_checkpoint

    run, which = resolve_checkpoint(str(path))
    return load(run, which, device, name=f"{run.name}:{which}", onnx=onnx)


def expand(inputs: Iterable[str]) -> Iterator[str]:
    """Files as given, folders as the image files inside them (sorted, recursively, walked lazily); ``-`` is standard input."""
    for item in inputs:
        item = str(item)
        if item != STDIN and Path(item).is_dir():
            found = False
            for path in _walk(Path(item)):
                found = True
                yield path
            if not found:
                yield item
        else:
            yield item


def _walk(folder: Path, seen: set[tuple[int, int]] | None = None) -> Iterator[str]:
    """Image files under ``folder``; a folder reached again (a symbolic link to a folder above it) is skipped,
    and so is an entry that cannot be read."""
    seen = set() if seen is None else seen
    try:
        found = folder.stat()
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    if (found.st_dev, found.st_ino) in seen:
        return
    seen.add((found.st_dev, found.st_ino))
    for entry in entries:
        try:
            is_dir = entry.is_dir()
            is_image = not is_dir and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file()
        except OSError:
            continue
        if is_dir:
            yield from _walk(Path(entry.path), seen)
        elif is_image:
            yield entry.path


def ensemble_proba(members: list[Member], images: np.ndarray) -> np.ndarray:
    """Probabilities averaged over the members."""
    probs = [member(images) for member in members]
    return sum(probs[1:], probs[0]) / len(probs)


def predict(
    sources: Iterable[str],
    members: list[Member] | Callable[[], list[Member]],
    top_k: int = 3,
    raw: bool = False,
    stdin: BinaryIO | None = None,
    jobs: int = 0,
) -> Iterator[Prediction | Failure]:
    """Prepare every source and predict the good ones chunk by chunk, yielding results in input order.

    ``members`` may be a function that loads them: it is called once the workers have their first
    chunks, so the models load while the images are prepared.
    """
    loaded: list[Member] = []

    def load() -> None:
        loaded.extend(members() if callable(members) else members)

    for chunk in _prepared(sources, raw, stdin, jobs, load):
        probs = ensemble_proba(loaded, chunk.images) if len(chunk.images) else np.zeros((0, 10), np.float32)
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        digits, chances = order.tolist(), np.take_along_axis(probs, order, axis=1).tolist()
        row = 0
        for position, source in enumerate(chunk.names):
            for message in chunk.warnings.get(position, ()):
                warn(message)
            error = chunk.errors.get(position)
            if error is not None:
                yield Failure(source, error)
                continue
            top = list(zip(digits[row], chances[row]))
            yield Prediction(source, top[0][0], top[0][1], top, chunk.images[row])
            row += 1


@dataclass
class Chunk:
    """Sources prepared together: their names, the uint8 (n, 28, 28) images of the good ones in order, the errors
    and the warnings by position."""

    names: list[str]
    images: np.ndarray
    errors: dict[int, MnistctlError]
    seconds: float
    warnings: dict[int, list[str]] = field(default_factory=dict)


def _prepared(sources: Iterable[str], raw: bool, stdin: BinaryIO | None, jobs: int, started: Callable[[], None]) -> Iterator[Chunk]:
    """Prepared chunks in order; in worker processes when there is more than one chunk, a few chunks ahead of the model.

    ``started`` is called once, when the workers (if any) have their first chunks, before any chunk is yielded.
    """
    keep_freed_memory()
    payloads = (_payload(source, stdin) for source in sources)
    head = list(islice(payloads, CHUNK + 1))
    payloads, sizer = chain(head, payloads), _Sizer()
    jobs = jobs or usable_cores()
    if len(head) <= CHUNK or jobs < 2:
        started()
        while batch := list(islice(payloads, sizer.size())):
            yield sizer.learn(_prepare_chunk(batch, raw))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(), initializer=_start_worker)
    pending: deque = deque()

    def submit() -> None:
        if batch := list(islice(payloads, sizer.size())):
            pending.append(pool.submit(_prepare_chunk, batch, raw))

    try:
        for _ in range(AHEAD * jobs):
            submit()
        started()
        while pending:
            try:
                chunk = sizer.learn(pending.popleft().result())
            except BrokenProcessPool:  # a worker killed (by the system, short of memory): its images would never come
                raise DataError("a worker process preparing the images was killed", "predict fewer or smaller images at a time, or pass --jobs 1") from None
            submit()
            yield chunk
    except BaseException:  # an error, Ctrl-C or SIGTERM, or the caller stopped reading: the workers end now
        workers = list((pool._processes or {}).values())  # what Python 3.14's terminate_workers() ends
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        raise
    pool.shutdown()


def _start_worker() -> None:
    fastdecode.mute_stderr()
    keep_freed_memory()


class _Sizer:
    """Chunk sizes: :data:`CHUNK` images until their cost is known, then about :data:`CHUNK_SECONDS` of work each."""

    def __init__(self) -> None:
        self.images, self.seconds = 0, 0.0

    def size(self) -> int:
        if not self.images:
            return CHUNK
        return round(min(MAX_CHUNK, max(1, CHUNK_SECONDS * self.images / max(self.seconds, 1e-9))))

    def learn(self, chunk: Chunk) -> Chunk:
        self.images += len(chunk.names)
        self.seconds += chunk.seconds
        return chunk




def _payload(source: str, stdin: BinaryIO | None) -> tuple[str, Any]:
    """(name, path or bytes, or the error that stops it); standard input is read here, in this process."""
    if source != STDIN:
        return source, source
    try:
        if stdin is None:
            raise NotFoundError("standard input is not available", "pass a file instead of -")
        return "stdin", imagefile.read_stdin(stdin)
    except MnistctlError as exc:
        return "stdin", exc


def _prepare_chunk(chunk: list[tuple[str, Any]], raw: bool) -> Chunk:
    start = time.perf_counter()
    names, images, errors, warned = [], [], {}, {}
    for position, (name, source) in enumerate(chunk):
        names.append(name)
        with imagefile.held_warnings() as said:
            prepared = _prepare_one(name, source, raw)
        if said:
            warned[position] = said
        if isinstance(prepared, np.ndarray):
            images.append(prepared)
        else:
            errors[position] = prepared
    stacked = np.stack(images) if images else np.zeros((0, imageprep.SIDE, imageprep.SIDE), np.uint8)
    return Chunk(names, stacked, errors, time.perf_counter() - start, warned)


def _prepare_one(name: str, source: Any, raw: bool) -> Any:
    """The prepared uint8 (28, 28) image, or the error that stopped it."""
    if isinstance(source, MnistctlError):
        return source
    try:
        return imageprep.load_prepared(source, raw, name=name)
    except NotFoundError as exc:
        if isinstance(source, str) and Path(source).is_dir():
            return NotFoundError(f"{source} holds no images", f"put {', '.join(sorted(IMAGE_SUFFIXES))} files in it")
        return exc
    except MnistctlError as exc:
        return exc
    except Exception as exc:  # a decoder failing on one odd file: that image alone fails
        if os.environ.get("MNISTCTL_DEBUG") == "1":
            raise
        reason = (str(exc).strip().splitlines() or [""])[0]
        return DataError(f"{name} could not be read ({type(exc).__name__}: {reason})", "save it again as PNG or JPEG; MNISTCTL_DEBUG=1 shows the traceback")


class InputSaver:
    """Writes each prepared 28x28 image as a PNG in ``folder``, named after its source, never over an existing file.

    A name that is taken (by an earlier image of this call, another file, or an input itself) becomes
    ``<stem>.prepared.png``, then ``<stem>.prepared-2.png``, ...
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.written: list[Path] = []
        self.renamed = 0

    def save(self, result: Prediction) -> Path:
        from PIL import Image

        from mnistctl.fsutil import write_first_free

        stem = Path(result.source).stem or "image"
        result.saved = write_first_free(self.folder, _names(stem), lambda tmp: Image.fromarray(result.image).save(tmp, format="PNG"))
        self.renamed += result.saved.name != f"{stem}.png"
        self.written.append(result.saved)
        return result.saved


def _names(stem: str) -> Iterator[str]:
    yield f"{stem}.png"
    yield _fitting(stem, ".prepared.png")
    n = 2
    while True:
        yield _fitting(stem, f".prepared-{n}.png")
        n += 1


NAME_BYTES = 255  # the longest file name most file systems take


def _fitting(stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem shortened (whole characters) when the name would be too long for a file system."""
    while len(os.fsencode(stem + suffix)) > NAME_BYTES and stem:
        stem = stem[:-1]
    return stem + suffix
