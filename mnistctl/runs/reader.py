"""The one reader of metrics.jsonl: whole-file or incremental, tolerant of damage.

A partial last line waits for its end; a line that is not a usable event is counted and skipped,
never a crash. Only a regular file is read (a FIFO would block, a device never end), in blocks; a line
longer than :data:`MAX_LINE` is skipped as it is read, so it takes no more memory than that, and
the events after it are read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mnistctl.errors import RunError
from mnistctl.fsutil import NotRegular, open_regular
from mnistctl.runs.events import Kind, problem

BLOCK = 16 * 2**20
MAX_LINE = 64 * 2**20  # events are at most a few MB (a layers event of a large model); a longer line is damage


@dataclass
class Chunk:
    """What one read found: new complete events, the file's mtime (None while it does not exist)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    mtime: float | None = None
    corrupt: int = 0
    restarted: bool = False
    first_problem: str | None = None


def parse_lines(lines: Iterable[bytes], chunk: Chunk) -> None:
    """Decode complete lines into ``chunk``, counting the unusable ones."""
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, an integer too long
            event, why = None, "not JSON"
        else:
            why = problem(event)
        if why is None:
            chunk.events.append(event)
        else:
            chunk.corrupt += 1
            chunk.first_problem = chunk.first_problem or why


class EventTail:
    """Follows an append-only metrics file from a byte offset, keeping a partial last line for later."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._offset = 0
        self._partial = bytearray()
        self._skipping = False

    def read(self) -> Chunk:
        try:
            f = open_regular(self.path)
        except FileNotFoundError:
            return Chunk()
        except OSError as exc:
            raise unreadable(self.path, exc) from None
        with f:
            stat = os.fstat(f.fileno())
            restarted = stat.st_size < self._offset
            if restarted:
                self._offset, self._partial, self._skipping = 0, bytearray(), False
            chunk = Chunk(mtime=stat.st_mtime, restarted=restarted)
            f.seek(self._offset)
            while self._offset < stat.st_size and (block := f.read(min(BLOCK, stat.st_size - self._offset))):
                self._offset += len(block)
                if self._skipping:  # the rest of a line over MAX_LINE, up to its end
                    end = block.find(b"\n")
                    if end < 0:
                        continue
                    block, self._skipping = block[end + 1 :], False
                *lines, partial = block.split(b"\n")
                if lines:
                    lines[0], self._partial = self._partial + lines[0], bytearray(partial)
                else:
                    self._partial += partial
                parse_lines(lines, chunk)
                if len(self._partial) > MAX_LINE:
                    chunk.corrupt += 1
                    chunk.first_problem = chunk.first_problem or f"a line of over {MAX_LINE // 2**20} MB"
                    self._partial, self._skipping = bytearray(), True
        return chunk


def unreadable(path: Path, exc: OSError) -> RunError:
    """The error for a run's file that is there but cannot be read: a FIFO, a device, a folder, a symbolic link loop, no permission."""
    if isinstance(exc, NotRegular):
        return RunError(f"{path} is not a regular file", "the run directory is damaged")
    hint = "check its permissions" if isinstance(exc, PermissionError) else "the run directory is damaged"
    return RunError(f"{path} cannot be read ({exc.strerror or exc})", hint)


def read_events(path: str | Path) -> Chunk:
    """Every complete event of a metrics file."""
    return EventTail(path).read()


def latest_per_epoch(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Epoch events in order, the latest one for each epoch (a resumed run repeats some)."""
    by_epoch = {e["epoch"]: e for e in events if e["event"] == Kind.EPOCH}
    return [by_epoch[k] for k in sorted(by_epoch)]
