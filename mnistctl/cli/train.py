"""``mnistctl train``: train a registered architecture into a new run directory."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mnistctl.cli import options
from mnistctl.errors import RunError, UsageError
from mnistctl.training.config import AUGMENT_KEYS

NAME = "train"

ARCH_HELP = "Architecture name (see `mnistctl list archs`)."


def command(
    arch: Optional[str] = typer.Option(None, "--arch", "-a", autocompletion=options.complete_archs, help=ARCH_HELP + " \\[default: simplecnn]", rich_help_panel="Model"),
    set_: list[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help="Architecture option key=value, repeatable (e.g. dropout=0.3, channels=32,64).", rich_help_panel="Model"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd, adam, adamw, adadelta... \\[default: sgd]", rich_help_panel="Optimisation"),
    opt_set: list[str] = typer.Option([], "--opt-set", metavar="KEY=VALUE", help="Optimizer option key=value, repeatable (e.g. momentum=0.95).", rich_help_panel="Optimisation"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate \\[default: the optimizer's].", rich_help_panel="Optimisation"),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay \\[default: the optimizer's].", rich_help_panel="Optimisation"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="LR scheduler (see `mnistctl list schedulers`) \\[default: step].", rich_help_panel="Optimisation"),
    sched_set: list[str] = typer.Option([], "--sched-set", metavar="KEY=VALUE", help="Scheduler option key=value, repeatable (e.g. milestones=5,10).", rich_help_panel="Optimisation"),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-e", help="Epochs \\[default: 12].", rich_help_panel="Optimisation"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Global batch size: with several processes each takes an equal share \\[default: 128].", rich_help_panel="Optimisation"),
    ema: Optional[float] = typer.Option(None, "--ema", metavar="DECAY", help="Keep an exponential moving average of the weights (e.g. 0.999): it is what is validated and saved \\[default: off].", rich_help_panel="Optimisation"),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="Random rotation, shift, zoom and elastic distortion of training images; any amount below turns it on; the others keep the values of --preset or --config, else their defaults.", rich_help_panel="Data"),
    rotation: Optional[float] = typer.Option(None, "--rotation", help="Augmentation: maximum rotation in degrees \\[default: 10].", rich_help_panel="Data"),
    shift: Optional[float] = typer.Option(None, "--shift", help="Augmentation: maximum shift as a fraction of the side \\[default: 0.1].", rich_help_panel="Data"),
    zoom: Optional[float] = typer.Option(None, "--zoom", help="Augmentation: maximum zoom in or out as a fraction of the size \\[default: 0].", rich_help_panel="Data"),
    elastic: Optional[float] = typer.Option(None, "--elastic", help="Augmentation: elastic distortion, its strength in pixels (Simard et al. used 34) \\[default: 0].", rich_help_panel="Data"),
    val_split: Optional[int] = typer.Option(None, "--val-split", help="Images held out of the training set for validation \\[default: 5000].", rich_help_panel="Data"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Train on the first N training images only (quick experiments).", rich_help_panel="Data"),
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help=options.DATA_DIR_HELP, metavar="DIR", parser=options.given_path, rich_help_panel="Data")] = None,
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping", help="Stop after this many epochs without a better validation result (see --monitor).", rich_help_panel="Run"),
    monitor: Optional[str] = typer.Option(None, "--monitor", help="What picks the best checkpoint and drives early stopping: val_acc or val_loss (smoother on a small split) \\[default: val_acc].", rich_help_panel="Run"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed \\[default: 0].", rich_help_panel="Run"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or mps \\[default: auto].", rich_help_panel="Device"),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto, fp32 or bf16 (bf16 autocast where the hardware has it) \\[default: auto].", rich_help_panel="Device"),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Channels-last memory format \\[default: on].", rich_help_panel="Device"),
    name: Optional[str] = typer.Option(None, "--name", help="Run name \\[default: from the key hyperparameters].", rich_help_panel="Run"),
    runs_dir: Annotated[Optional[Path], typer.Option("--runs-dir", help=options.RUNS_DIR_HELP, metavar="DIR", parser=options.given_path, rich_help_panel="Run")] = None,
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", metavar="N", help="Write the last checkpoint every N epochs \\[default: 1].", rich_help_panel="Records"),
    log_layers: bool = typer.Option(False, "--log-layers", help="Record per-layer statistics (activations, gradients, update ratios) every few steps.", rich_help_panel="Records"),
    log_layers_every: Optional[int] = typer.Option(None, "--log-layers-every", metavar="N", help="Steps between layer statistics; implies --log-layers \\[default: 50].", rich_help_panel="Records"),
    preset: Optional[str] = typer.Option(None, "--preset", help="Start from a preset: fast (narrow simplecnn, 2 epochs: 99.01% test over seeds 0-2, means of 8.4-10.3 s start to exit on 2 quiet CPU cores) or best (strided-bn, 40 epochs with augmentation, best checkpoint by validation loss: 99.65-99.79% test over seeds 0-2, mean 99.70%, 26.5-29.3 min on 2 cores). A --config file's settings and the other flags go over it.", rich_help_panel="Run"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE", parser=options.given_path, help="TOML or JSON file of settings (a run's config.json works); flags override it.", rich_help_panel="Run"),
    resume: Optional[str] = typer.Option(None, "--resume", autocompletion=options.complete_runs, help="Continue an interrupted run: its name, path, or 'latest'.", rich_help_panel="Run"),
    ignore_data_mismatch: options.IgnoreDataMismatch = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output.", rich_help_panel="Run"),
    tui: bool = typer.Option(False, "--tui", help="Show the live dashboard while training.", rich_help_panel="Run"),
    nproc: Optional[int] = typer.Option(
        None, "--nproc", min=1, metavar="N", rich_help_panel="Distributed",
        help="Train with N processes on this machine (PyTorch DDP through torch's elastic launcher: gloo on CPU, NCCL with one GPU per process). "
        "--batch-size stays the global batch. For several machines start `torchrun ... -m mnistctl train` on each (see README).",
    ),
) -> None:
    """Train a registered architecture; each run gets its own directory under runs/."""
    from mnistctl import runs
    from mnistctl.cli.progress import make_observer
    from mnistctl.training import space
    from mnistctl.registry import debug_cause
    from mnistctl.training.distributed import TIMEOUT_ENV, World, collective_timeout, peer_lost, peer_silent
    from mnistctl.training.trainer import Trainer

    world = World.detect()
    launching = bool(nproc and nproc > 1 and not world.launched)
    if nproc and world.launched and nproc != world.local_size:
        raise UsageError(f"--nproc {nproc} inside a launch of {world.local_size} processes per machine", "leave --nproc out when starting with torchrun")
    if tui and not world.launched:  # checked by the process the user started, before any worker
        _check_dashboard(quiet)
    tui = tui and world.is_main and not launching
    observer = make_observer(quiet or tui or not world.is_main)
    given = flags(locals())
    if resume is not None:
        device = given.pop("device")  # where to continue, not how to train
        _refuse_changes(given, config, preset, log_layers_every is not None, lambda: runs.resolve(resume, runs_dir).config_path)
        trainer = Trainer.resume(runs.resolve(resume, runs_dir), observer, data_dir, ignore_data_mismatch, device)
    else:
        trainer = Trainer(space.settings(given, config, preset), observer, runs_dir, data_dir, command=shlex.join(["mnistctl", *sys.argv[1:]]))
    if launching:
        from mnistctl.models import pick_device
        from mnistctl.training.distributed import launch, refuse_unshared

        world.check_batch(trainer.config["batch_size"], nproc, resuming=resume is not None)
        device = pick_device(trainer.config["device"])  # what every worker would refuse, refused once
        refuse_unshared(device, nproc)
        trainer.check(on_cpu=True)
        on_cpu = device.type == "cpu"
        del trainer  # its data and model: each worker loads its own
        raise typer.Exit(launch(nproc, sys.argv[1:], on_cpu))
    try:
        trainer.prepare()
        if tui:
            from mnistctl.tui.app import run_with_trainer

            code = run_with_trainer(trainer)
        else:
            summary = run_with_signals(trainer)
    except BaseException as exc:
        trainer.abandon()  # stopped before training began: no stub run is left
        if world.launched and peer_lost(exc):
            raise RunError(f"rank {world.rank} lost contact with the other training processes", "the launcher's line below names the one that stopped") from debug_cause(exc)
        if world.launched and peer_silent(exc):
            raise RunError(
                f"rank {world.rank} waited {collective_timeout():g} s for a training process that stopped answering ({TIMEOUT_ENV})",
                f"the launcher's line below names it; if it was only slow, set {TIMEOUT_ENV} higher",
            ) from debug_cause(exc)
        raise
    if tui:
        if code == 130:
            _print_stopped(trainer)
        elif code == 0:
            _report(trainer, runs.Run(trainer.run_dir).summary, quiet)
        raise typer.Exit(code)
    _report(trainer, summary, quiet)


def flags(options: dict[str, Any]) -> dict[str, Any]:
    """The training flags from this command's option values, by parameter name (None: not given)."""
    o = options
    return {
        "arch": o["arch"], "arch_options": _pairs(o["set_"]), "optimizer": o["optimizer"], "optimizer_options": _pairs(o["opt_set"]),
        "lr": o["lr"], "weight_decay": o["weight_decay"], "scheduler": o["scheduler"], "scheduler_options": _pairs(o["sched_set"]),
        "epochs": o["epochs"], "batch_size": o["batch_size"], "ema": o["ema"], "val_split": o["val_split"], "limit": o["limit"],
        "early_stopping": o["early_stopping"], "monitor": o["monitor"], "seed": o["seed"], "device": o["device"], "precision": o["precision"],
        "channels_last": o["channels_last"], "name": o.get("name"), "checkpoint_every": o["checkpoint_every"],
        "augment": _augment(o["augment"], {key: o[key] for key in AUGMENT_KEYS}),
        "log_layers": _log_layers(o["log_layers"], o["log_layers_every"]),
    }


