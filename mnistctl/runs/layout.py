"""The run directory: the contract between train and every command that reads a run.

    runs/<name>/
      config.json            everything that made the run (written first)
      metrics.jsonl          one JSON event per line, appended as training goes
      summary.json           written when the run ends
      weights/initial.safetensors, best.safetensors, last.safetensors
      state/last.safetensors resume state (optimizer, scheduler, RNG, counters)
      reports/  plots/       written by eval and visualize
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from mnistctl.errors import NotFoundError, RunError, UsageError
from mnistctl.fsutil import read_json

DEFAULT_RUNS_DIR = "runs"
RUNS_ENV = "MNISTCTL_RUNS_DIR"
CHECKPOINTS = ("best", "last", "initial")
STALLED_AFTER = 120.0


def runs_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR)


def create(root: str | Path, name: str) -> Path:
    """Claim a fresh run directory: ``name``, else ``name-2``, ``name-3``... (mkdir is atomic)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"too many runs named {name} in {root}", "pass another --name")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


class Run:
    """A run directory, read lazily."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        return self._json("config.json", required=True)

    @property
    def normalization(self) -> tuple[float, float]:
        data = self.config.get("data", {})
        return data.get("mean", 0.1307), data.get("std", 0.3081)

    @property
    def summary(self) -> dict[str, Any] | None:
        return self._json("summary.json", required=False)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def events(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Complete metric events, skipping a partial last line."""
        if not self.metrics_path.exists():
            return
        with self.metrics_path.open() as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if kind is None or event.get("event") == kind:
                    yield event

    def epochs(self) -> list[dict[str, Any]]:
        return list(self.events("epoch"))

    def weights(self, which: str = "best") -> Path:
        path = self.path / "weights" / f"{which}.safetensors"
        if which not in CHECKPOINTS:
            raise NotFoundError(f"unknown checkpoint '{which}'", "use best, last or initial")
        if not path.is_file():
            raise RunError(f"run {self.name} has no {which} weights ({path})", "the run may not have finished an epoch yet")
        return path

    @property
    def state_path(self) -> Path:
        return self.path / "state" / "last.safetensors"

    def status(self, stalled_after: float = STALLED_AFTER) -> str:
        """finished, early_stopped, interrupted, failed, running or stalled."""
        last = {}
        for event in self.events():
            if event.get("event") in ("start", "end"):
                last = event
        if last.get("event") == "end":
            return last["status"]
        try:
            age = time.time() - self.metrics_path.stat().st_mtime
        except FileNotFoundError:
            age = time.time() - self.path.stat().st_mtime
        return "stalled" if age > stalled_after else "running"

    def _json(self, name: str, required: bool) -> Any:
        path = self.path / name
        try:
            return read_json(path)
        except FileNotFoundError:
            if required:
                raise RunError(f"{self.path} has no {name}", "is it a mnistctl run directory?") from None
            return None
        except json.JSONDecodeError as exc:
            raise RunError(f"{path} is corrupt ({exc.msg} at line {exc.lineno})", "the run directory is damaged") from None


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Runs under ``root``, oldest first."""
    root = runs_dir(root)
    if not root.is_dir():
        return []
    found = [Run(p.parent) for p in root.glob("*/config.json")]
    return sorted(found, key=lambda r: (r.path / "config.json").stat().st_mtime)


def resolve(ref: str | Path | None = None, root: str | Path | None = None) -> Run:
    """A run by path, by name under the runs directory, or ``latest`` (the default)."""
    if ref is None or str(ref) == "latest":
        runs = list_runs(root)
        if not runs:
            raise NotFoundError(f"no runs in {runs_dir(root)}", "train one with: mnistctl train --arch simplecnn")
        return runs[-1]
    for path in (Path(ref), runs_dir(root) / str(ref)):
        if (path / "config.json").is_file():
            return Run(path)
    names = [r.name for r in list_runs(root)]
    from mnistctl.registry import suggest

    raise NotFoundError(f"no run '{ref}' (looked for {ref}/config.json and {runs_dir(root) / str(ref)})", suggest(str(ref), names) if names else "train one first")


def resolve_checkpoint(ref: str | None, which: str | None = None, root: str | Path | None = None) -> tuple[Run, str]:
    """A run and checkpoint from a run reference, or from a path to ``weights/<checkpoint>.safetensors``."""
    path = Path(ref) if ref else None
    if path is not None and path.suffix == ".safetensors":
        if not path.is_file():
            raise NotFoundError(f"no checkpoint file {path}", "pass a run name or a path to weights/best.safetensors")
        if path.stem not in CHECKPOINTS or path.parent.name != "weights":
            raise UsageError(f"{path} is not a run checkpoint", "pass RUN/weights/best.safetensors, last or initial")
        if which and which != path.stem:
            raise UsageError(f"--checkpoint {which} contradicts {path.name}", "pass the run directory with --checkpoint, or the file alone")
        return resolve(path.parent.parent), path.stem
    return resolve(ref, root), which or "best"
