"""A sweep: an Optuna study whose trials are ordinary training runs, shared by any number of workers.

The study lives in a database (SQLite in the runs folder by default); each worker asks it for the next
trial, trains it into its own run directory, reports the validation accuracy after every epoch so that
the pruner can stop a hopeless trial, and tells the study the validation accuracy of the run's best
checkpoint: the best epoch by --monitor (with val_loss, the accuracy at the lowest loss, not the highest accuracy).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mnistctl import runs
from mnistctl.errors import NotFoundError, RunError, TrainingDiverged, UsageError
from mnistctl.runs import Status
from mnistctl.training import space
from mnistctl.training.trainer import Observer

STORAGE_FILE = "optuna.db"
PRUNERS = ("median", "halving", "none")
HEARTBEAT, GRACE = 30, 120  # seconds: a trial whose worker died is failed after GRACE without a heartbeat


class Interrupted(Exception):
    """Ctrl-C stopped the current trial; its run is resumable."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class Unfit(Exception):
    """The settings a trial drew cannot train, with the fixed ones (a batch larger than the images it has)."""


class _Surplus(Exception):
    """Other workers already run or ran the requested number of trials."""


def storage_url(url: str | None, root=None) -> str:
    """The given URL, or the SQLite database in the runs folder."""
    return url or f"sqlite:///{(runs.runs_dir(root) / STORAGE_FILE).resolve()}"



def public_url(url: str) -> str:
    """The URL without its password, fit to print and to record in config.json."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except ArgumentError:
        return url.split("@")[-1]


def open_storage(url: str, create: bool = True):
    """Optuna's RDB storage, or one line saying why the database cannot be used."""
    import optuna
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    sqlite = url.startswith("sqlite")
    if sqlite and not create:
        path = url.split(":///", 1)[-1]
        if path and not Path(path).is_file():
            raise NotFoundError(f"no study database at {path}", "run a sweep first, or pass --storage URL")
    connect = {"timeout": 60} if sqlite else {"connect_timeout": 10} if url.startswith("postgres") else {}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs={"connect_args": connect}, heartbeat_interval=HEARTBEAT, grace_period=GRACE
                )
        except ImportError:
            raise UsageError(
                f"no database driver for the study storage {public_url(url)}",
                "for PostgreSQL: pip install psycopg2-binary and write postgresql+psycopg2://user:password@host/db",
            ) from None
        except (SQLAlchemyError, ValueError, RuntimeError) as exc:
            racing = isinstance(exc, (IntegrityError, RuntimeError)) or "already exists" in str(exc)
            if attempt < 4 and racing:  # two workers creating the tables (and their schema version) at once
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise UsageError(f"cannot use the study storage {public_url(url)}: {reason}", "check --storage: the URL, the server, the credentials and the driver") from None


def load_study(name: str, storage, create: bool = False, pruner=None):
    """The named study; ``create`` makes it (maximising) when missing."""
    import optuna

    if create:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", pruner=pruner, load_if_exists=True)
    else:
        try:
            study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        except KeyError:
            from mnistctl.registry import suggest

            names = optuna.get_all_study_names(storage)
            raise NotFoundError(f"no study '{name}' in {public_url(storage.url)}", suggest(name, names) if names else "start one with: mnistctl sweep --study NAME --space FILE") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise UsageError(f"study '{name}' minimises its objective; mnistctl maximises validation accuracy", "pick another --study name")
    return study


def make_pruner(name: str):
    """Median: stop below the median of earlier trials at the same epoch. Halving: keep the top quarter per rung of epochs."""
    import optuna

    if name not in PRUNERS:
        from mnistctl.registry import suggest

        raise UsageError(f"unknown pruner '{name}'", suggest(name, list(PRUNERS)))
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4)
    return optuna.pruners.NopPruner()


