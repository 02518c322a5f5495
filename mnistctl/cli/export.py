from mnistctl.errors import MnistctlError

NAME = "export"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl export' is not built yet", "see the project's open issues")
