"""``mnistctl watch``: a live dashboard of a run's training metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from mnistctl.cli import options
from mnistctl.errors import UsageError
from mnistctl.runs import STALLED_AFTER

NAME = "watch"


def command(
    run: str = typer.Argument("latest", metavar="RUN", autocompletion=options.complete_runs, help="Run name or path; the newest run by default."),
    runs_dir: options.RunsDir = None,
    stalled_after: float = typer.Option(STALLED_AFTER, "--stalled-after", metavar="SECONDS", show_default=False, help=f"Seconds without new metrics before a running run counts as stalled \\[default: {STALLED_AFTER:g}]."),
) -> None:
    """Watch a run's training live: progress, ETA, loss and accuracy charts, epochs and events, per-layer statistics (q quits, ? keys, n/p switch runs, v layer view)."""
    from mnistctl import runs

    if not stalled_after > 0:
        raise UsageError(f"--stalled-after must be positive, got {stalled_after:g}", "e.g. --stalled-after 120")
    waiting = run == "latest" and not runs.list_runs(runs_dir)
    if not waiting:
        runs.resolve(run, runs_dir)  # a mistyped run is named first, even without a terminal
    options.require_terminal("watch", "run it in a terminal; without one, mnistctl compare RUN shows where a run stands")
    if waiting:
        _wait_for_a_run(runs_dir)
    run_ = runs.resolve(run, runs_dir)
    from mnistctl.console import run_app
    from mnistctl.tui.app import WatchApp

    run_app(WatchApp(run_.path, runs.runs_dir(runs_dir), stalled_after=stalled_after))


def _wait_for_a_run(runs_dir: Path | None) -> None:
    """Started before training has created its run: wait for the first one to appear."""
    import os
    import shlex
    import time

    from mnistctl import runs
    from mnistctl.console import err

    root = runs.runs_dir(runs_dir)
    first_existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if first_existing is not None and not first_existing.is_dir():
        raise UsageError(f"cannot watch runs in {root}: {first_existing} is a file", f"pass --runs-dir DIR or set {runs.RUNS_ENV} to a folder")
    given = "given to --runs-dir" if runs_dir is not None else f"in {runs.RUNS_ENV}" if os.environ.get(runs.RUNS_ENV) else None
    if given and not root.exists():  # only the default folder is waited for until training creates it
        raise UsageError(f"cannot watch runs in {root}: no such folder", f"check the path {given}, or train there first: mnistctl train --runs-dir {shlex.quote(str(root))}")
    err.print(f"waiting for a run to start in {root} (Ctrl-C to stop)", soft_wrap=True, markup=False)
    while not runs.list_runs(runs_dir):
        time.sleep(0.5)
