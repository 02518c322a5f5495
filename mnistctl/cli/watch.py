from mnistctl.errors import MnistctlError

NAME = "watch"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl watch' is not built yet", "see the project's open issues")
