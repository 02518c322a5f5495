from torch import nn


class SimpleCNN(nn.Module):
    """Pooling before ReLU computes the same function (ReLU is monotonic) on a quarter of the values."""

    def __init__(self, channels, kernel_size, hidden, dropout, num_classes):
        super().__init__()
        c1, c2 = channels
        pad = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size, padding=pad),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, kernel_size, padding=pad),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
