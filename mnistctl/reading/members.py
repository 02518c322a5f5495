"""The models predict runs: onnxruntime on a run's ONNX export when it has a current one, PyTorch otherwise.

A run carries an export at ``<run>/exports/<which>.onnx`` once ``mnistctl export`` has written
it; the export records the SHA-256 of the weights it was made from, and is used only while those
weights are unchanged. The onnxruntime path never imports torch, which is most of a cold start.
Either way a :class:`Member` maps uint8 images (N, 28, 28) in MNIST form to probabilities (N, 10).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


def _session(path: str | Path) -> Any:
    """An onnxruntime session on one thread that sleeps between batches instead of spinning (the workers need the cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
