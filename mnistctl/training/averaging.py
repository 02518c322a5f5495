"""An exponential moving average of a model's weights (train --ema): the weights a run validates and saves."""

from __future__ import annotations

import copy


class WeightAverage:
    """A copy of the model whose floating-point parameters and buffers follow the model's after each step.

    The decay ramps up as (1 + n) / (10 + n) over the first steps, to ``decay``, so the average
    is not held back by the initial weights; other buffers (BatchNorm's batch counts) are copied.
    """

    def __init__(self, model, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))
        self._averaged = [(mine, theirs) for mine, theirs in pairs if mine.is_floating_point()]
        self._copied = [(mine, theirs) for mine, theirs in pairs if not mine.is_floating_point()]

    def update(self, step: int) -> None:
        """Move the average towards the model after its ``step``-th update (0 for the first).

        The tensors are those of state_dict(), detached: updating them records nothing for autograd."""
        weight = 1 - min(self.decay, (1 + step) / (10 + step))
        for mine, theirs in self._averaged:
            mine.lerp_(theirs, weight)
        for mine, theirs in self._copied:
            mine.copy_(theirs)
