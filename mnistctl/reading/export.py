"""ONNX export of a run's model, checked against onnxruntime on the whole test set.

The exported graph takes what :mod:`mnistctl.imageprep` produces, uint8 images (N, 28, 28)
in MNIST form, and returns probabilities (N, 10): the run's normalisation and the softmax
are inside it, so a user of the file needs nothing else. The batch axis is dynamic.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mnistctl.errors import MnistctlError, OutputAppeared, RunError, UsageError
from mnistctl.runs import Run

FORMATS = ("onnx",)
OPSET = 20  # onnxruntime 1.17 or later
INPUT = "images: uint8 (N, 28, 28), pixels 0-255, white digit on black in MNIST form (fitted in 20x20, centred by mass); normalised inside the model"
OUTPUT = "probs: float32 (N, 10), the probability of each digit, 0 to 9 in order"
TOLERANCE = 1e-4
BATCH = 1000


@dataclass
class Parity:
    """How the exported model agrees with PyTorch."""

    images: int
    mismatches: int
    max_difference: float

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.max_difference < TOLERANCE


@dataclass
class Trained:
    """Which weights an export is of, and when they were saved: their epoch, and the step into it for weights
    saved partway through one (a run stopped or still training); None for weights that do not record it."""

    which: str
    epoch: int | None = None
    step: int = 0
    epochs: int | None = None

    @classmethod
    def of(cls, run: Run, which: str, meta) -> Trained:
        """From a checkpoint's metadata: best records the epoch it ended, last the epochs done and the steps into the next."""
        planned = run.config.get("epochs")
        planned = planned if type(planned) is int else None
        meta = meta if isinstance(meta, dict) else {}
        done, step = meta.get("epoch"), meta.get("step_in_epoch", 0)
        if which == "initial":
            return cls(which, 0, 0, planned)
        if type(done) is not int or type(step) is not int:
            return cls(which, epochs=planned)
        return cls(which, done + 1 if step else done, step, planned)

    @classmethod
    def recorded(cls, metadata: dict[str, str]) -> Trained:
        """From the metadata of an export."""
        epoch, step, epochs = (int(metadata[key]) if metadata.get(key, "").isdigit() else None for key in (EPOCH, STEP, EPOCHS))
        return cls(metadata.get("mnistctl.weights", "best"), epoch, step or 0, epochs)

    @property
    def metadata(self) -> dict[str, str]:
        found = {EPOCH: self.epoch, STEP: self.step or None, EPOCHS: self.epochs}
        return {key: str(value) for key, value in found.items() if value is not None}

    @property
    def when(self) -> str | None:
        """``from epoch 3 of 10``, ``from partway through epoch 4 of 10, at step 120`` or ``before any training``."""
        if self.epoch is None:
            return None
        if self.epoch == 0:
            return "before any training"
        of = f" of {self.epochs}" if self.epochs else ""
        return f"from partway through epoch {self.epoch}{of}, at step {self.step}" if self.step else f"from epoch {self.epoch}{of}"

    def __str__(self) -> str:
        return ", ".join(filter(None, (self.which, self.when)))


EPOCH, STEP, EPOCHS = "mnistctl.epoch", "mnistctl.step_in_epoch", "mnistctl.epochs"


def recorded(path: str | Path) -> dict[str, str]:
    """The metadata an ONNX file carries."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def default_path(run: Run, which: str) -> Path:
    return run.export_path(which, "onnx")


def export(run: Run, fmt: str = "onnx", which: str = "best", output: str | Path | None = None, dataset=None) -> tuple[Path, Parity]:
    """Write the run's ``which`` weights as ``fmt``; the file appears only if it passes the parity check."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    return export_onnx(run, which, output, dataset)


def export_onnx(run: Run, which: str = "best", output: str | Path | None = None, dataset=None) -> tuple[Path, Parity]:
    from mnistctl.fsutil import Taken, atomic_path
    from mnistctl.models import load_model
    from mnistctl.reading import split_predictions
    from mnistctl.runs import checkpoint

    _require_onnx()
    weights = checkpoint.read(run.weights(which))  # one read: the model and the digest the export records are of the same bytes
    model = load_model(run, which, weights.tensors).cpu()
    mean, std = run.normalization
    images, _ = split_predictions.split_data(run, "test", dataset)
    named = output is not None  # never replaced, unlike the run's own exports/<weights>.onnx
    output = Path(output) if named else default_path(run, which)
    with tempfile.TemporaryDirectory(prefix="mnistctl-export-") as scratch:  # its folder is made only for a model that passed
        checked = Path(scratch) / output.name
        _write(_pipeline(model, mean, std), checked, images[:2], _arch_label(run))
        _describe(checked, run, Trained.of(run, which, weights.meta), weights.digest, mean, std)
        parity = check(checked, model, images, mean, std)
        if not parity.ok:
            raise RunError(
                f"the ONNX model disagrees with PyTorch on {parity.mismatches} of {parity.images} test images "
                f"(max probability difference {parity.max_difference:.2e}); nothing was written",
                "report this with the run's config.json",
            )
        try:
            with atomic_path(output, replace=not named) as tmp:
                shutil.copyfile(checked, tmp)
        except Taken:
            raise OutputAppeared(output) from None
    return output, parity


