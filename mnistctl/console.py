"""Shared Rich consoles: results go to stdout, warnings and errors to stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


TONE_STYLE = {"done": "green", "live": "yellow", "idle": "dim", "warn": "yellow", "error": "red"}


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True)


def report(message: str, hint: str | None = None) -> None:
    """An error as one red line, with its hint dimmed."""
    from rich.markup import escape

    line = f"[bold red]error:[/] {escape(message)}"
    if hint:
        line += f" [dim]({escape(hint)})[/]"
    err.print(line, soft_wrap=True)
