"""Options several commands share, defined once, with one meaning per name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mnistctl.runs.layout import MISMATCH_FLAG

RUNS_DIR_HELP = "Where runs live \\[default: $MNISTCTL_RUNS_DIR or ./runs]."
RUN_HELP = "Run name or directory, 'latest', or a weights file in RUN/weights/."


def complete_runs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Run names for shell completion, newest first, in the --runs-dir given on the line if any."""
    from mnistctl import runs

    return [r.name for r in reversed(runs.list_runs(ctx.params.get("runs_dir"))) if r.name.startswith(incomplete)]


def complete_archs(incomplete: str) -> list[str]:
    from mnistctl.plugins import archs

    return [name for name in archs().names() if name.startswith(incomplete)]


def complete_plot_kinds(incomplete: str) -> list[str]:
    from mnistctl.reading.visualize import KINDS

    done, _, last = incomplete.rpartition(",")
    return [f"{done},{kind}" if done else kind for kind in (*KINDS, "all") if kind.startswith(last)]


def given_path(value: str) -> Path:
    """A path option's value; an empty one (an unset variable, say) would otherwise mean the current folder."""
    if not value:
        raise typer.BadParameter("is empty; name a path, or leave the option out")
    return Path(value)


RunArg = Annotated[str, typer.Argument(help=RUN_HELP, metavar="RUN", autocompletion=complete_runs)]
RunsDir = Annotated[Optional[Path], typer.Option("--runs-dir", help=RUNS_DIR_HELP, show_default=False, metavar="DIR", parser=given_path)]
Weights = Annotated[Optional[str], typer.Option("--weights", help="Which weights of the run: best, last or initial \\[default: best].", show_default=False, metavar="best|last|initial")]
OldCheckpoint = Annotated[Optional[str], typer.Option("--checkpoint", hidden=True, help="Deprecated spelling of --weights.")]
DATA_DIR_HELP = "Folder with the four MNIST IDX files \\[default: $MNISTCTL_DATA_DIR, the cache, or a download]."
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help=DATA_DIR_HELP, show_default=False, metavar="DIR", parser=given_path)]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
IgnoreDataMismatch = Annotated[bool, typer.Option(
    MISMATCH_FLAG, help="Use the data found even when its checksums differ from those the run recorded.", show_default=False,
)]


def new_file(path: Path | None, flag: str) -> None:
    """Refuse a named output that exists (mnistctl never replaces a file the user names), or whose folder cannot take it."""
    import errno
    import os
    import tempfile

    from mnistctl.errors import UsageError

    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder", f"name a new file in it, e.g. {path / 'NAME'}")
    if path.exists() or path.is_symlink():
        raise UsageError(f"{flag} {path} already exists", "name a new file, or move the old one away first")
    folder = next(p for p in path.absolute().parents if p.exists())
    if not folder.is_dir():  # a file in the way: the one message for it, before any work
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise UsageError(f"{flag} {path} cannot be written: {folder} takes no new files ({exc.strerror})", "choose a folder you can write to") from None


def new_png(path: Path | None, flag: str, example: str) -> None:
    """Refuse a named PNG output that is not a .png path, or that exists."""
    new_typed_file(path, flag, "PNG", example)


def new_typed_file(path: Path | None, flag: str, kind: str, example: str) -> None:
    """Refuse a named output whose suffix is not ``kind``'s (``.png`` for PNG), or that exists."""
    from mnistctl.errors import UsageError

    new_file(path, flag)
    suffix = f".{kind.lower()}"
    if path is not None and path.suffix.lower() != suffix:
        raise UsageError(f"{flag} {path} is not a {suffix} path", f"the file is written as {kind}, e.g. {flag} {example}")


def output_folder(path: Path | str | None, flag: str) -> None:
    """Refuse a named output folder that is a file, or that is not there yet and is named like one (a picture)."""
    from mnistctl.data.imagefile import IMAGE_SUFFIXES
    from mnistctl.errors import UsageError

    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder", "pass a folder")
    if not path.exists() and path.suffix.lower() in {*IMAGE_SUFFIXES, ".pdf", ".svg"}:
        raise UsageError(f"{flag} {path} names a file, but {flag} takes a folder for the images", f"pass a folder, e.g. {flag} {path.with_suffix('')}")


def weights(chosen: str | None, old: str | None) -> str | None:
    """``--weights``, or its old spelling ``--checkpoint`` with a deprecation warning (removed in 0.3)."""
    from mnistctl.errors import UsageError

    if old is None:
        return chosen
    from mnistctl.console import warn

    warn(f"--checkpoint {old} is deprecated and will be removed in 0.3: use --weights {old}")
    if chosen is not None and chosen != old:
        raise UsageError(f"--weights {chosen} and --checkpoint {old} disagree", "pass --weights alone")
    return old


def require_terminal(what: str, hint: str) -> None:
    """A dashboard draws on stdout and reads its keys from stdin: without a terminal on both it could never be quit."""
    import sys

    from mnistctl.console import out
    from mnistctl.errors import UsageError

    for stream, is_terminal in (("stdout", out.is_terminal), ("stdin", sys.stdin is not None and sys.stdin.isatty())):
        if not is_terminal:
            raise UsageError(f"{what} needs a terminal, but {stream} is not one", hint)


def refuse_repeated_runs(refs: list[str], chosen: list) -> None:
    """The same weights twice would be averaged with themselves."""
    from mnistctl.errors import UsageError

    seen: dict = {}
    for ref, (found, weights) in zip(refs, chosen):
        key = (found.path.resolve(), weights)
        if key in seen:
            again = f"--run {ref} is given twice" if seen[key] == ref else f"--run {seen[key]} and --run {ref} are the same run"
            raise UsageError(again, "pass each run once; pick other weights with RUN/weights/<best|last|initial>.safetensors")
        seen[key] = ref
