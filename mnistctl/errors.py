"""The user-facing error family: each error is one line of message plus a hint."""


class MnistctlError(Exception):
    """An error the user can fix; the CLI prints it as one line, without a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MnistctlError):
    """Bad options or arguments."""

    exit_code = 2


class OutputAppeared(UsageError):
    """A file the user named for output was created by someone else while mnistctl wrote it: theirs is kept."""

    def __init__(self, path):
        super().__init__(f"{path} appeared while it was being written, and was kept", "name a new file, or move that one away first")


class NotFoundError(MnistctlError):
    """A run, checkpoint, file or registered name that does not exist: bad input too."""

    exit_code = 2


class DataError(MnistctlError):
    """The data set is missing, corrupt or of the wrong shape."""


class DataFolderError(DataError):
    """A data folder the user named (--data-dir, MNISTCTL_DATA_DIR) that does not exist or lacks the files: bad input."""

    exit_code = 2


class RunError(MnistctlError):
    """A run directory is broken or incomplete."""


class TrainingDiverged(MnistctlError):
    """The loss became NaN or infinite, at global ``step``."""

    def __init__(self, message: str, hint: str | None = None, step: int | None = None):
        super().__init__(message, hint)
        self.step = step


def parse_problem(exc: ValueError) -> str:
    """Why a TOML or JSON text did not parse, in a user's words: Python's own for an over-long integer names a sys function."""
    return "a number has more than 4,300 digits" if "integer string conversion" in str(exc) else str(exc)
