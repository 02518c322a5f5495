"""The ``mnistctl`` command. Each sub-command lives in its own module; heavy imports stay inside functions."""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import traceback

import typer

from mnistctl import __version__
from mnistctl.console import err, report
from mnistctl.errors import MnistctlError

COMMANDS = ("train", "sweep", "eval", "visualize", "predict", "draw", "compare", "watch", "export")
GROUPS = ("list",)
DATA_OPTIONS = ("data_dir", "ignore_data_mismatch")  # shared by the commands that read a run, in a panel of their own
PIPE_GONE = -signal.SIGPIPE if hasattr(signal, "SIGPIPE") else 1  # the reader of an output has gone (no SIGPIPE on Windows)


def _version(value: bool) -> None:
    if value:
        print(f"mnistctl {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Train, inspect and use convolutional digit classifiers on MNIST."""


@functools.cache
def build(only: str | None = None) -> typer.Typer:
    """The app with every command, or with the one named ``only``: running one command imports no other command's module, except those it builds on (sweep: train's options, compare's table)."""
    app = typer.Typer(
        name="mnistctl",
        help="Train, inspect and use convolutional digit classifiers on MNIST.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=True,
    )
    app.callback()(_root)
    for name in (*COMMANDS, *GROUPS):
        if only in (None, name):
            module = importlib.import_module(f"mnistctl.cli.{name}")
            if name in GROUPS:
                app.add_typer(module.app, name=name)
            else:
                app.command(module.NAME, help=module.command.__doc__)(module.command)
    return app


def __getattr__(name: str):
    if name == "app":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command(argv: list[str] | None = None):
    """The click command behind the app (only the named command's, when ``argv`` starts with one),
    with options and arguments shown as they are typed: flags bare, ``--lr LR``, ``IMAGES...``, ``[PATTERN]``."""
    first = argv[0] if argv else None
    root = typer.main.get_command(build(first if first in (*COMMANDS, *GROUPS) else None))
    stack = [root]
    while stack:
        cmd = stack.pop()
        stack += [*getattr(cmd, "commands", {}).values()]
        for param in cmd.params:
            if param.param_type_name == "option" and param.metavar is None:
                param.metavar = "" if param.is_flag else param.name.rstrip("_").upper()
            if param.name in DATA_OPTIONS and getattr(param, "rich_help_panel", None) is None:
                param.rich_help_panel = "Data"  # as train's: the options panel keeps room for its own help
            elif param.param_type_name == "argument":
                _as_typed(param)
    return root


def _as_typed(argument) -> None:
    """An argument named in capitals in the usage line and the help, without Typer's ``{images}...`` or ``<str>``."""
    import copy

    argument.metavar = argument.metavar or argument.name.upper()
    argument.type = copy.copy(argument.type)
    argument.type.get_metavar = lambda param, ctx: ""
    if argument.required:  # Typer puts a required argument in braces
        argument.get_usage_pieces = lambda ctx: [argument.metavar + ("..." if argument.nargs != 1 else "")]


def main() -> None:
    """Exit codes: 0 done, 1 the work failed (data, a damaged run, training), 2 bad input, 130 interrupted.

    SIGTERM stops a command as Ctrl-C does, so that it removes its temporary files (training stops at a
    checkpoint its own way); the process then ends by SIGTERM, as its parent expects."""
    _fill_closed_outputs()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
        if hasattr(os, "register_at_fork"):  # forked workers end at once, as before
            os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)
    if getattr(sys.stdout, "errors", None) == "strict":  # a locale that cannot spell a name: escaped, as on stderr
        sys.stdout.reconfigure(errors="backslashreplace")
    outputs = [os.dup(fd) for fd in (1, 2)]  # kept: rich puts /dev/null in place of an output whose reader has gone
    try:
        code = _run()
    except (BrokenPipeError, SystemExit) as exc:  # rich and click exit 1 when the reader of the output has gone (`| head`)
        if not (isinstance(exc, BrokenPipeError) or _reader_gone(outputs)):
            raise
        code = PIPE_GONE
    code = -signal.SIGTERM if TERMINATED else code
    try:
        _leave(code)
    except KeyboardInterrupt:  # a signal as the command ends (a launcher stopping its workers): its result stands
        _leave(code)


