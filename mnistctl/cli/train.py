from mnistctl.errors import MnistctlError

NAME = "train"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl train' is not built yet", "see the project's open issues")
