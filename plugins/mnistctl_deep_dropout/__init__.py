"""Deep-dropout: conv blocks with batch norm, pooling and dropout, aimed at the best accuracy."""

from mnistctl import hookimpl
from mnistctl.registry import Spec


def deep_dropout(
    channels=(32, 64, 128),
    convs_per_block=2,
    kernel_size=3,
    hidden=256,
    dropout=0.25,
    fc_dropout=0.5,
    batch_norm=True,
    num_classes=10,
):
    from mnistctl_deep_dropout.model import DeepDropout

    return DeepDropout(channels, convs_per_block, kernel_size, hidden, dropout, fc_dropout, batch_norm, num_classes)


@hookimpl
def register_archs(register):
    register(
        Spec(
            "deep-dropout",
            deep_dropout,
            "Three blocks of two 3x3 convs with batch norm, pooling and dropout; fc 256",
            params=584_618,
        )
    )
