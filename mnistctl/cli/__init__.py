"""The ``mnistctl`` command. Each sub-command lives in its own module; heavy imports stay inside functions."""

from __future__ import annotations

import os
import sys

import typer

from mnistctl import __version__
from mnistctl.cli import compare, draw, eval, export, list, predict, sweep, train, visualize, watch
from mnistctl.console import err, report
from mnistctl.errors import MnistctlError

app = typer.Typer(
    name="mnistctl",
    help="Train, inspect and use convolutional digit classifiers on MNIST.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        print(f"mnistctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Train, inspect and use convolutional digit classifiers on MNIST."""


for module in (train, sweep, eval, visualize, predict, draw, compare, watch, export):
    app.command(module.NAME, help=module.command.__doc__)(module.command)
app.add_typer(list.app, name="list")


def command():
    """The click command behind the app, with options shown as they are typed: flags bare, ``--lr LR``."""
    root = typer.main.get_command(app)
    stack = [root]
    while stack:
        cmd = stack.pop()
        stack += [*getattr(cmd, "commands", {}).values()]
        for param in cmd.params:
            if param.param_type_name == "option" and param.metavar is None:
                param.metavar = "" if param.is_flag else param.name.rstrip("_").upper()
    return root


def main() -> None:
    """Exit codes: 0 done, 1 the work failed (data, a damaged run, training), 2 bad input, 130 interrupted."""
    _leave(_run())


def _run() -> int:
    debug = os.environ.get("MNISTCTL_DEBUG") == "1"
    try:
        code = command()(prog_name="mnistctl", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Abort:
        err.print("[red]interrupted[/]")
        return 130
    except MnistctlError as exc:
        if debug:
            raise
        report(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        err.print("[red]interrupted[/]")
        return 130
    except Exception as exc:
        if debug:
            raise
        if _is_usage_error(exc):
            where = exc.ctx.command_path if getattr(exc, "ctx", None) else "mnistctl"
            report(exc.format_message().splitlines()[0], f"see {where} --help")
            return 2
        report(f"internal error: {type(exc).__name__}: {exc}", "rerun with MNISTCTL_DEBUG=1 for the traceback")
        return 1


def _leave(code: int) -> None:
    """Exit. A process that loaded torch skips the interpreter's teardown of its modules (0.2-1 s):
    the command has closed its files, so only standard output and error need flushing."""
    if "torch" in sys.modules:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def _is_usage_error(exc: Exception) -> bool:
    """Typer's own parsing errors (bad value, unknown option or command), by their public protocol."""
    return getattr(exc, "exit_code", None) == 2 and callable(getattr(exc, "format_message", None))
