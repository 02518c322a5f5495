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


class NotFoundError(MnistctlError):
    """A run, checkpoint, file or registered name that does not exist: bad input too."""

    exit_code = 2


class DataError(MnistctlError):
    """The data set is missing, corrupt or of the wrong shape."""


class RunError(MnistctlError):
    """A run directory is broken or incomplete."""


class TrainingDiverged(MnistctlError):
    """The loss became NaN or infinite."""
