"""Batches on the way into a model: normalisation and batched augmentation, as tensor ops."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def normalize(images: "torch.Tensor", mean: float, std: float, dtype=None) -> "torch.Tensor":
    """uint8 (N, 28, 28) or (N, 1, 28, 28) to normalised float (N, 1, 28, 28)."""
    import torch

    x = images if images.dim() == 4 else images.unsqueeze(1)
    return x.to(dtype or torch.float32).div_(255).sub_(mean).div_(std)


def augment(x: "torch.Tensor", rotation: float, shift: float, generator: "torch.Generator", zoom: float = 0.0, elastic: float = 0.0) -> "torch.Tensor":
    """Random rotation (degrees), shift (fraction of the side) and zoom (fraction of the size) per sample, plus an
    elastic distortion of that strength in pixels, in one batched warp. Without zoom or elastic, the random draws
    are those of runs made before they existed."""
    import math

    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotation)
    offset = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * shift)
    cos, sin = angle.cos(), angle.sin()
    if zoom:
        scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * zoom
        cos, sin = cos / scale, sin / scale
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    if elastic:
        grid = grid + elastic_field(n, x.shape[-1], elastic, generator).to(x.device, x.dtype)
    background = x.amin(dim=(1, 2, 3), keepdim=True)
    return F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background


ELASTIC_SIGMA = 4.0  # pixels: the smoothing of Simard, Steinkraus and Platt (2003)


def elastic_field(n: int, size: int, alpha: float, generator: "torch.Generator") -> "torch.Tensor":
    """Random displacements (N, size, size, 2) in grid units: uniform noise in [-1, 1] per pixel, smoothed by a
    Gaussian of ELASTIC_SIGMA pixels and scaled by ``alpha`` pixels, as in Simard et al.'s elastic distortion."""
    import torch
    import torch.nn.functional as F

    kernel = _gaussian_kernel()
    radius = len(kernel) // 2
    noise = torch.rand(n * 2, 1, size, size, generator=generator) * 2 - 1
    noise = F.conv2d(F.pad(noise, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    noise = F.conv2d(F.pad(noise, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return noise.view(n, 2, size, size).permute(0, 2, 3, 1) * (alpha * 2 / size)


@functools.cache
def _gaussian_kernel() -> "torch.Tensor":
    """The normalised 1-D Gaussian of ELASTIC_SIGMA pixels, out to three sigmas."""
    import torch

    radius = int(3 * ELASTIC_SIGMA)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * ELASTIC_SIGMA**2))
    return kernel / kernel.sum()
