"""A sweep's study read back: its trials best first, the best settings, parameter importances and a figure."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from mnistctl import runs
from mnistctl.errors import MnistctlError, RunError
from mnistctl.reading.compare import number
from mnistctl.runs import Status

STATES = {"COMPLETE": Status.FINISHED, "PRUNED": Status.PRUNED, "FAIL": Status.FAILED, "RUNNING": Status.RUNNING, "WAITING": Status.WAITING}


def status(trial) -> Status:
    """The trial's state as a run status; a finished or failed trial says how its run ended (early_stopped, interrupted),
    unless what it recorded is no status (then its state stands)."""
    state = STATES[trial.state.name]
    recorded = trial.user_attrs.get("status")
    known = isinstance(recorded, str) and recorded in {s.value for s in Status}
    return Status(recorded) if known and state in (Status.FINISHED, Status.FAILED) else state


def trials(study) -> list:
    """The study's trials, leaving out those a worker started and dropped because the study was already full."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]


def objective(trial) -> float | None:
    """The objective of a finished trial; None for any other, a pruned one too (Optuna gives it its last epoch's report)."""
    return trial.value if trial.state.name == "COMPLETE" else None


def best_val_acc(trial) -> float | None:
    """The objective of a finished trial, else the best validation accuracy it reported before it stopped."""
    if objective(trial) is not None:
        return trial.value
    return max(trial.intermediate_values.values(), default=None)


def params(trial) -> dict[str, Any]:
    """The trial's searched settings; for a queued trial (waiting, e.g. retried after Ctrl-C), those it was queued with."""
    if trial.params or trial.state.name != "WAITING":
        return trial.params
    queued = trial.system_attrs.get("fixed_params")  # where Optuna keeps an enqueued trial's settings until it starts
    return queued if isinstance(queued, dict) else {}


def failure(trial) -> str | None:
    """Why the trial failed, when it is known: the error that made its settings unfit, or a loss that diverged (failed by
    the sweep without an error). None for a trial that did not fail, or that an error ending the sweep failed."""
    failed = trial.user_attrs.get("status") == str(Status.FAILED)
    return trial.user_attrs.get("error") or ("its loss diverged" if failed else None)


def rows(study, root=None) -> list[dict[str, Any]]:
    """One row per trial, best validation accuracy first; test accuracy where the run is in this runs folder."""
    found = []
    for trial in trials(study):
        name = trial.user_attrs.get("run")
        path = _run_dir(trial, root)
        summary = _summary(path) if path else None
        elapsed = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete and trial.datetime_start else None
        waiting = trial.state.name == "WAITING"
        row = {
            "trial": trial.number,
            "status": status(trial),
            **{f"param:{k}": v for k, v in params(trial).items()},
            "epochs": None if waiting else len(trial.intermediate_values),
            "val_acc": best_val_acc(trial),
            "test_acc": number((summary or {}).get("test_acc")),
            "time": elapsed,
            "name": name if isinstance(name, str) else "",
            "ended_outside": False,
        }
        found.append(row | _ended_outside(row, summary))
    return sorted(found, key=lambda r: (r["val_acc"] is None, -(r["val_acc"] or 0), r["trial"]))


def as_json(study, root=None) -> dict[str, Any]:
    """The study as ``sweep --show`` prints it, for --json: its trials best first, the best one and the importances."""
    found = {trial.number: trial for trial in trials(study)}
    listed = []
    for row in rows(study, root):
        trial = found[row["trial"]]
        path = _run_dir(trial, root)
        listed.append({
            "number": trial.number, "status": row["status"], "state": trial.state.name, "value": objective(trial),
            "val_acc": row["val_acc"], "test_acc": row["test_acc"], "epochs": row["epochs"], "time": row["time"],
            "params": params(trial), "run": row["name"] or None, "path": str(path) if path and runs.is_run_dir(path) else None,
            "reason": failure(trial), "ended_outside": row["ended_outside"],
        })
    best = best_trial(study)
    if best is not None:
        config = run_config(study, best, root)
        best = next(t for t in listed if t["number"] == best.number) | {"config": str(config) if config else None}
    return {"study": study.study_name, "trials": listed, "best": best, "importances": importances(study)}


def _ended_outside(row: dict[str, Any], summary: dict[str, Any] | None) -> dict[str, Any]:
    """An interrupted trial's run that ``train --resume`` took to its end: its row takes the run's status and figures."""
    ended = (summary or {}).get("status")
    if row["status"] is not Status.INTERRUPTED or ended not in {s.value for s in Status} or not Status(ended).completed:
        return {}
    epochs = summary.get("epochs_run")
    return {"status": Status(ended), "val_acc": number(summary.get("best_val_acc")), "ended_outside": True,
            "epochs": epochs if type(epochs) is int else row["epochs"], "time": None}


def _run_dir(trial, root=None) -> Path | None:
    name = trial.user_attrs.get("run")
    return runs.runs_dir(root) / name if isinstance(name, str) and name else None


def run_config(study, trial, root=None) -> Path | None:
    """The config.json of the trial's run, if it is in this runs folder: ``train --config`` trains the trial again."""
    path = _run_dir(trial, root)
    try:
        recorded = runs.Run(path).config.get("study") if path and runs.is_run_dir(path) else None
    except MnistctlError:
        return None
    mine = isinstance(recorded, dict) and recorded.get("name") == study.study_name and recorded.get("trial") == trial.number
    return runs.Run(path).config_path if mine else None


def _summary(path: Path) -> dict[str, Any] | None:
    """The summary of the trial's run, or None (with a warning when the run is damaged)."""
    from mnistctl.console import warn

    try:
        return runs.Run(path).summary if runs.is_run_dir(path) else None
    except MnistctlError as exc:
        warn(f"{path.name}'s test accuracy is left out: {exc}")
        return None


def best_trial(study):
    """The finished trial with the best validation accuracy, or None."""
    done = [t for t in trials(study) if objective(t) is not None]
    return max(done, key=lambda t: t.value, default=None)


def importances(study) -> dict[str, float]:
    """Optuna's fANOVA importance of each varied setting, seeded to print the same twice (empty until two finished trials differ)."""
    import optuna

    done = [t for t in trials(study) if objective(t) is not None]
    if len({t.value for t in done}) < 2 or not done[0].params:
        return {}  # nothing to explain: fANOVA needs some variance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        except RuntimeError:  # "zero total variance in all trees": the varied settings explain nothing
            return {}


def plot(study, path: str | Path) -> Path:
    """The optimisation history and the parameter importances, in one PNG."""
    from mnistctl.reading.figures import save
    from mnistctl.reading.figures.sweep import sweep_figure

    history = [(t.number, best_val_acc(t), status(t).completed) for t in trials(study)
               if best_val_acc(t) is not None or status(t) == Status.FAILED]
    if all(value is None for _, value, _ in history):
        raise RunError(f"study '{study.study_name}' has no trial with a validation result yet", "plot again once a trial has finished an epoch")
    return save(sweep_figure(study.study_name, history, importances(study)), path, replace=False)
