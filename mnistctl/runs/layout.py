"""Where everything of a run lives, and how runs are found by name.

    runs/<name>/
      config.json            everything that made the run (written first)
      metrics.jsonl          one JSON event per line, appended as training goes (see events.py)
      summary.json           written when the run ends
      weights/initial.safetensors, best.safetensors, last.safetensors
      state/last.safetensors resume state (optimizer, scheduler, RNG, counters)
      reports/               eval reports and saved per-sample predictions
      plots/                 written by visualize
      exports/               written by export (e.g. best.onnx)

No other module spells these names: a ``Run`` hands out every path, for reading and for writing.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
import time
from pathlib import Path
from typing import Any, Iterator

from mnistctl.errors import DataError, NotFoundError, RunError, UsageError, parse_problem
from mnistctl.fsutil import read_json, regular
from mnistctl.registry import with_article
from mnistctl.runs.events import Kind, Status, derive_status, problem
from mnistctl.runs.reader import Chunk, latest_per_epoch, read_events, unreadable

DEFAULT_RUNS_DIR = "runs"
RUNS_ENV = "MNISTCTL_RUNS_DIR"
CHECKPOINTS = ("best", "last", "initial")
STALLED_AFTER = 120.0
CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"
MARKERS = (CONFIG, METRICS, SUMMARY, "weights")
SEPARATORS = "/\\:"  # path separators on POSIX, Windows and classic Mac OS
MISMATCH_FLAG = "--ignore-data-mismatch"
LATEST = "latest"  # a run reference meaning the newest run, so never a run's name


SHAPES = {  # the settings readers use, by the shape they need (any may be missing: older runs, or a reader's defaults)
    "arch": (str, "an architecture name"),
    "arch_options": (dict, "a table of options"),
    "optimizer": (str, "an optimizer name"),
    "optimizer_options": (dict, "a table of options"),
    "scheduler": (str, "a scheduler name"),
    "scheduler_options": (dict, "a table of options"),
    "lr": (int | float | None, "a number"),
    "weight_decay": (int | float | None, "a number"),
    "epochs": (int, "a whole number"),
    "seed": (int, "a whole number"),
    "val_split": (int, "a whole number"),
    "limit": (int | None, "a whole number or null"),
    "augment": (dict | None, "a table or null"),
    "channels_last": (bool, "true or false"),
    "data": (dict, "a table"),
    "data.n_train": (int | None, "a whole number or null"),
    "data.md5": (dict, "a table of checksums"),
}


def _shaped(value: Any, kind: Any) -> bool:
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))  # true is not a number here


def runs_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR)


MAX_NAME_BYTES = 200  # of a file system's 255 for a folder name, leaving room for -2, -t12 and the like


def validate_name(name: str) -> str:
    """A run name is one folder name inside the runs folder: no separators, not empty, not hidden, not ``..``, not ``latest``,
    and not like an option (``-x``), which commands taking run names would read as one."""
    bad = (
        not name or name.startswith((".", "-")) or name != name.strip()
        or any(c in SEPARATORS or ord(c) < 32 for c in name)
    )
    if bad:
        raise UsageError(
            f"run name {name!r} is not allowed: a run name is one folder name",
            "it cannot be empty, start with '.' or '-' (read as an option), have spaces at its ends, or hold / \\ : or control characters",
        )
    if name == LATEST:
        raise UsageError(f"run name {name!r} is reserved: it always means the newest run", "pass another --name")
    if len(os.fsencode(name)) > MAX_NAME_BYTES:
        raise UsageError(f"run name {name[:20]!r}... is {len(os.fsencode(name))} bytes long: at most {MAX_NAME_BYTES} fit a folder name and its suffixes", "pass a shorter --name")
    return name


def make_root(root: str | Path) -> Path:
    """The runs folder, created if missing."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"cannot keep runs in {root}: it or a folder above it is a file", f"pass --runs-dir DIR or set {RUNS_ENV} to a folder") from None
    except OSError as exc:  # read-only, no permission
        raise _unwritable(root, exc) from None
    return root


def _unwritable(root: Path, exc: OSError) -> RunError:
    return RunError(f"cannot write runs in {os.path.abspath(root)}: {exc.strerror}", f"pass --runs-dir DIR or set {RUNS_ENV} to a folder you can write to")


