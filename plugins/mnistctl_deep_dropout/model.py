from torch import nn

from mnistctl.layers import Dropout


def conv_block(c_in, c_out, convs, kernel_size, dropout, batch_norm):
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, kernel_size, padding=kernel_size // 2, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        if i < convs - 1:
            layers.append(nn.ReLU(inplace=True))
    layers += [nn.MaxPool2d(2), nn.ReLU(inplace=True), Dropout(dropout)]  # pooled before the ReLU: same result, 4x fewer values
    return nn.Sequential(*layers)


class DeepDropout(nn.Module):
    def __init__(self, channels, convs_per_block, kernel_size, hidden, dropout, fc_dropout, batch_norm, num_classes):
        super().__init__()
        widths = [1, *channels]
        self.features = nn.Sequential(
            *(conv_block(a, b, convs_per_block, kernel_size, dropout, batch_norm) for a, b in zip(widths, widths[1:]))
        )
        side = 28
        for _ in channels:
            side //= 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels[-1] * side * side, hidden),
            nn.ReLU(),
            Dropout(fc_dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
