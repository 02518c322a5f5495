"""Models: built from a run's config, loaded with its weights, placed on a device, and run in batches."""

from __future__ import annotations

from typing import Any

from mnistctl.errors import RunError, UsageError
from mnistctl.runs import Run


def pick_device(name: str = "auto"):
    """``auto`` picks cuda, then mps, then cpu; an explicit device must be available."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    kind = name.split(":")[0]
    if kind not in available:
        raise UsageError(f"unknown device '{name}'", "use auto, cpu, cuda or mps")
    if not available[kind]:
        raise UsageError(f"device '{name}' is not available on this machine", "use --device auto or cpu")
    return torch.device(name)


def predict_proba(model, images, mean: float, std: float, batch_size: int = 256, device=None):
    """Softmax probabilities (N, classes) on the CPU for uint8 images (N, 28, 28), in inference mode.

    Batches of 256 stay in a CPU's cache: on 2 cores they ran 2x faster than batches of 2048.
    """
    import torch

    from mnistctl.data import normalize

    device = device or next(model.parameters()).device
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = normalize(images[start : start + batch_size].to(device), mean, std)
            chunks.append(torch.softmax(model(x).float(), dim=1).cpu())
    if not chunks:
        return torch.empty(0, 0)
    return torch.cat(chunks)


def loss_and_accuracy(probs, labels) -> tuple[float, float]:
    """Mean cross-entropy and accuracy from probabilities."""
    import torch

    picked = probs[torch.arange(len(labels)), labels].clamp_min(1e-12)
    return -picked.log().mean().item(), (probs.argmax(1) == labels).sum().item() / len(labels)


def build_model(config: dict[str, Any], needed_by: str = "this run"):
    """The architecture a run config names, with its options, untrained (the process keeps freed memory from here on).

    A factory that builds something other than a torch module is bad input naming its plugin; an architecture no longer
    installed names the run as ``needed_by`` (``run NAME``)."""
    from torch import nn

    from mnistctl.allocator import keep_freed_memory
    from mnistctl.plugins import spec_of
    from mnistctl.registry import parse_options

    keep_freed_memory()
    spec = spec_of(config, "arch", needed_by)
    model = spec.build(**parse_options(spec, config.get("arch_options", {})))
    if not isinstance(model, nn.Module):
        raise spec.wrong_result(model, "a torch.nn.Module")
    if any(nn.parameter.is_lazy(p) for p in model.parameters()):  # lazy layers take their shapes from a first input
        _materialize(model)
    return model


def _materialize(model) -> None:
    """Run two blank images through ``model`` so its lazy layers get their weights, the random numbers drawn for
    them not counted against the run's seed (as the check before training draws them)."""
    import torch

    training = model.training
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        try:
            model.eval()(torch.zeros(2, 1, 28, 28))
        except Exception:  # a model that does not fit 28x28 images: the check before training says so
            pass
    model.train(training)


def misfit(expected: dict[str, Any], tensors: dict[str, Any]) -> str | None:
    """How saved tensors differ from a model's state dict: names, shapes, or floats where it holds floats; None when they fit."""
    missing, unexpected = [k for k in expected if k not in tensors], [k for k in tensors if k not in expected]
    if missing or unexpected:
        return "; ".join(f"{what} {', '.join(names[:3])}{' and more' if len(names) > 3 else ''}" for what, names in (("no", missing), ("unknown", unexpected)) if names)
    for name, want in expected.items():
        got = tensors[name]
        if got.shape != want.shape:
            return f"{name} has shape {tuple(got.shape)}, not {tuple(want.shape)}"
        if got.is_floating_point() != want.is_floating_point():
            return f"{name} holds {str(got.dtype).removeprefix('torch.')}, not {str(want.dtype).removeprefix('torch.')}"
    return None


def load_model(run: Run, which: str = "best", tensors: dict | None = None):
    """The run's model with the chosen weights (``tensors`` already read from them, if given), in eval mode,
    in the memory format it was trained in."""
    import torch

    from mnistctl.runs import checkpoint

    if not isinstance(run.config.get("arch"), str):
        raise RunError(f"{run.config_path} names no architecture", "the run directory is damaged")
    try:
        model = build_model(run.config, f"run {run.name}")
    except UsageError as exc:  # the run's own options: no flag of this command to fix
        from mnistctl.plugins import changed_since

        hint = changed_since(run.config) or "the run's settings were changed or damaged, or its plugin changed since it was trained"
        raise RunError(f"{run.config_path}: {exc.message}", hint) from exc.__cause__
    path = run.weights(which)
    if tensors is None:
        tensors, _ = checkpoint.load(path)
    if wrong := misfit(model.state_dict(), tensors):
        raise RunError(f"weights in {path} do not fit {run.config['arch']}: {wrong}", "the file was changed or damaged; use another checkpoint")
    if broken := [name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]:
        raise RunError(f"weights in {path} hold NaN or infinite values ({broken[0]})", "the run diverged or the file is damaged; use another checkpoint")
    model.load_state_dict(tensors)
    if run.config.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