def create(root: str | Path, name: str) -> Path:
    """Claim a fresh run directory: ``name``, else ``name-2``, ``name-3``... (mkdir is atomic)."""
    validate_name(name)
    root = make_root(root)
    for n in range(1, 10_000):
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise _unwritable(root, exc) from None
    raise RunError(f"too many runs named {name} in {root}", "pass another --name")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def shown_names(found: list[Run]) -> list[str]:
    """How runs are named side by side: by name, or by path where runs from different places share one."""
    names = [run.name for run in found]
    return [str(run.path) if names.count(run.name) > 1 else run.name for run in found]


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and any((path / m).exists() for m in MARKERS)


class Run:
    """A run directory, read lazily; metrics are parsed once per change of the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._read: tuple[tuple[int, int], Chunk] | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def name(self) -> str:
        return Path(os.path.abspath(self.path)).name  # a run given as "." or "..", from inside it, has its folder's name

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def state_path(self) -> Path:
        return self.folder("state") / "last.safetensors"

    def weights_path(self, which: str) -> Path:
        if which not in CHECKPOINTS:
            raise NotFoundError(f"unknown checkpoint '{which}'", "use best, last or initial")
        return self.folder("weights") / f"{which}.safetensors"

    def report_path(self, name: str) -> Path:
        return self.folder("reports") / name

    @property
    def plots_dir(self) -> Path:
        return self.folder("plots")

    def export_path(self, which: str, fmt: str) -> Path:
        return self.folder("exports") / f"{which}.{fmt}"

    def folder(self, name: str) -> Path:
        """One of the run's folders, refused when it is a symbolic link: nothing is written outside the run through it."""
        folder = self.path / name
        if folder.is_symlink():
            raise RunError(f"{folder} is a symbolic link, not a folder of the run", "a run's files stay inside it; remove the link")
        return folder

    # contents
    @property
    def config(self) -> dict[str, Any]:
        """The recorded settings, each one readers use in the shape they need (its value was checked before training)."""
        config = self._json(self.config_path, required=True)
        if not isinstance(config, dict):
            raise RunError(f"{self.config_path} holds a {type(config).__name__}, not settings", "the run directory is damaged")
        for key, (kind, words) in SHAPES.items():
            *section, name = key.split(".")
            found = config.get(section[0]) if section else config
            if isinstance(found, dict) and name in found and not _shaped(found[name], kind):
                raise RunError(f"{self.config_path}: {key} = {reprlib.repr(found[name])} is not {words}", "the run directory is damaged")
        return config

    @property
    def normalization(self) -> tuple[float, float]:
        """The mean and standard deviation the run's images were normalized with."""
        data = self.recorded_data
        mean, std = data.get("mean", 0.1307), data.get("std", 0.3081)
        if not all(type(v) in (int, float) and math.isfinite(v) for v in (mean, std)) or std <= 0:
            given = f"data.mean = {reprlib.repr(mean)}, data.std = {reprlib.repr(std)}"
            raise RunError(f"{self.config_path}: {given} are not finite numbers with std above 0", "the run directory is damaged")
        return mean, std

    @property
    def summary(self) -> dict[str, Any] | None:
        summary = self._json(self.summary_path, required=False)
        return summary if isinstance(summary, dict) else None

    @property
    def summary_problem(self) -> str | None:
        """Why a summary.json that is there is read as no summary: it is not a table."""
        summary = self._json(self.summary_path, required=False)
        if isinstance(summary, dict) or (summary is None and not self.summary_path.exists()):
            return None
        held = "null" if summary is None else with_article(type(summary).__name__)
        return f"{self.summary_path} holds {held}, not a table"

    def read(self) -> Chunk:
        """Every usable event, parsed once per change of metrics.jsonl; damage is warned about once."""
        try:
            stat = self.metrics_path.stat()
        except FileNotFoundError:
            return Chunk()
        except OSError as exc:
            raise unreadable(self.metrics_path, exc) from None
        key = (stat.st_size, stat.st_mtime_ns)
        if self._read is None or self._read[0] != key:
            chunk = read_events(self.metrics_path)
            if chunk.corrupt:
                from mnistctl.console import warn

                warn(f"skipped {chunk.corrupt} unreadable line(s) in {self.metrics_path} (first: {chunk.first_problem})")
            self._read = (key, chunk)
        return self._read[1]

    def events(self, kind: Kind | str | None = None) -> Iterator[dict[str, Any]]:
        for event in self.read().events:
            if kind is None or event["event"] == kind:
                yield event

    def last(self, kind: Kind | str) -> dict[str, Any] | None:
        found = None
        for found in self.events(kind):
            pass
        return found

    def epochs(self) -> list[dict[str, Any]]:
        """Epoch events, the latest one for each epoch."""
        return latest_per_epoch(self.events())

    def weights(self, which: str = "best") -> Path:
        path = self.weights_path(which)
        try:
            regular(path)
        except FileNotFoundError:
            self.config  # a damaged config.json is the real problem: said before the weights it may explain
            other = next((w for w in ("last", "initial") if w != which and self.weights_path(w).is_file()), None)
            use = {"last": "pass --weights last for the weights it stopped at", "initial": "pass --weights initial for its untrained weights"}
            why = "its weights were deleted or moved" if self.epochs() else self._before_first_epoch()
            joined = f"{why}, or {use[other]}" if ": " in why and other else f"{why}: {use[other]}" if other else why
            raise RunError(f"run {self.name} has no {which} weights ({path})", joined) from None
        except OSError as exc:
            raise unreadable(path, exc) from None
        return path

    def _before_first_epoch(self) -> str:
        """Why a run without an epoch has no best or last weights, as far as its events tell."""
        return {
            Status.FAILED: "it failed before its first epoch ended",
            Status.INTERRUPTED: f"it was stopped before its first epoch ended: resume it with mnistctl train --resume {self.name}",
            Status.RUNNING: "it has not finished its first epoch yet",
            Status.WAITING: "it has not finished its first epoch yet",
        }.get(self.status(), "the run may not have finished an epoch yet")

    def status(self, stalled_after: float = STALLED_AFTER) -> Status:
        last = None
        for last in (e for e in self.events() if e["event"] in (Kind.START, Kind.END)):
            pass
        if last is None or last["event"] != Kind.END:
            last = self.summary_end(last) or last
        try:
            idle = time.time() - (self.metrics_path if self.metrics_path.exists() else self.path).stat().st_mtime
        except FileNotFoundError:
            idle = None
        return derive_status(last, idle, stalled_after)

    def summary_end(self, start: dict[str, Any] | None) -> dict[str, Any] | None:
        """The end event summary.json stands for when metrics.jsonl lost its last lines: the summary (written as the run
        ends) of an ended run, written after ``start``, the last start event (a resumed run keeps the summary of its earlier
        stop until it ends again). Its test figures when they are usable; None when there is no such summary."""
        try:
            summary, written = self.summary, self.summary_path.stat().st_mtime
        except (RunError, OSError):
            return None
        if summary is None or (start is not None and written < start.get("time", math.inf)):
            return None
        end = {"event": str(Kind.END), "time": written, "status": summary.get("status"), "message": f"from {SUMMARY}: the end of {METRICS} is missing"}
        if problem(end) or not Status(end["status"]).ended:
            return None
        tested = {**end, **{k: summary[k] for k in ("test_acc", "test_loss") if summary.get(k) is not None}}
        return end if problem(tested) else tested

    def dataset(self, data_dir: str | Path | None = None, ignore_mismatch: bool = False):
        """The data set the run was trained on: ``data_dir``, else its recorded folder if it is still there, else the usual lookup.

        The data found must have the checksums the run recorded, unless ``ignore_mismatch``.
        """
        from mnistctl import data

        recorded = self.recorded_data.get("dir")
        folder = data_dir or (recorded if isinstance(recorded, str) and data.locate(Path(recorded)) else None)
        dataset = data.load_cached(str(data.resolve(folder)["train_images"].parent))
        if not ignore_mismatch:
            self.check_data(dataset)
        return dataset

    @property
    def recorded_data(self) -> dict[str, Any]:
        recorded = self.config.get("data")
        return recorded if isinstance(recorded, dict) else {}

    def check_data(self, dataset) -> None:
        """DataError when ``dataset`` is not the data the run recorded (runs from before checksums were recorded pass)."""
        if "md5" not in self.recorded_data:
            return
        recorded = self.recorded_data["md5"]
        if not recorded:
            raise RunError(f"{self.config_path}: data.md5 holds no checksums, so the data cannot be checked", f"the run directory is damaged; pass {MISMATCH_FLAG} to use the data found anyway")
        differ = sorted(name for name in recorded if dataset.md5.get(name) != recorded[name])
        if differ:
            raise DataError(
                f"the data in {dataset.folder} is not the data run {self.name} was trained on ({differ[0]} has another checksum)",
                f"point --data-dir or MNISTCTL_DATA_DIR at the run's data, or pass {MISMATCH_FLAG} to use this data anyway",
            )

    def _json(self, path: Path, required: bool) -> Any:
        try:
            return read_json(path)
        except FileNotFoundError:
            if required:
                raise RunError(f"{self.path} has no {path.name}", "is it a mnistctl run directory?") from None
            return None
        except OSError as exc:
            raise unreadable(path, exc) from None
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep, an integer too long
            raise RunError(f"{path} is corrupt: {_json_problem(exc)}", "the run directory is damaged") from None