def _refuse_changes(flags: dict, config, preset, every_given: bool, config_path) -> None:
    """A resumed run continues exactly as it was configured: settings given beside --resume are refused, not ignored,
    each named as it was typed, with the run's config.json to start a new run from."""
    from mnistctl.errors import MnistctlError, UsageError

    spelled = {"arch_options": "set", "optimizer_options": "opt-set", "scheduler_options": "sched-set", "log_layers": "log-layers" + "-every" * every_given}
    given = []
    for key, value in flags.items():
        if key == "augment" and value:
            given += ["--" + amount for amount in value]
        elif value is not None:
            given.append(("--no-" if value is False else "--") + spelled.get(key, key.replace("_", "-")))
    given += ["--config"] * bool(config) + ["--preset"] * bool(preset)
    if not given:
        return
    try:
        path = shlex.quote(str(config_path()))
    except MnistctlError:
        path = "RUN/config.json"
    raise UsageError(
        f"--resume continues a run with its own settings, so {', '.join(given)} would be ignored",
        f"drop {'it' if len(given) == 1 else 'them'}, or start a new run from its settings: mnistctl train --config {path} ...",
    )


def _check_dashboard(quiet: bool) -> None:
    """--tui needs a terminal to draw on and to read its q from, and shows what --quiet hides."""
    if quiet:
        raise UsageError("--quiet hides the progress that --tui shows", "drop one of them")
    options.require_terminal("--tui", "run it in a terminal, or drop --tui and follow the run with mnistctl watch")


