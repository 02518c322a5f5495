"""SimpleCNN: conv 32, pool, conv 64, pool, fc 128, dropout 0.5, 10."""

from mnistctl import hookimpl
from mnistctl.registry import Spec


def simplecnn(channels=(32, 64), kernel_size=3, hidden=128, dropout=0.5, num_classes=10):
    from mnistctl_simplecnn.model import SimpleCNN

    return SimpleCNN(channels, kernel_size, hidden, dropout, num_classes)


@hookimpl
def register_archs(register):
    register(Spec("simplecnn", simplecnn, "Two 3x3 conv layers with pooling, fc 128 with dropout", params=421_642))