class TrialObserver(Observer):
    """Passes progress on, reports each epoch's validation accuracy, and stops the run when the pruner says so."""

    def __init__(self, trial, inner: Observer):
        self.trial, self.inner, self.trainer = trial, inner, None

    def start(self, event: dict[str, Any]) -> None:
        self.inner.start(event)

    def step(self, *args) -> None:
        self.inner.step(*args)

    def epoch(self, event: dict[str, Any]) -> None:
        self.inner.epoch(event)
        if event.get("val_acc") is None:
            return
        self.trial.report(event["val_acc"], event["epoch"])
        if self.trial.should_prune():
            self.trainer.request_stop(Status.PRUNED)

    def end(self, summary: dict[str, Any]) -> None:
        self.inner.end(summary)


COUNTED = ("COMPLETE", "PRUNED", "RUNNING")
MAX_FAILED = 3


@dataclass
class Worker:
    """One process working on a study until it holds ``n_trials`` trials that ran (or are running)."""

    study: Any
    dimensions: list[space.Dimension]
    flags: dict[str, Any]
    n_trials: int
    config_file: Path | None = None
    preset: str | None = None
    runs_dir: Path | None = None
    data_dir: Path | None = None
    command: str = ""
    make_observer: Callable[[], Observer] = Observer
    train: Callable[[Any], dict[str, Any]] = lambda trainer: trainer.run()
    storage_label: str = ""

    def counted(self, below: int | None = None) -> int:
        from optuna.trial import TrialState

        states = tuple(TrialState[s] for s in COUNTED)
        trials = self.study.get_trials(deepcopy=False, states=states)
        return sum(1 for t in trials if below is None or t.number < below)

    def work(self, on_trial: Callable[[Any], None] = lambda trial: None) -> int:
        """Run trials until the study has enough; returns how many this worker ran. Raises Interrupted on Ctrl-C."""
        ran = failed = 0
        while self.counted() < self.n_trials:
            ended = []
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(TrainingDiverged, Unfit), callbacks=[lambda study, trial: ended.append(trial)])
            except _Surplus:
                break
            except Interrupted:
                number, values = self._current
                self.study.enqueue_trial(values, user_attrs={"retry_of": number})
                raise
            ran += 1
            on_trial(ended[0])
            failed = failed + 1 if ended[0].state.name == "FAIL" else 0
            if failed == MAX_FAILED:
                error = ended[0].user_attrs.get("error")
                raise RunError(
                    f"{failed} trials in a row failed (the last: {error or 'its loss diverged'})",
                    "narrow the space to values that train with the fixed settings" if error else "narrow the space, e.g. lower the top of the lr range",
                )
        return ran

    def objective(self, trial) -> float:
        import optuna

        from mnistctl.training.trainer import Trainer

        if self.counted(below=trial.number) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus
        values = {dim.name: dim.suggest(trial) for dim in self.dimensions}
        self._current = (trial.number, values)
        try:
            settings = space.settings(space.apply(self.flags, self.dimensions, values), self.config_file, self.preset)
            settings["name"] = runs.slug(f"{self.study.study_name}-t{trial.number}")
            settings["study"] = {"name": self.study.study_name, "trial": trial.number, "storage": self.storage_label}
            observer = TrialObserver(trial, self.make_observer())
            trainer = observer.trainer = Trainer(settings, observer, self.runs_dir, self.data_dir, command=self.command)
            trainer.prepare()
        except UsageError as exc:  # the drawn values with the fixed ones: the trial fails, the study goes on
            trial.set_user_attr("status", str(Status.FAILED))
            trial.set_user_attr("error", exc.message)
            raise Unfit(exc.message) from None
        trial.set_user_attr("run", trainer.run_dir.name)
        try:
            summary = self.train(trainer)
        except TrainingDiverged:
            trial.set_user_attr("status", str(Status.FAILED))
            raise
        trial.set_user_attr("status", summary["status"])
        if summary["status"] == Status.PRUNED:
            raise optuna.TrialPruned(f"pruned after epoch {summary['epochs_run']}")
        if summary["status"] == Status.INTERRUPTED:
            raise Interrupted(trainer.run_dir)
        return summary["best_val_acc"]
