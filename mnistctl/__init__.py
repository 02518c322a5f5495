"""mnistctl: train, inspect and use convolutional digit classifiers on MNIST."""

from mnistctl.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