def _json_problem(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return parse_problem(exc)


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Runs under ``root``, oldest first."""
    root = runs_dir(root)
    if not root.is_dir():
        return []
    found = [Run(p.parent) for p in root.glob(f"*/{CONFIG}")]
    return sorted(found, key=lambda r: r.config_path.stat().st_mtime)


def resolve(ref: str | Path | None = None, root: str | Path | None = None) -> Run:
    """A run by path, by name under the runs directory, or ``latest`` (the default)."""
    home = runs_dir(root)
    if home.exists() and not home.is_dir():
        raise UsageError(f"the runs folder {home} is a file", f"pass --runs-dir DIR or set {RUNS_ENV} to a folder")
    if ref is None or str(ref) == LATEST:
        runs = list_runs(root)
        if not runs:
            raise NotFoundError(f"no runs yet in {home}/", first_run_hint(root))
        return runs[-1]
    if not str(ref):
        raise UsageError("the run's name is empty", f"name a run, a path to one, or '{LATEST}'")
    for path in (Path(ref), home / str(ref)):
        if os.path.lexists(path / CONFIG):  # a config that is not a file is damage, said when it is read
            return Run(path)
    for folder in (home / str(ref), *([Path(ref)] if len(Path(ref).parts) > 1 else [])):
        if folder.is_dir():
            raise NotFoundError(f"{folder} has no {CONFIG}", "is it a mnistctl run directory?")
    if Path(ref).is_file():
        if str(ref).lower().endswith(".onnx"):
            import shlex

            raise UsageError(f"{ref} is an ONNX export, not a run's folder",
                             f"predict reads it: mnistctl predict IMAGE --run {shlex.quote(str(ref))}; here, pass the run it was exported from")
        raise UsageError(f"{ref} is a file, not a run's folder", "pass the folder that holds its config.json")
    names = [r.name for r in reversed(list_runs(root))]
    raise NotFoundError(f"no run '{ref}' in {home}/", _closest(str(ref), names) if names else first_run_hint(root))


def first_run_hint(root: str | Path | None = None) -> str:
    """How to train a first run: the README's first command, into ``root``, the runs folder given, if one was."""
    import shlex

    into = f" --runs-dir {shlex.quote(str(root))}" if root else ""
    return f"train one with: mnistctl train --preset fast --name fast{into}"


def _closest(ref: str, names: list[str]) -> str:
    """Up to five run names that start like ``ref`` or look like it, newest first."""
    import difflib

    close = set(difflib.get_close_matches(ref, names, n=5, cutoff=0.5)) | {n for n in names if n.startswith(ref)}
    picked = [n for n in names if n in close][:5]
    if picked:
        return "did you mean " + ", ".join(picked) + "?"
    return "the newest runs are " + ", ".join(names[:5])


def resolve_checkpoint(ref: str | None, which: str | None = None, root: str | Path | None = None) -> tuple[Run, str]:
    """A run and checkpoint from a run reference, or from a path to ``weights/<checkpoint>.safetensors``."""
    if which and which not in CHECKPOINTS:
        raise UsageError(f"--weights {which!r} is not one of a run's weights", "use --weights best, last or initial")
    path = Path(ref) if ref else None
    if path is not None and path.suffix == ".safetensors":
        if not path.is_file():
            raise NotFoundError(f"no checkpoint file {path}", "pass a run name or a path to weights/best.safetensors")
        if path.stem not in CHECKPOINTS or path.parent.name != "weights":
            raise UsageError(f"{path} is not a run checkpoint", "pass RUN/weights/best.safetensors, last or initial")
        if which and which != path.stem:
            raise UsageError(f"--weights {which} contradicts {path.name}", "pass the run directory with --weights, or the file alone")
        return resolve(path.parent.parent), path.stem
    if which == "":
        raise UsageError("--weights is empty", "use best, last or initial, or leave it out for best")
    return resolve(ref, root), which or "best"
