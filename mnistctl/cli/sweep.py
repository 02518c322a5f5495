"""``mnistctl sweep``: search training settings with Optuna, each trial an ordinary run; ``--show``/``--plot`` read a study."""

from __future__ import annotations

import inspect
import shlex
import sys
import typing
from pathlib import Path
from typing import Any, Optional

import typer

from mnistctl.cli import options as cli_options
from mnistctl.cli import train

NAME = "sweep"
PANEL = "Sweep"
TRAIN_ONLY = ("resume", "ignore_data_mismatch", "tui", "name", "nproc")


def _options(
    study: str = typer.Option(..., "--study", metavar="NAME", help="Study name: workers with the same name and storage share its trials.", rich_help_panel=PANEL, show_default=False),
    trials: int = typer.Option(20, "--trials", "-n", metavar="N", help="Trials the study should hold in the end (finished, pruned or running), shared by all workers.", rich_help_panel=PANEL),
    space: Optional[Path] = typer.Option(None, "--space", metavar="FILE", parser=cli_options.given_path, help="TOML file of the settings to vary (choice, int or float range, log scale).", rich_help_panel=PANEL, show_default=False),
    storage: Optional[str] = typer.Option(None, "--storage", metavar="URL", help="Optuna storage: a database URL, such as sqlite:///studies.db or postgresql+psycopg2://host/db \\[default: sqlite in the runs folder].", rich_help_panel=PANEL, show_default=False),
    pruner: str = typer.Option("median", "--pruner", metavar="median|halving|none", help="Stop hopeless trials early.", rich_help_panel=PANEL),
    show: bool = typer.Option(False, "--show", help="Print the study's trials best first, the best settings and the parameter importances; train nothing.", rich_help_panel=PANEL),
    as_json: bool = typer.Option(False, "--json", help="With --show: print the study as JSON instead of tables.", rich_help_panel=PANEL),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="PNG", parser=cli_options.given_path, help="Write the optimisation history and the importances to this new PNG; train nothing.", rich_help_panel=PANEL, show_default=False),
) -> None:
    """The sweep's own options; the train options follow."""


def command(**options: Any) -> None:
    """Search training settings with Optuna: each trial is an ordinary run; run it in several terminals to share the work."""
    if options["as_json"] and not options["show"]:
        from mnistctl.errors import UsageError

        raise UsageError("--json prints the study that --show reads", "add --show: mnistctl sweep --study NAME --show --json")
    if options["show"] or options["plot"] is not None:
        _report(options)
        return
    _sweep(options)


def _signature(*functions) -> inspect.Signature:
    params = []
    for function in functions:
        hints = typing.get_type_hints(function, include_extras=True)
        params += [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[p.name])
            for p in inspect.signature(function).parameters.values()
            if p.name not in TRAIN_ONLY
        ]
    return inspect.Signature(params, return_annotation=None)


command.__signature__ = _signature(_options, train.command)


