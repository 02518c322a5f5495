from mnistctl.errors import MnistctlError

NAME = "eval"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl eval' is not built yet", "see the project's open issues")
