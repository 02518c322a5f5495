"""Layers that architecture plugins share with torch.nn's, where torch's are slow on a CPU."""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 2**16  # the keep probability is rounded to a multiple of 1/LEVELS


class Dropout(nn.Dropout):
    """nn.Dropout that draws its mask on a CPU from 16 random bits an element, 64 bits at a time.

    torch's CPU dropout draws one number per element on one thread: 9 ms for a 128x32x14x14
    batch, an eighth of a strided-bn training step. This takes 1.5 ms. The mask comes from torch's
    generator, so seeds and resumed runs repeat it. The drop probability is p rounded to 1/65536
    and the kept values are scaled by its exact inverse. Elsewhere (CUDA, MPS) it is nn.Dropout.
    """

    def forward(self, x):
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        mask = keep_mask(x, 1 - self.p)
        return x.mul_(mask) if self.inplace else x * mask


def keep_mask(x: torch.Tensor, keep: float) -> torch.Tensor:
    """0 or 1/keep for each element of x, in x's dtype and memory layout; 1 with probability keep."""
    kept = round(keep * LEVELS)
    if kept == 0:
        return torch.zeros_like(x)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    bits = words.view(torch.int16)[:n]
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    bits = bits.as_strided(x.shape, x.stride()) if channels_last else bits.view(x.shape)
    return (bits < kept - LEVELS // 2).to(x.dtype).mul_(LEVELS / kept)
