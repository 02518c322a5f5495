"""Shared Rich consoles: results go to stdout, warnings and errors to stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


TONE_STYLE = {"done": "green", "live": "yellow", "idle": "dim", "warn": "yellow", "error": "red"}
CONTROLS = {c: repr(chr(c))[1:-1] for c in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (\\x1b, \\n): a file's name cannot move the cursor or split a line."""
    return text.translate(CONTROLS)


def counted(n, noun: str) -> str:
    """``1 epoch``, ``3 epochs``; an unknown count (``?``) takes the plural."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def warn(message: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]warning:[/] {escape(printable(message))}", soft_wrap=True)


def report(message: str, hint: str | None = None) -> None:
    """An error as one red line, with its hint dimmed."""
    from rich.markup import escape

    line = f"[bold red]error:[/] {escape(printable(message))}"
    if hint:
        line += f" [dim]({escape(printable(hint))})[/]"
    err.print(line, soft_wrap=True)


def run_app(app, **options) -> None:
    """Run a Textual app; an error it stopped on is raised here, to be one line like any other, instead of
    Textual's traceback on the screen and exit code 0."""
    import io

    from textual.worker import WorkerFailed

    app.error_console = Console(file=io.StringIO())
    app.run(**options)
    error = app._exception
    if error is not None:
        raise error.error if isinstance(error, WorkerFailed) else error
