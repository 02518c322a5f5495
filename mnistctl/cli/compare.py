from mnistctl.errors import MnistctlError

NAME = "compare"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl compare' is not built yet", "see the project's open issues")
