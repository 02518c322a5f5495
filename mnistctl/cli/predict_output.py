"""Printing predictions as they stream: a table, a JSON array or JSON lines on stdout, a progress line on a terminal.

Rows are written as plain lines the moment each result arrives (flushed at least ten times a
second), so a huge folder starts printing at once; the image's name comes last, so the columns
stay aligned whatever names a folder holds. The progress line lives on stderr and only when
stderr is a terminal.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

from mnistctl.console import dumps, printable
from mnistctl.reading.predict import Prediction

FLUSH_EVERY = 0.1


class Output:
    def __init__(self, kind: str, models: list[str]):
        self.kind, self.models = kind, models
        self.count = 0
        self.headed = False
        self.flushed = 0.0
        self.progress: Any = None
        self.unfinished: str | None = None  # stdout shares the progress line's terminal: the line being written, printed whole above it

    def __enter__(self) -> Output:
        from mnistctl.console import err

        if err.is_terminal:
            from rich.progress import (
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(SpinnerColumn(), TextColumn("{task.completed} images read"), TimeElapsedColumn(),
                                     console=err, transient=True, redirect_stdout=False)
            self.unfinished = "" if sys.stdout.isatty() else None
            self.progress.start()
            self.task = self.progress.add_task("predict", total=None)
        return self

    def add(self, result) -> None:
        if self.kind == "jsonl":
            self._write(json_line(result))
        elif self.kind == "json":
            body = dumps(result.as_dict(), indent=2).replace("\n", "\n  ")
            self._write(("[\n  " if self.count == 0 else ",\n  ") + body, newline=False)
        elif isinstance(result, Prediction):
            self._row(result)
        self.count += 1
        if self.progress is not None:
            self.progress.advance(self.task)
        if time.monotonic() - self.flushed > FLUSH_EVERY:
            self._flush()

    def __exit__(self, kind, *exc) -> None:
        if self.kind == "json" and (self.count or kind is None):
            self._write("\n]" if self.count else "[]")
        if self.unfinished:
            self._write("")
        self._flush()
        if self.progress is not None:
            self.progress.stop()

    def _row(self, p) -> None:
        top = "  ".join(f"{d}: {q:>6.1%}" for d, q in p.top)
        if not self.headed:
            self.headed = True
            self._write(f"model: {' + '.join(self.models)}")
            self._write(f"digit  probability  {'top-k':<{len(top)}}  image")
        self._write(f"{p.digit:>5}  {p.probability:>11.1%}  {top}  {printable(p.source)}")

    def _write(self, text: str, newline: bool = True) -> None:
        text = text + "\n" if newline else text
        if self.unfinished is None:
            sys.stdout.write(text)
            return
        from rich.text import Text

        *lines, self.unfinished = (self.unfinished + text).split("\n")
        for line in lines:
            self.progress.console.print(Text(line), soft_wrap=True)

    def _flush(self) -> None:
        sys.stdout.flush()
        self.flushed = time.monotonic()


def json_line(result) -> str:
    """``dumps(result.as_dict())``, written out directly for a plain prediction (several times faster)."""
    if not isinstance(result, Prediction) or result.saved is not None:
        return dumps(result.as_dict())
    top = ", ".join(f'{{"digit": {digit}, "probability": {_number(chance)}}}' for digit, chance in result.top)
    return f'{{"image": {json.dumps(result.source)}, "digit": {result.digit}, "probability": {_number(result.probability)}, "top_k": [{top}]}}'


def _number(value: float) -> str:
    return float.__repr__(value) if math.isfinite(value) else "null"