def _sweep(options: dict[str, Any]) -> None:
    from rich.markup import escape

    from mnistctl import runs
    from mnistctl.cli.progress import make_observer
    from mnistctl.console import err, literal, out
    from mnistctl.errors import UsageError
    from mnistctl.training import space, sweep

    if options["space"] is None:
        raise UsageError("a sweep needs a space file", "pass --space FILE, e.g. with: lr = { float = [0.01, 0.5], log = true }")
    if options["trials"] < 1:
        raise UsageError(f"--trials must be at least 1 (got {options['trials']})", "e.g. --trials 20")
    flags = train.flags(options)
    dimensions = space.load(options["space"], flags, options["config"], options["preset"])
    base = space.settings(flags, options["config"], options["preset"])
    if not base["val_split"]:
        raise UsageError("a sweep needs a validation split: its objective is the validation accuracy", "set --val-split above 0")
    pruner = sweep.make_pruner(options["pruner"])
    _quiet_optuna()
    url = sweep.storage_url(options["storage"], options["runs_dir"])
    _check_study_name(options["study"])
    if options["storage"] is None:
        runs.make_root(runs.runs_dir(options["runs_dir"]))
    study = sweep.load_study(options["study"], sweep.open_storage(url), create=True, pruner=pruner)
    sweep.join(study, sweep.fixed_settings(base, dimensions), sweep.space_record(dimensions))
    quiet = options["quiet"]
    worker = sweep.Worker(
        study, dimensions, flags, options["trials"], options["config"], options["preset"], options["runs_dir"],
        options["data_dir"], _command(sys.argv[1:], options["storage"]), lambda: make_observer(quiet), train.run_with_signals,
        sweep.public_url(url),
    )
    if not quiet:
        held, wanted = worker.counted(), options["trials"]
        counts = f"{held} of {wanted} trials" if held < wanted else f"{held} trial{'s' * (held != 1)}, --trials {wanted}: nothing to run (raise --trials to run more)"
        out.print(f"study [bold]{escape(study.study_name)}[/] in {escape(sweep.public_url(url))}: {counts}", soft_wrap=True)
    try:
        ran = worker.work(lambda trial: quiet or out.print(_trial_line(trial), soft_wrap=True))
    except sweep.Interrupted as exc:
        if exc.told:
            err.print(f"[yellow]stopped[/]: the trial's run {literal(exc.run_dir)} had ended and its result is recorded; the study is kept", soft_wrap=True)
            err.print("continue the study by running the same command again", soft_wrap=True)
            raise typer.Exit(130)
        if exc.run_dir is None:
            err.print("[yellow]stopped[/]: the trial was interrupted before its run began; the study is kept", soft_wrap=True)
        else:
            err.print(f"[yellow]stopped[/]: the trial's run {literal(exc.run_dir)} is resumable (mnistctl train --resume); the study is kept", soft_wrap=True)
        err.print("continue the study by running the same command again; it retries the stopped trial's settings first", soft_wrap=True)
        raise typer.Exit(130)
    if not quiet:
        if held < wanted:
            out.print(f"this worker ran {ran} trial{'s' * (ran != 1)}; the study holds {worker.counted()} of {wanted}")
        _print_study(study, options["runs_dir"])


def _command(argv: list[str], storage: str | None) -> str:
    """The command line as each trial's config.json records it, the storage URL without its password."""
    from mnistctl.training.sweep import public_url

    if storage is None:
        return shlex.join(["mnistctl", *argv])
    shown = public_url(storage)
    return shlex.join(["mnistctl", *(shown if arg == storage else f"--storage={shown}" if arg == f"--storage={storage}" else arg for arg in argv)])


def _check_study_name(name: str) -> None:
    """A study's trials are runs named after it (NAME-t0, NAME-t1, ...): a name they cannot have is refused before the study is stored."""
    from mnistctl import runs
    from mnistctl.errors import UsageError

    if runs.slug(name) != name or not _is_run_name(f"{name}-t0"):  # not as a/b would be, run as a-b, which is another study's
        raise UsageError(f"study name {name!r} is not allowed: its trials are runs named after it", "use letters, digits, '-', '_' or '.', not starting with '.', e.g. --study lr-search")


def _is_run_name(name: str) -> bool:
    from mnistctl import runs
    from mnistctl.errors import UsageError

    try:
        runs.validate_name(name)
    except UsageError:
        return False
    return True


