"""scratch-cnn: a small CNN whose layers (forward and backward) are written by hand in NumPy, for learning."""

from mnistctl import hookimpl
from mnistctl.errors import UsageError
from mnistctl.registry import Spec


def scratch_cnn(conv_layers=2, channels=16, kernel_size=3, hidden=128, dropout=0.25, num_classes=10):
    """``conv_layers`` conv + ReLU + 2x2 max pool blocks, ``channels`` wide and doubling; fc ``hidden``."""
    if not 1 <= conv_layers <= 4:
        raise UsageError(f"scratch-cnn conv_layers={conv_layers} is out of range", "use 1 to 4 (each halves the 28x28 image)")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise UsageError(f"scratch-cnn kernel_size={kernel_size} must be odd", "use 3, 5 or 7")
    from mnistctl_scratch_cnn.model import ScratchCNN

    return ScratchCNN(conv_layers, channels, kernel_size, hidden, dropout, num_classes)


@hookimpl
def register_archs(register):
    register(
        Spec(
            "scratch-cnn",
            scratch_cnn,
            "Hand-written NumPy layers (im2col conv, max pool, ReLU, dropout, fc), forward and backward: slower, for learning",
            params=206_922,
            precisions=("fp32",),  # NumPy computes in float32: bf16 autocast would only add casts
        )
    )
