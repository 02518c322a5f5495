"""The one reader of metrics.jsonl: whole-file or incremental, tolerant of damage.

A partial last line waits for its end; a line that is not a usable event is counted and skipped,
never a crash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mnistctl.runs.events import Kind, problem


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
        except (json.JSONDecodeError, UnicodeDecodeError):
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
        self._partial = b""

    def read(self) -> Chunk:
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return Chunk()
        with f:
            stat = os.fstat(f.fileno())
            restarted = stat.st_size < self._offset
            if restarted:
                self._offset, self._partial = 0, b""
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        chunk = Chunk(mtime=stat.st_mtime, restarted=restarted)
        parse_lines(lines, chunk)
        return chunk


def read_events(path: str | Path) -> Chunk:
    """Every complete event of a metrics file."""
    return EventTail(path).read()


def latest_per_epoch(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Epoch events in order, the latest one for each epoch (a resumed run repeats some)."""
    by_epoch = {e["epoch"]: e for e in events if e["event"] == Kind.EPOCH}
    return [by_epoch[k] for k in sorted(by_epoch)]
