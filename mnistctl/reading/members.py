"""The models predict runs: onnxruntime on a run's ONNX export when it has a current one, PyTorch otherwise.

A run carries an export at ``<run>/exports/<which>.onnx`` once ``mnistctl export`` has written
it; the export records the SHA-256 of the weights it was made from, and is used only while those
weights are unchanged. An export can also be given alone, by its path, wherever it was copied:
:func:`open_export` takes it only if its inputs, outputs and metadata are those ``mnistctl export``
writes. The onnxruntime path never imports torch, which is most of a cold start. Either way a
:class:`Member` maps uint8 images (N, 28, 28) in MNIST form to probabilities (N, 10).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnistctl.errors import MnistctlError, NotFoundError, UsageError
from mnistctl.runs import Run

WEIGHTS_DIGEST = "mnistctl.weights_sha256"
TORCH_BATCH = 2048
ONNX_BATCH = 128


@dataclass
class Member:
    """One model of an ensemble: a name and a function from images to probabilities."""

    name: str
    proba: Callable[[np.ndarray], np.ndarray]
    engine: str
    model: Any = None  # the PyTorch model and its normalisation, on the torch engine only (for attributions)
    mean: float | None = None
    std: float | None = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.proba(images)


@dataclass
class Export:
    """An ONNX file ``mnistctl export`` wrote, opened for onnxruntime, with the metadata it records."""

    path: Path
    session: Any
    metadata: dict[str, str]

    @property
    def digest(self) -> str | None:
        return self.metadata.get(WEIGHTS_DIGEST)


TAKES, GIVES = "images: uint8 (N, 28, 28)", "probs: float32 (N, 10)"
NOT_AN_EXPORT = "pass a .onnx file written by mnistctl export, or the run itself"


def open_export(path: str | Path) -> Export:
    """The export at ``path``, refused in one line when it is missing, not an ONNX model, or not one mnistctl wrote."""
    from mnistctl.fsutil import NotRegular, open_regular

    path = Path(path)
    try:
        with open_regular(path) as f:
            data = f.read()
    except FileNotFoundError:
        raise NotFoundError(f"no ONNX file {path}", "check the path; mnistctl export RUN -o model.onnx writes one") from None
    except NotRegular:
        raise UsageError(f"{path} is not a regular file", NOT_AN_EXPORT) from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({exc.strerror or exc})", "check its permissions") from None
    try:
        session = _session(data)
    except ImportError:
        raise MnistctlError(f"predicting with {path} needs onnxruntime, which is not installed", "pip install 'mnistctl[onnx]'") from None
    except Exception as exc:  # onnxruntime's error for a file it cannot parse: shown with MNISTCTL_DEBUG=1
        raise UsageError(f"{path} is not an ONNX model, or it is damaged", NOT_AN_EXPORT) from exc
    takes, gives = _signature(session.get_inputs()), _signature(session.get_outputs())
    if (takes, gives) != (TAKES, GIVES):
        raise UsageError(f"{path} is not a model mnistctl export wrote: it takes {takes} and gives {gives}, not {TAKES} and {GIVES}", NOT_AN_EXPORT)
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    said = metadata.get("mnistctl.input", ""), metadata.get("mnistctl.output", "")
    if "mnistctl.run" not in metadata or "uint8 (N, 28, 28)" not in said[0] or "(N, 10)" not in said[1]:
        raise UsageError(f"{path} is not a model mnistctl export wrote: it has no mnistctl metadata (its input's form, its classes' order)", NOT_AN_EXPORT)
    return Export(path, session, metadata)


def _signature(arguments: list) -> str:
    """``images: uint8 (N, 28, 28)``: each argument's name, type and shape, a dimension of any size as N."""
    types = {"float": "float32", "double": "float64", "float16": "float16"}
    shown = []
    for argument in arguments:
        kind = argument.type.removeprefix("tensor(").removesuffix(")")
        dims = "?" if argument.shape is None else ", ".join(str(d) if isinstance(d, int) else "N" for d in argument.shape)
        shown.append(f"{argument.name}: {types.get(kind, kind)} ({dims})")
    return ", ".join(shown) or "nothing"


def weights_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def current_session(run: Run, which: str) -> Any | None:
    """An onnxruntime session on the run's ONNX export of ``which``, if it was made from the weights on disk now."""
    from mnistctl.reading.export import default_path

    path = default_path(run, which)
    if not path.is_file():
        return None
    try:
        session = _session(path)
        recorded = session.get_modelmeta().custom_metadata_map.get(WEIGHTS_DIGEST)
    except Exception:  # noqa: BLE001 -- no onnxruntime or a damaged export: only a missed shortcut, PyTorch still predicts
        return None
    return session if recorded == weights_digest(run.weights(which)) else None


def load(run: Run, which: str = "best", device: str = "auto", name: str | None = None, onnx: bool = True) -> Member:
    """The fastest member for the run: its current ONNX export on the CPU, else (or without ``onnx``) the PyTorch model."""
    name = name or run.name
    session = current_session(run, which) if onnx and device in ("auto", "cpu") else None
    return onnx_member(session, name) if session is not None else torch_member(run, which, device, name)


def onnx_member(session: Any, name: str) -> Member:
    def proba(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if len(images) <= ONNX_BATCH:
            return session.run(["probs"], {"images": images})[0]
        return np.concatenate([session.run(["probs"], {"images": images[i : i + ONNX_BATCH]})[0] for i in range(0, len(images), ONNX_BATCH)])

    return Member(name, proba, "onnxruntime")


def torch_member(run: Run, which: str, device: str, name: str) -> Member:
    import torch

    from mnistctl.models import load_model, pick_device, predict_proba

    target = pick_device(device)
    model = load_model(run, which).to(target)
    mean, std = run.normalization

    def proba(images: np.ndarray) -> np.ndarray:
        return predict_proba(model, torch.from_numpy(np.ascontiguousarray(images)), mean, std, TORCH_BATCH, target).numpy()

    return Member(name, proba, "torch", model, mean, std)


def _session(model: str | Path | bytes) -> Any:
    """An onnxruntime session on a model's file or bytes, on one thread that sleeps between batches instead of spinning
    (the workers need the cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"])
