"""StridedBN: stacked 3x3 convs with batch norm, strided 5x5 convs in place of pooling, dropout; for the records."""

from mnistctl import hookimpl
from mnistctl.registry import Spec


def strided_bn(channels=(32, 64), hidden=128, dropout=0.4, num_classes=10):
    from mnistctl_strided_bn.model import StridedBN

    return StridedBN(channels, hidden, dropout, num_classes)


@hookimpl
def register_archs(register):
    register(
        Spec(
            "strided-bn",
            strided_bn,
            "Blocks of two 3x3 convs and a strided 5x5 conv, batch norm and dropout; fc 128",
            params=596_330,
        )
    )
