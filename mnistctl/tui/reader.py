"""The model side of ``mnistctl draw``: one run or an ensemble reading a drawing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnistctl.tui.pixels import centre_by_mass


@dataclass
class Reading:
    """What the models made of one drawing: class probabilities, and the first conv layer's outputs if asked."""

    probs: np.ndarray
    layer: str | None = None
    maps: np.ndarray | None = None


class Reader:
    """Members are (model, mean, std); probabilities are averaged over them, as in ``predict``."""

    def __init__(self, members: list[tuple[Any, float, float]], names: list[str], centre: bool = True):
        self.members = members
        self.names = names
        self.centre = centre

    def model_input(self, drawing: np.ndarray) -> np.ndarray:
        """The uint8 28x28 image the models see: the drawing, centred by mass unless told not to."""
        image = centre_by_mass(drawing) if self.centre else drawing
        return np.round(np.clip(image, 0, 255)).astype(np.uint8)

    def read(self, drawing: np.ndarray, maps: bool = False) -> Reading:
        import torch

        from mnistctl.models import predict_proba

        x = torch.from_numpy(self.model_input(drawing))[None]
        probs = sum(predict_proba(model, x, mean, std)[0] for model, mean, std in self.members) / len(self.members)
        if not maps:
            return Reading(probs.numpy())
        layer, output = self.first_conv(x)
        return Reading(probs.numpy(), layer, output)

    def first_conv(self, x) -> tuple[str | None, np.ndarray | None]:
        """The first conv layer's name (after the model's, in an ensemble) and output (channels, h, w) for the first member."""
        from mnistctl.data import normalize
        from mnistctl.reading.visualize import capture_feature_maps

        model, mean, std = self.members[0]
        device = next(model.parameters()).device
        captured = capture_feature_maps(model, normalize(x.to(device), mean, std))
        captured.pop("logits")
        if not captured:
            return None, None
        name, output = next(iter(captured.items()))
        return name if len(self.members) == 1 else f"{self.names[0]} {name}", output[0].cpu().numpy()

