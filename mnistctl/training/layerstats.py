"""Per-layer statistics of a training step (``train --log-layers``): the hooks that take them and what they mean.

Works on any nn.Module: it watches every module that owns parameters and every leaf activation module
(recognised by class name, so third-party activations count too). On a logging step, forward hooks take
each output's mean, std and fraction of zeros, and a hook on that output its gradient norm times the square
root of the batch size, so that batches of any size (an epoch's shorter last one too) read alike; around
``optimizer.step()`` each parameter's gradient norm and update-to-weight ratio are taken. Everything
stays on the device until one transfer at the end of the step; the hooks are then removed. Other
steps cost an integer test: no hook, no host sync.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mnistctl.runs import Kind

DEFAULT_EVERY = 50
OUTPUT_STATS = ("mean", "std", "zeros")
ACTIVATION = re.compile(r"relu|elu|gelu|silu|swish|mish|tanh|sigmoid|softplus|softsign|hardtanh|activation", re.IGNORECASE)

# What the dashboard marks, from the latest logged step.
DEAD_ZEROS = 0.9  # fraction of zero outputs
VANISHING_GRAD = 1e-7  # output or weight gradient norm
EXPLODING_UPDATE = 0.5  # ||dw|| / ||w|| in a single step
EXPLODING_FACTOR = 100.0  # weight gradient norm or update ratio this many times the median of the layers'


def watched(model) -> dict[str, Any]:
    """The modules whose outputs are recorded, by qualified name in definition order."""
    return {
        name or type(module).__name__: module
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
        or (not any(True for _ in module.children()) and ACTIVATION.search(type(module).__name__))
    }


class LayerStats:
    """Called by the trainer on every step: ``begin`` before the forward pass, ``before_step`` and
    ``after_step`` around ``optimizer.step()``; on logging steps it writes one Kind.LAYERS event.
    The run's ``last`` step logs too, so a run shorter than ``every`` steps has its statistics."""

    def __init__(self, model, every: int | None, writer=None, last: int | None = None):
        self.model, self.every, self.writer, self.last = model, every, writer, last
        self.modules = watched(model) if every else {}
        self.active = False
        self._hooks: list[Any] = []

    def begin(self, step: int, epoch: int) -> bool:
        """Install the hooks when ``step`` (1-based, global) is a logging step."""
        self.active = bool(self.every) and (step % self.every == 0 or step == self.last)
        if self.active:
            self._remove()
            self.step, self.epoch = step, epoch
            self.outputs: dict[str, tuple[str, Any]] = {}  # entry -> (module name, stacked stats)
            self.grads: dict[str, Any] = {}
            for name, module in self.modules.items():
                self._hooks.append(module.register_forward_hook(self._forward_hook(name)))
        return self.active

    def before_step(self) -> None:
        """After backward: parameter gradient norms, and the weights before the update."""
        if not self.active:
            return
        self.params = {}
        for name, module in self.modules.items():
            for pname, p in module.named_parameters(recurse=False):
                grad = p.grad.detach().float().norm() if p.grad is not None else None
                self.params[(name, pname)] = (p, p.detach().float().clone(), grad)

    def after_step(self) -> dict[str, Any] | None:
        """After the update: remove the hooks, move the statistics to the host at once, write and return the event's fields."""
        if not self.active:
            return None
        self.active = False
        self._remove()
        import torch

        values: list[Any] = []  # every statistic as a 0-d tensor on the device

        def slot(tensor) -> int | None:
            if tensor is None:
                return None
            values.append(tensor.detach().float().reshape(()))
            return len(values) - 1

        layout: dict[str, dict[str, Any]] = {}  # the event's shape, with indices into values
        for entry, (name, stats) in self.outputs.items():
            stat_slots = dict(zip(OUTPUT_STATS, map(slot, stats)))
            layout[entry] = {"type": type(self.modules[name]).__name__, **stat_slots, "grad": slot(self.grads.get(entry))}
        for (name, pname), (p, before, grad) in self.params.items():
            norm = before.norm()
            record = layout.setdefault(name, {"type": type(self.modules[name]).__name__})
            update = (p.detach().float() - before).norm() / norm
            record.setdefault("params", {})[pname] = {"norm": slot(norm), "grad": slot(grad), "update": slot(update)}
        host = torch.stack(values).cpu().tolist() if values else []
        self.outputs, self.grads, self.params = {}, {}, {}
        fields = {"epoch": self.epoch, "step": self.step, "layers": _fill(layout, host)}
        if self.writer is not None:
            self.writer.event(Kind.LAYERS, **fields)
        return fields

    def _forward_hook(self, name: str):
        def hook(module, inputs, output) -> None:
            import torch

            if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                return
            entry, calls = name, 1
            while entry in self.outputs:  # a module called more than once per forward pass
                calls += 1
                entry = f"{name}#{calls}"
            with torch.no_grad():
                out = output.detach().float()
                stats = (out.mean(), out.std() if out.numel() > 1 else out.new_zeros(()), (out == 0).float().mean())
            self.outputs[entry] = (name, stats)
            if output.requires_grad:
                root_batch = math.sqrt(output.shape[0]) if output.dim() else 1.0  # a batch-mean loss's gradient norm shrinks as 1/√batch
                output.register_hook(lambda grad: self.grads.__setitem__(entry, grad.detach().float().norm() * root_batch))

        return hook

    def _remove(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []


def _fill(layout: Any, host: list[float]) -> Any:
    """The layout with every index replaced by its value; the type names stay."""
    if isinstance(layout, dict):
        return {k: v if k == "type" else _fill(v, host) for k, v in layout.items()}
    return None if layout is None else _compact(host[layout])


def _compact(value: float) -> float | None:
    """Four significant digits; None for NaN or infinity (JSON has neither)."""
    return float(f"{value:.4g}") if math.isfinite(value) else None


def diagnose(layers: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The layers of one event that look dead, exploding or vanishing, with the reasons."""
    weights = {name: main_param(rec) for name, rec in layers.items()}
    medians = {key: _median([w.get(key) for w in weights.values()]) for key in ("grad", "update")}
    found: dict[str, list[str]] = {}
    for name, rec in layers.items():
        weight, reasons = weights[name], []
        if rec.get("zeros") is not None and rec["zeros"] > DEAD_ZEROS:
            reasons.append("dead")
        far_above = any(weight.get(k) and medians[k] and weight[k] > EXPLODING_FACTOR * medians[k] for k in medians)
        if far_above or (weight.get("update") or 0) > EXPLODING_UPDATE:
            reasons.append("exploding")
        if any(g is not None and g < VANISHING_GRAD for g in (rec.get("grad"), weight.get("grad"))):
            reasons.append("vanishing")
        if reasons:
            found[name] = reasons
    return found


def _median(values: list[float | None]) -> float | None:
    """The median of the known values, when there are at least three to compare with."""
    known = sorted(v for v in values if v)
    return known[len(known) // 2] if len(known) >= 3 else None


def main_param(record: dict[str, Any]) -> dict[str, Any]:
    """A layer's main parameter: ``weight`` when it has one, else its first."""
    params = record.get("params") or {}
    return params.get("weight") or next(iter(params.values()), {})
