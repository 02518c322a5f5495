"""The one writer of a run directory: config first, events appended whole lines at a time, then the summary.

Weights and resume state go through it too, so training never builds a path by hand, and the lock that keeps
a second process from training into the same run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mnistctl.errors import RunError, UsageError
from mnistctl.fsutil import naming, write_json
from mnistctl.runs import checkpoint
from mnistctl.runs.events import Kind
from mnistctl.runs.layout import Run


class RunWriter:
    def __init__(self, run: Run):
        self.run = run
        self._metrics = None
        _own_file(run.metrics_path)  # before training starts, so a refused run is left as it was

    def config(self, config: dict[str, Any]) -> None:
        self._still_there()
        write_json(self.run.config_path, config)

    def event(self, kind: Kind | str, /, **fields: Any) -> dict[str, Any]:
        """Append one event, flushed at once so readers see whole lines; returns the record."""
        self._still_there()
        if self._metrics is None:
            self._metrics = _append_to(self.run.metrics_path)
            if self._metrics.tell() and not _ends_a_line(self.run.metrics_path):  # a line torn by a crash: ours start on the next
                self._metrics.write("\n")
        record = {"event": str(kind), "time": round(time.time(), 3), **fields}
        with naming(self.run.metrics_path):
            self._metrics.write(json.dumps(record) + "\n")
            self._metrics.flush()
        return record

    def summary(self, summary: dict[str, Any]) -> None:
        self._still_there()
        write_json(self.run.summary_path, summary)

    def weights(self, which: str, model, meta: dict[str, Any] | None = None) -> None:
        self._still_there()
        checkpoint.save_model(self.run.weights_path(which), model, meta)

    def state(self, state: dict[str, Any]) -> None:
        self._still_there()
        checkpoint.save_state(self.run.state_path, state)

    def _still_there(self) -> None:
        """Refuse to write into a run whose folder was deleted or moved while it trained: no part of it is made again."""
        if not self.run.path.is_dir():
            raise RunError(f"the run folder {self.run.path} was deleted or moved while it trained", "nothing more was written; train it again")

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


class RunLock:
    """An exclusive lock on a run directory, held by the process that trains into it.

    An flock on the directory itself: the system drops it when the process ends, however it ends. Without
    fcntl (Windows), or on a file system without locks, nothing is locked.
    """

    def __init__(self, run: Run):
        self.run = run
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock; UsageError while another process holds it."""
        try:
            import fcntl
        except ImportError:
            return self
        fd = os.open(self.run.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"run {self.run.name} is still training in another process", "wait for it, or stop it first") from None
        except OSError:
            os.close(fd)
            return self
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _own_file(path) -> None:
    """Refuse a file of the run that is a link to a file elsewhere, or a FIFO or device."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise RunError(f"{path} is a {'symbolic link' if path.is_symlink() else 'special file'}, not a file of the run", "a run's files stay inside it; remove it")


def _append_to(path):
    """``path`` opened to append text, not followed if it became a link since it was checked."""
    _own_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    return os.fdopen(fd, "a", encoding="utf-8")


def _ends_a_line(path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