def _log_layers(enabled: bool, every: int | None) -> int | None:
    from mnistctl.training.layerstats import DEFAULT_EVERY

    return every if every is not None else (DEFAULT_EVERY if enabled else None)


def _pairs(items: list[str]) -> dict[str, str] | None:
    from mnistctl.registry import split_pair

    return dict(split_pair(i) for i in items) or None


def _augment(enabled: bool | None, amounts: dict[str, float | None]) -> dict | bool | None:
    """The augmentation flags: amounts given, False for --no-augment, None when neither was given."""
    from mnistctl.errors import UsageError

    given = {key: value for key, value in amounts.items() if value is not None}
    if enabled is False:
        if given:
            names = ", ".join("--" + key for key in given)
            raise UsageError(f"--no-augment turns augmentation off, so {names} would be ignored", "drop one or the other")
        return False
    return given if enabled or given else None


def run_with_signals(trainer) -> dict:
    """First Ctrl-C or SIGTERM: stop after the current step and checkpoint (every rank, under a launcher). A second one aborts a single process."""
    import signal

    def stop(signum, frame):
        if trainer.stop_requested and not trainer.world.launched:
            raise KeyboardInterrupt
        trainer.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return trainer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_stopped(trainer) -> None:
    """How to go on: resume an interrupted run, or test one whose test pass was stopped after training completed."""
    from rich.markup import escape

    from mnistctl.console import err, literal

    path = escape(shlex.quote(str(trainer.run_dir)))
    if trainer.test_stopped:
        err.print(f"[yellow]stopped[/] in the test pass: training is complete and saved in {literal(trainer.run_dir)}", soft_wrap=True)
        err.print(f"test it with: mnistctl eval {path}", soft_wrap=True)
        return
    err.print(f"[yellow]stopped[/] {_where(trainer)}: the last checkpoint is saved in {literal(trainer.run_dir)}", soft_wrap=True)
    err.print(f"resume with: mnistctl train --resume {path}", soft_wrap=True)


def _where(trainer) -> str:
    """Where training stopped: ``in epoch 2, at step 31 of 157``, ``after epoch 1``."""
    if trainer.step_in_epoch:
        return f"in epoch {trainer.epoch + 1}, at step {trainer.step_in_epoch:,} of {trainer.steps_per_epoch:,}"
    return f"after epoch {trainer.epoch}" if trainer.epoch else "before its first step"


def _report(trainer, summary: dict, quiet: bool) -> None:
    from mnistctl.cli.progress import summary_line
    from mnistctl.console import literal, out
    from mnistctl.runs import Status

    if summary["status"] == Status.INTERRUPTED or trainer.test_stopped:
        if not trainer.world.is_main:
            raise typer.Exit(0)  # rank 0 reports the stop: a launcher tears the run down at the first non-zero exit
        _print_stopped(trainer)
        raise typer.Exit(130)
    if not quiet and trainer.world.is_main:
        out.print(summary_line(summary, trainer.config), soft_wrap=True)
        out.print(f"run saved in [bold]{literal(trainer.run_dir)}[/]", soft_wrap=True)