def _trial_line(trial) -> str:
    from rich.markup import escape

    from mnistctl.reading.sweep import best_val_acc, failure, status

    params = " ".join(f"{k}={_value(v)}" for k, v in trial.params.items())
    acc = best_val_acc(trial)
    result = " ".join(part for part in (f"best val acc {acc:.2%}" if acc is not None else "", escape(failure(trial) or "")) if part)
    return f"trial {trial.number} [bold]{status(trial).label}[/] {result}  {escape(params)}  -> {escape(trial.user_attrs.get('run', '-'))}"


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _report(options: dict[str, Any]) -> None:
    from mnistctl.console import dumps, literal, out
    from mnistctl.reading import sweep as reading
    from mnistctl.training import sweep

    plot = options["plot"]
    cli_options.new_png(plot, "--plot", "sweep.png")
    _quiet_optuna()
    url = sweep.storage_url(options["storage"], options["runs_dir"])
    study = sweep.load_study(options["study"], sweep.open_storage(url, create=False))
    if options["as_json"]:
        print(dumps(reading.as_json(study, options["runs_dir"]), indent=2))
    elif options["show"]:
        _print_study(study, options["runs_dir"])
    if plot is not None:
        written = reading.plot(study, plot)
        if not options["as_json"]:
            out.print(f"figure written to [bold]{literal(written)}[/]", soft_wrap=True)


def _print_study(study, runs_dir) -> None:
    from rich.markup import escape

    from mnistctl.cli.compare import runs_table
    from mnistctl.console import out, print_whole, table_width, tighten
    from mnistctl.reading import sweep as reading
    from mnistctl.reading.compare import COLUMN, Column, Comparison

    rows = reading.rows(study, runs_dir)
    params = list(dict.fromkeys(k for row in rows for k in row if k.startswith("param:")))  # in the space file's order
    for row in rows:
        row.update({k: _value(row[k]) if k in row else "" for k in params})

    def table(full: bool, split: bool):
        """Every column, or without epochs, times and names; the searched settings' headers split at '.' when ``split``."""
        searched = [Column(k, k[6:].replace(".", ".\n") if split else k[6:]) for k in params]
        if full:
            columns = (Column("trial", "trial"), COLUMN["status"], *searched, Column("epochs", "epochs"), COLUMN["val_acc"], COLUMN["test_acc"], Column("time", "trial time", "min"), COLUMN["name"])
        else:
            columns = (Column("trial", "trial"), COLUMN["status"], *searched, Column("val_acc", "best val", "max"), COLUMN["test_acc"])
        return runs_table(Comparison(rows, []), columns, title=f"Study {escape(study.study_name)}: trials, best validation accuracy first")

    layouts = [(full, table(full, split)) for full in (True, False) for split in (False, True)]
    full, shown = next((layout for layout in layouts if table_width(layout[1]) <= out.width), None) or next(
        (layout for layout in layouts if tighten(layout[1], out.width)), layouts[-1])  # closer columns next; else the last, whole
    print_whole(shown)
    if not full:
        out.print(f"[dim]trial N is the run {escape(study.study_name)}-tN; a wider terminal also shows epochs, times and run names[/]")
    if outside := [str(row["trial"]) for row in rows if row["ended_outside"]]:
        which = f"trial {outside[0]}" if len(outside) == 1 else f"trials {', '.join(outside)}"
        out.print(f"[dim]{which} ended outside the sweep (train --resume); the study holds no result for it[/]")
    best = reading.best_trial(study)
    if best is None:
        out.print("no trial has finished in the sweep yet")
        return
    from mnistctl.training.space import flag

    out.print(f"best: trial {best.number}, validation accuracy [bold]{best.value:.2%}[/], run {escape(str(best.user_attrs.get('run', '?')))}", soft_wrap=True)
    config = reading.run_config(study, best, runs_dir)
    if config is not None:
        out.print(f"  train it again with: mnistctl train --config {escape(shlex.quote(str(config)))}", soft_wrap=True)
    else:  # its run is elsewhere, e.g. on another machine sharing the study
        out.print("  its searched settings, to add to the sweep's own train options: " + " ".join(flag(k, v) for k, v in best.params.items()), soft_wrap=True)
    importances = reading.importances(study)
    if importances:
        out.print("parameter importances (fANOVA): " + ", ".join(f"{k} {v:.0%}" for k, v in importances.items()), soft_wrap=True)

