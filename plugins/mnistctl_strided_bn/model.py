from torch import nn

from mnistctl.layers import Dropout


def conv_bn(c_in, c_out, kernel_size, stride=1):
    return [nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class StridedBN(nn.Module):
    """Each block halves the side: conv 3x3, conv 3x3, conv 5x5 stride 2, then dropout."""

    def __init__(self, channels, hidden, dropout, num_classes):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = 1, 28
        for c in channels:
            layers += [*conv_bn(c_in, c, 3), *conv_bn(c, c, 3), *conv_bn(c, c, 5, stride=2), Dropout(dropout)]
            c_in, side = c, (side + 1) // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * side * side, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