def _fill_closed_outputs() -> None:
    """A standard output or error the caller closed (``>&-``) becomes /dev/null: what is written there is dropped,
    and no file opened later takes its descriptor."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", closefd=False))


TERMINATED: list[int] = []
INTERRUPTED: list[int] = []


def _interrupt(signum, frame) -> None:
    """Ctrl-C, remembered: typer turns the KeyboardInterrupt into a bare exit code 130, which says nothing."""
    INTERRUPTED.append(signum)
    raise KeyboardInterrupt


def _terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup is not cut short by a second one
    TERMINATED.append(signum)
    raise KeyboardInterrupt


def _run() -> int:
    debug = os.environ.get("MNISTCTL_DEBUG") == "1"
    try:
        code = command(sys.argv[1:])(prog_name="mnistctl", standalone_mode=False)
        if code == 130 and (INTERRUPTED or TERMINATED):  # a command that stops on a signal by itself says so itself
            err.print("[red]interrupted[/]")
        return code if isinstance(code, int) else 0
    except typer.Abort:
        err.print("[red]interrupted[/]")
        return 130
    except MnistctlError as exc:
        if debug:  # the traceback, then the same line and exit code as without it
            traceback.print_exc()
        report(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        err.print("[red]interrupted[/]")
        return 130
    except BrokenPipeError:
        return PIPE_GONE
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # no command given: the help just shown is the answer
            if message := exc.format_message().strip():
                print(message)
            return 2
        if debug:
            traceback.print_exc()
        if _is_usage_error(exc):
            named = sys.argv[1:2] if sys.argv[1:2] and sys.argv[1] in (*COMMANDS, *GROUPS) else []  # click gives no context for an option missing its value
            where = exc.ctx.command_path if getattr(exc, "ctx", None) else " ".join(["mnistctl", *named])
            option = getattr(exc, "option_name", None)  # a file named like an option: -photo.png
            path = next((arg for arg in sys.argv[1:] if option and arg.startswith(option) and os.path.exists(arg)), None)
            message = exc.format_message().splitlines()[0].removesuffix(".")
            hint = f"for the file {path}, write ./{path}" if path else f"see {where} --help"
            if option in ("--run", "-r") and (runs := _run_arguments(exc)):  # as predict, draw and export take them
                message, hint = f"no such option: {option}", f"name the {runs} without {option}: {where} {'RUN RUN' if runs == 'runs' else 'RUN'}"
            report(message[:1].lower() + message[1:], hint)
            return 2
        if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:  # a folder to create, a file in the way
            report(f"cannot write to {exc.filename}: it or a folder above it is a file", "choose another path")
            return 2
        if isinstance(exc, OSError) and exc.strerror:  # the file system said no: a full disk, a permission
            report(f"{exc.filename}: {exc.strerror}" if exc.filename else f"a file could not be written or read: {exc.strerror}",
                   "check the path, its permissions and the free space")
            return 1
        if "mnistctl.plugins" in sys.modules and (plugin := sys.modules["mnistctl.plugins"].at_fault(exc)):
            report(f"{plugin} failed: {type(exc).__name__}: {exc}".splitlines()[0], "report it to its authors; MNISTCTL_DEBUG=1 shows where")
            return 1
        report(f"internal error: {type(exc).__name__}: {exc}", None if debug else "rerun with MNISTCTL_DEBUG=1 for the traceback")
        return 1


def _leave(code: int) -> None:
    """Exit, or end by the signal a negative ``code`` names; an output whose reader has gone ends it by SIGPIPE, as
    Unix tools end. A process that loaded torch or onnxruntime skips the interpreter's teardown of its modules
    (0.05-1 s): the command has closed its files, so only standard output and error need flushing. Ctrl-C and
    SIGTERM are ignored from here on: the command's result is decided."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = PIPE_GONE if code >= 0 else code
        except (OSError, ValueError):
            pass
    if code == PIPE_GONE:  # what is still buffered goes nowhere: no "Exception ignored" as Python exits
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(null, fd)
    if code < 0 or "torch" in sys.modules or "onnxruntime" in sys.modules:
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)
    sys.exit(code)


def _reader_gone(fds: list[int]) -> bool:
    """Whether a pipe among ``fds`` has lost its reader (not known where ``poll`` is missing: Windows)."""
    import select

    if not hasattr(select, "poll"):
        return False
    poll = select.poll()
    for fd in fds:
        poll.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poll.poll(0))


def _run_arguments(exc: Exception) -> str | None:
    """'run' or 'runs' when the command that failed takes runs as arguments (eval, compare...), else None."""
    params = exc.ctx.command.params if getattr(exc, "ctx", None) else []
    taken = [param for param in params if param.param_type_name == "argument" and param.metavar.strip("[].") == "RUN"]
    return ("run" if taken[0].nargs == 1 else "runs") if taken else None


def _is_usage_error(exc: Exception) -> bool:
    """Typer's own parsing errors (bad value, unknown option or command), by their public protocol."""
    return getattr(exc, "exit_code", None) == 2 and callable(getattr(exc, "format_message", None))
