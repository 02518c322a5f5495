"""The ``mnistctl`` command. Each sub-command lives in its own module; heavy imports stay inside functions."""

from __future__ import annotations

import os
import sys

import typer

from mnistctl import __version__
from mnistctl.cli import compare, eval, export, list, predict, train, visualize, watch
from mnistctl.console import err, report
from mnistctl.errors import MnistctlError

app = typer.Typer(
    name="mnistctl",
    help="Train, inspect and use convolutional digit classifiers on MNIST.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
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


for module in (train, eval, visualize, predict, compare, watch, export):
    app.command(module.NAME, help=module.command.__doc__)(module.command)
app.add_typer(list.app, name="list")


def main() -> None:
    debug = os.environ.get("MNISTCTL_DEBUG") == "1"
    try:
        app(prog_name="mnistctl")
    except MnistctlError as exc:
        if debug:
            raise
        report(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        report(f"internal error: {type(exc).__name__}: {exc}", "rerun with MNISTCTL_DEBUG=1 for the traceback")
        sys.exit(1)
    finally:
        _skip_final_collection()


def _skip_final_collection() -> None:
    """The process is exiting: spare it the last garbage collections over torch's objects (about 1 s)."""
    import gc

    gc.freeze()

