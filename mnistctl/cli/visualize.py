from mnistctl.errors import MnistctlError

NAME = "visualize"


def command() -> None:
    """Not built yet."""
    raise MnistctlError("'mnistctl visualize' is not built yet", "see the project's open issues")