def _arch_label(run: Run) -> str:
    """The run's architecture as errors name it: ``the architecture 'dataop' from mnistctl-shapes2``."""
    from mnistctl.plugins import spec_of

    try:
        return spec_of(run.config, "arch").label
    except MnistctlError:
        return f"the architecture '{run.config['arch']}'"


def _require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MnistctlError(f"ONNX export needs {', '.join(missing)}, which is not installed", "pip install 'mnistctl[onnx]'")


def _pipeline(model, mean: float, std: float):
    """The model with normalisation before it and softmax after it: uint8 (N, 28, 28) in, probabilities out."""
    import torch

    from mnistctl.data import normalize

    class Pipeline(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images):
            return torch.softmax(self.model(normalize(images, mean, std)), dim=1)

    return Pipeline().eval()


def _write(pipeline, path: Path, example, name: str | None = None) -> None:
    """Trace ``pipeline`` into ``path``; ``name`` is the model as an error names it (its class name if not given).
    What torch prints while tracing (graphs, advice) is kept from the terminal, shown on stderr under MNISTCTL_DEBUG=1."""
    import contextlib
    import io
    import os
    import sys
    import warnings

    import torch

    batch = torch.export.Dim("batch")
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                pipeline,
                (example,),
                str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=["images"],
                output_names=["probs"],
                dynamic_shapes={"images": {0: batch}},
                external_data=False,
                verbose=False,
            )
    except Exception as exc:
        if interrupt := _interrupt(exc):  # Ctrl-C or SIGTERM during the trace, which torch.onnx wraps: an interruption, not a failure
            raise interrupt from None
        raise RunError(
            f"{name or type(pipeline.model).__name__} cannot be traced for ONNX: {_root_cause(exc)}",
            "only a model whose forward is torch operations throughout exports; one that branches on tensor values, "
            "e.g. on .item(), or leaves torch, e.g. for NumPy, cannot be traced",
        ) from exc
    finally:
        if printed.getvalue() and os.environ.get("MNISTCTL_DEBUG") == "1":
            sys.stderr.write(printed.getvalue())


def _interrupt(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt (or other non-Exception, such as SystemExit) anywhere in ``exc``'s cause chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if not isinstance(exc, Exception):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _describe(path: Path, run: Run, trained: Trained, digest: str, mean: float, std: float) -> None:
    """Record what the export is of, with ``digest``, the SHA-256 of the weight bytes the model was built from."""
    import onnx

    from mnistctl.reading.members import WEIGHTS_DIGEST

    proto = onnx.load(str(path))
    for key, value in {
        "mnistctl.run": run.name,
        "mnistctl.arch": run.config["arch"],
        "mnistctl.weights": trained.which,
        **trained.metadata,
        WEIGHTS_DIGEST: digest,
        "mnistctl.mean": str(mean),
        "mnistctl.std": str(std),
        "mnistctl.input": INPUT,
        "mnistctl.output": OUTPUT,
    }.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    weights = ", ".join(filter(None, (f"{trained.which} weights", trained.when)))
    proto.doc_string = f"MNIST digit classifier from mnistctl run {run.name} ({weights}). Input {INPUT}. Output {OUTPUT}."
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def check(path: str | Path, model, images, mean: float, std: float) -> Parity:
    """Run the ONNX file with onnxruntime and PyTorch on the same images and compare."""
    import numpy as np
    import onnxruntime

    from mnistctl.models import predict_proba
    from mnistctl.reading.split_predictions import require_finite

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pixels = images.numpy()
    onnx_probs = np.concatenate([session.run(["probs"], {"images": pixels[i : i + BATCH]})[0] for i in range(0, len(pixels), BATCH)])
    torch_probs = predict_proba(model, images, mean, std).numpy()
    require_finite(torch_probs)
    mismatches = int((onnx_probs.argmax(1) != torch_probs.argmax(1)).sum())
    return Parity(len(pixels), mismatches, float(np.abs(onnx_probs - torch_probs).max()))
