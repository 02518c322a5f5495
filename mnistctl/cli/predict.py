from mnistctl.errors import MnistctlError

NAME = "predict"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl predict' is not built yet", "see the project's open issues")
