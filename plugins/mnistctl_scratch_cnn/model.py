"""ScratchCNN: conv blocks (conv, ReLU, 2x2 max pool) and a classifier, every layer hand-written in NumPy."""

from itertools import pairwise

from torch import nn

from mnistctl_scratch_cnn.layers import (
    NumpyConv2d,
    NumpyDropout,
    NumpyFlatten,
    NumpyLinear,
    NumpyMaxPool2d,
    NumpyReLU,
)


def conv_widths(conv_layers: int, channels: int) -> list[int]:
    """Input width, then ``channels`` doubled at every further conv layer."""
    return [1] + [channels * 2**i for i in range(conv_layers)]


class ScratchCNN(nn.Module):
    def __init__(self, conv_layers, channels, kernel_size, hidden, dropout, num_classes, side=28):
        super().__init__()
        widths = conv_widths(conv_layers, channels)
        blocks: list[nn.Module] = []
        for c_in, c_out in pairwise(widths):
            blocks += [NumpyConv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), NumpyReLU(), NumpyMaxPool2d(2)]
            side = (side + 2 * (kernel_size // 2) - kernel_size + 1) // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            NumpyFlatten(),
            NumpyLinear(widths[-1] * side * side, hidden),
            NumpyReLU(),
            NumpyDropout(dropout),
            NumpyLinear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
