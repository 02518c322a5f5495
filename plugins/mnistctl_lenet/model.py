from torch import nn


class LeNet(nn.Module):
    """Pooling before ReLU computes the same function (ReLU is monotonic) on a quarter of the values."""

    def __init__(self, channels, kernel_size, hidden, dropout, num_classes):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size, padding=kernel_size // 2),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, kernel_size),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        )
        side = (28 // 2 - kernel_size + 1) // 2
        widths = [c2 * side * side, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        return self.classifier(self.features(x))
