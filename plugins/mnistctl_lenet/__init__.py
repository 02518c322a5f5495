"""LeNet-5, adapted to 28x28 inputs: a built-in plugin shaped like any third-party one."""

from mnistctl import hookimpl
from mnistctl.registry import Spec


def lenet(channels=(6, 16), kernel_size=5, hidden=(120, 84), dropout=0.0, num_classes=10):
    from mnistctl_lenet.model import LeNet

    return LeNet(channels, kernel_size, hidden, dropout, num_classes)


@hookimpl
def register_archs(register):
    register(Spec("lenet", lenet, "LeNet-5 style: two 5x5 convs with pooling, three fully connected layers", params=61_706))
