"""mnistctl: train, inspect and use convolutional digit classifiers on MNIST."""

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str):
    if name == "hookimpl":  # imported when a plugin asks for it: pluggy is not needed to predict
        from mnistctl.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
