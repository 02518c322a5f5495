"""Incremental reading of metrics.jsonl: each read returns only the lines appended since the last one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Chunk:
    """What one read found: new complete events, the file's mtime (None while it does not exist)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    mtime: float | None = None
    corrupt: int = 0
    restarted: bool = False


class MetricsTail:
    """Follows an append-only JSON-lines file from a byte offset, keeping a partial last line for later."""

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
            mtime = stat.st_mtime
            restarted = stat.st_size < self._offset
            if restarted:
                self._offset, self._partial = 0, b""
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        chunk = Chunk(mtime=mtime, restarted=restarted)
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                event = None
            if isinstance(event, dict) and "event" in event:
                chunk.events.append(event)
            else:
                chunk.corrupt += 1
        return chunk
