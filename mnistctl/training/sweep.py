"""A sweep: an Optuna study whose trials are ordinary training runs, shared by any number of workers.

The study lives in a database (SQLite in the runs folder by default); each worker asks it for the next
trial, trains it into its own run directory, reports the validation accuracy after every epoch so that
the pruner can stop a hopeless trial, and tells the study the validation accuracy of the run's best
checkpoint: the best epoch by --monitor (with val_loss, the accuracy at the lowest loss, not the highest accuracy).
"""

from __future__ import annotations

import signal
import threading
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
    """Ctrl-C stopped the current trial: its run is resumable, or it had none yet (``run_dir`` None)."""

    def __init__(self, run_dir: Path | None):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class deferred_signals:
    """Holds Ctrl-C and SIGTERM back while the study is written to, so that they never cut Optuna's bookkeeping
    (creating or telling a trial, its heartbeat thread) in half; ``pending`` lists the signals held. Leaving the block
    normally delivers the first one to the handler that was there before; leaving it by an exception drops them,
    the exception being the stop. While ``forward`` is set (training), a signal held is also passed to it (stop after
    the step), unless training installs its own handlers. Outside the main thread nothing is held back."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.pending: list[int] = []
        self.forward: Callable[[], None] | None = None
        self._previous: dict[int, Any] = {}

    def _hold(self, signum, frame) -> None:
        self.pending.append(signum)
        if self.forward is not None:
            self.forward()

    def __enter__(self) -> "deferred_signals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                handler = signal.getsignal(sig)
                if handler is not None and handler != signal.SIG_IGN:  # an ignored signal stays ignored
                    self._previous[sig] = signal.signal(sig, self._hold)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if self.pending and exc_type is None:
            signal.raise_signal(self.pending[0])  # the handler runs now: Ctrl-C's KeyboardInterrupt is raised here


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
    path = url.split(":///", 1)[-1] if sqlite else ""
    if path and Path(path).is_dir():
        raise UsageError(f"the study database {path} is a folder", "move it away, or pass --storage URL")
    if sqlite and not create:
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
        self.trial, self.inner, self.trainer, self.pruned = trial, inner, None, False

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
            self.pruned = True
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

    def __post_init__(self):
        self._held, self._current = deferred_signals(), None  # signals are held back while work() runs

    def counted(self, below: int | None = None) -> int:
        from optuna.trial import TrialState

        states = tuple(TrialState[s] for s in COUNTED)
        trials = self.study.get_trials(deepcopy=False, states=states)
        return sum(1 for t in trials if below is None or t.number < below)

    def work(self, on_trial: Callable[[Any], None] = lambda trial: None) -> int:
        """Run trials until the study has enough; returns how many this worker ran. Ctrl-C during a trial raises
        Interrupted once the study holds the trial as failed and its settings queued again; between trials (or as a
        trial's run ends, its result told), the KeyboardInterrupt of the handler outside."""
        with deferred_signals() as self._held:
            return self._work(on_trial)

    def _work(self, on_trial: Callable[[Any], None]) -> int:
        ran = failed = 0
        while not self._held.pending and self.counted() < self.n_trials:
            ended = []
            self._current = None
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(TrainingDiverged, Unfit), callbacks=[lambda study, trial: ended.append(trial)])
            except _Surplus:
                break
            except Interrupted:
                self._fail_if_running()
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

    def _fail_if_running(self) -> None:
        """The interrupted trial (its status already set), failed if the study still holds it as running."""
        from optuna.trial import TrialState

        self.study.tell(self._current[0], state=TrialState.FAIL, skip_if_finished=True)

    def _interrupted(self, trial, run_dir: Path | None = None) -> Interrupted:
        trial.set_user_attr("status", str(Status.INTERRUPTED))
        return Interrupted(run_dir)

    def objective(self, trial) -> float:
        import optuna

        from mnistctl.training.trainer import Trainer

        if self.counted(below=trial.number) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus
        values = {dim.name: dim.suggest(trial) for dim in self.dimensions}
        self._current = (trial.number, values)
        if self._held.pending:  # Ctrl-C as the trial was created: its settings are queued again, no run was begun
            raise self._interrupted(trial)
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
        if self._held.pending:  # Ctrl-C while the run was being prepared: no stub run is left
            trainer.abandon()
            raise self._interrupted(trial)
        trial.set_user_attr("run", trainer.run_dir.name)
        self._held.forward = trainer.request_stop
        try:
            summary = self.train(trainer)
        except TrainingDiverged:
            trial.set_user_attr("status", str(Status.FAILED))
            raise
        except KeyboardInterrupt:  # a second Ctrl-C stopped the run at once: resumable all the same
            raise self._interrupted(trial, trainer.run_dir) from None
        finally:
            self._held.forward = None
        if trainer.stop_requested and summary["status"] not in (Status.INTERRUPTED, Status.PRUNED) and not observer.pruned:
            self._held.pending.append(signal.SIGINT)  # Ctrl-C came as the run ended: its result is told, then the sweep stops
        trial.set_user_attr("status", summary["status"])
        if summary["status"] == Status.PRUNED:
            raise optuna.TrialPruned(f"pruned after epoch {summary['epochs_run']}")
        if summary["status"] == Status.INTERRUPTED:
            raise self._interrupted(trial, trainer.run_dir)
        return summary["best_val_acc"]
