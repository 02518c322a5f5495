"""A sweep: an Optuna study whose trials are ordinary training runs, shared by any number of workers.

The study lives in a database (SQLite in the runs folder by default); each worker asks it for the next
trial, trains it into its own run directory, reports the validation accuracy after every epoch so that
the pruner can stop a hopeless trial, and tells the study the validation accuracy of the run's best
checkpoint: the best epoch by --monitor (with val_loss, the accuracy at the lowest loss, not the highest accuracy).
"""

from __future__ import annotations

import json
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
    """Ctrl-C stopped the current trial: its run is resumable, or it had none yet (``run_dir`` None); or, ``told``, the
    stop came as the run ended: the trial's result is in the study and the sweep stops after it."""

    def __init__(self, run_dir: Path | None, told: bool = False):
        super().__init__(str(run_dir))
        self.run_dir, self.told = run_dir, told


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
    if sqlite and (path in ("sqlite://", ":memory:", "") or "mode=memory" in url):
        raise UsageError(f"the study storage {url} is an in-memory database, which keeps no study", "give a file: --storage sqlite:///studies.db, or leave --storage out")
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
        except ImportError as exc:
            missing = getattr(exc.__cause__, "name", None)
            raise UsageError(
                f"no database driver for the study storage {public_url(url)}" + (f": the module '{missing}' is not installed" if missing else ""),
                "name an installed driver in the URL, e.g. postgresql+psycopg2://user:password@host/db with psycopg2-binary installed",
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
        try:
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize", pruner=pruner, load_if_exists=True)
        except optuna.exceptions.StorageInternalError as exc:  # e.g. a read-only SQLite file or folder
            reason = str(getattr(exc.__cause__, "orig", None) or exc.__cause__ or exc).strip().splitlines()[0]
            raise UsageError(f"cannot write to the study storage {public_url(storage.url)}: {reason}",
                             "make the database and its folder writable, or pass --storage URL or --runs-dir DIR") from None
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


SETTINGS_ATTR = "mnistctl.sweep"  # the study's user attribute: the fixed settings and the space of the worker that made it
UNFIXED = ("name", "preset", "device", "channels_last", "checkpoint_every", "log_every", "log_layers")  # where and how a trial runs
OPTION_GROUPS = {"arch_options": ("arch", "set"), "optimizer_options": ("optimizer", "opt-set"), "scheduler_options": ("scheduler", "sched-set")}


def fixed_settings(base: dict[str, Any], dimensions: list[space.Dimension]) -> dict[str, Any]:
    """What every trial of this worker trains with: the resolved train settings, less those searched and those that only
    say where and how it runs (device, checkpoints, logging, the run's name)."""
    fixed = json.loads(json.dumps({k: v for k, v in base.items() if k not in UNFIXED}))
    for dim in dimensions:
        if dim.group:
            (fixed.get(space.GROUPS[dim.group][1]) or {}).pop(dim.key, None)
        elif dim.key in space.AUGMENT_KEYS:
            if isinstance(fixed.get("augment"), dict):
                fixed["augment"].pop(dim.key, None)
        else:
            fixed.pop(dim.key, None)
    return fixed


def space_record(dimensions: list[space.Dimension]) -> dict[str, Any]:
    """The search space as the study records it: each setting's kind, values, log scale and step."""
    return json.loads(json.dumps({d.name: {"kind": d.kind, "values": list(d.values), "log": d.log, "step": d.step} for d in dimensions}))


def join(study, fixed: dict[str, Any], searched: dict[str, Any]) -> None:
    """Records this worker's fixed settings and space in a study that has none yet; refuses a study made with other ones.
    A study made before settings were recorded (it has trials but no record) is joined as it is."""
    mine = {"fixed": fixed, "space": searched}
    recorded = study.user_attrs.get(SETTINGS_ATTR)
    if recorded is None:
        if study.get_trials(deepcopy=False):
            return
        study.set_user_attr(SETTINGS_ATTR, mine)
        recorded = study.user_attrs.get(SETTINGS_ATTR)  # read back: a worker creating the study at the same moment may have won
    if not isinstance(recorded, dict) or recorded == mine:
        return
    theirs = recorded.get("fixed") or {}, recorded.get("space") or {}
    parts = []
    if theirs[0] != fixed:
        keys = _differing(_flat(theirs[0]), _flat(fixed))
        parts.append(f"study {study.study_name} fixes {_listed(_flat(theirs[0]), keys, theirs[1])}; this worker gives {_listed(_flat(fixed), keys, searched)}")
    if theirs[1] != searched:
        keys = _differing(theirs[1], searched)
        parts.append(f"study {study.study_name} searches {_spaces(theirs[1], keys)}; this worker searches {_spaces(searched, keys)}")
    raise UsageError("; ".join(parts), "give the same train options and space as the study's other workers, or start a new --study")


def _flat(fixed: dict[str, Any]) -> dict[str, Any]:
    """Fixed settings with the architecture's, optimizer's and scheduler's options as set.X, opt-set.X, sched-set.X; those of
    one whose name differs are left out by :func:`_differing`."""
    flat = {}
    for key, value in fixed.items():
        if key in OPTION_GROUPS and isinstance(value, dict):
            flat.update({f"{OPTION_GROUPS[key][1]}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The keys whose values differ, in order; an option of an architecture, optimizer or scheduler named differently is left out."""
    owners = {group: owner for owner, group in OPTION_GROUPS.values()}
    missing = object()

    def other_owner(key: str) -> bool:
        owner = owners.get(key.split(".")[0]) if "." in key else None
        return owner is not None and a.get(owner) != b.get(owner)

    keys = list(a) + [k for k in b if k not in a]
    return [k for k in keys if a.get(k, missing) != b.get(k, missing) and not other_owner(k)]


def _listed(flat: dict[str, Any], keys: list[str], searched: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_shown(flat[k]) if k in flat else 'searched' if k in searched else '-'}" for k in keys)


def _spaces(searched: dict[str, Any], keys: list[str]) -> str:
    def spec(d: dict[str, Any]) -> str:
        values = ", ".join(_shown(v) for v in d.get("values", []))
        return f"{d.get('kind')} [{values}]" + " log" * bool(d.get("log")) + (f" step {_shown(d['step'])}" if d.get("step") is not None else "")

    return ", ".join(f"{k}={spec(searched[k]) if k in searched else 'not searched'}" for k in keys)


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


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
        self._ended_on_stop: Path | None = None  # the run of a trial whose training took a stop as it ended

    def counted(self, below: int | None = None) -> int:
        from optuna.trial import TrialState

        states = tuple(TrialState[s] for s in COUNTED)
        trials = self.study.get_trials(deepcopy=False, states=states)
        return sum(1 for t in trials if below is None or t.number < below)

    def work(self, on_trial: Callable[[Any], None] = lambda trial: None) -> int:
        """Run trials until the study has enough; returns how many this worker ran. Ctrl-C during a trial raises
        Interrupted once the study holds the trial as failed and its settings queued again; as a trial's run ends,
        Interrupted (``told``) once its result is; between trials, the KeyboardInterrupt of the handler outside."""
        self._ended_on_stop = None
        with deferred_signals() as self._held:
            ran = self._work(on_trial)
            if self._ended_on_stop is not None:  # training took the signal: the sweep stops whatever Ctrl-C's handler is
                raise Interrupted(self._ended_on_stop, told=True)
            return ran

    def _work(self, on_trial: Callable[[Any], None]) -> int:
        ran = failed = 0
        while not self._held.pending and self._ended_on_stop is None and self.counted() < self.n_trials:
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
            self._ended_on_stop = trainer.run_dir  # Ctrl-C came as the run ended: its result is told, then the sweep stops
        trial.set_user_attr("status", summary["status"])
        if summary["status"] == Status.PRUNED:
            raise optuna.TrialPruned(f"pruned after epoch {summary['epochs_run']}")
        if summary["status"] == Status.INTERRUPTED:
            raise self._interrupted(trial, trainer.run_dir)
        return summary["best_val_acc"]
