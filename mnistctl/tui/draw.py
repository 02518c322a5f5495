"""The ``mnistctl draw`` app: a drawing pad read live by a run's model, in a worker thread.

The pad posts ``Canvas.Changed``; the app hands the newest drawing to one reading thread, which
skips drawings made while it was busy (debounce) and posts each ``Read`` back. In a terminal too
small for the pad whole, a centred notice says how large it must be until it is resized.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from mnistctl.tui.canvas import Canvas
from mnistctl.tui.pixels import SIDE
from mnistctl.tui.reader import Reader, Reading
from mnistctl.tui.readout import FeatureMaps, Probabilities

MIN_INTERVAL = 0.04
SIDE_PANEL = 40
SIDE_MIN = 24
FULL_FOOTER = 60  # columns the footer's keys take with their padding
COMPACT_FOOTER = 51  # and without it
READING_ROWS = 15  # the probabilities panel once it reads: 13 lines and its border
PAD_WIDTH = SIDE + 4  # the pad at its smallest, with its border and padding
PAD_ROWS = SIDE // 2 + 2  # and its rows, with the border


def least_size(width: int) -> tuple[int, int]:
    """The smallest terminal that shows the pad whole at ``width`` columns (or more, when fewer than the pad needs):
    the pad, the reading beside it or a row of it below, and the footer (two rows under COMPACT_FOOTER columns)."""
    width = max(width, PAD_WIDTH)
    below = 0 if width - PAD_WIDTH >= SIDE_MIN else 1
    return PAD_WIDTH, PAD_ROWS + below + (1 if width >= COMPACT_FOOTER else 2)


class Read(Message):
    """A reading of the drawing with serial number ``serial``, from the reading thread."""

    def __init__(self, serial: int, reading: Reading | None) -> None:
        super().__init__()
        self.serial = serial
        self.reading = reading


class KeysFooter(Footer):
    """Textual's footer; in rows of three keys when one row is too short (Footer sets a column per key)."""

    def compose(self) -> ComposeResult:
        yield from super().compose()
        self._rows()

    def show_in_rows(self, on: bool) -> None:
        self.set_class(on, "rows")
        self._rows()

    def _rows(self) -> None:
        if self.has_class("rows"):
            self.styles.grid_size_columns = 3


class DrawApp(App):
    CSS_PATH = Path(__file__).with_name("draw.tcss")
    TITLE = "mnistctl draw"
    AUTO_FOCUS = None  # the pad has the keys only while it is shown (see _too_small)
    BINDINGS = [
        Binding("c", "clear", "Clear"),
        Binding("s", "save", "Save"),
        Binding("f", "maps", "Features"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, reader: Reader, out: Path):
        super().__init__()
        self.reader = reader
        self.out = Path(out)
        self.serial = 0
        self.shown = -1
        self.reading: Reading | None = None
        self.maps_on = False
        self._wanted = threading.Event()
        self._latest: tuple[int, np.ndarray, bool] = (0, np.zeros((SIDE, SIDE), np.float32), False)

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="pad"):
                yield Canvas(id="canvas")
                yield Static(id="status")
            with Vertical(id="side"):
                yield Probabilities(id="probs")
                yield Static(id="side-status")
                yield FeatureMaps(id="maps")
        yield KeysFooter(show_command_palette=False)
        yield Static(id="too-small")

    @property
    def canvas(self) -> Canvas:
        return self.query_one(Canvas)

    def on_mount(self) -> None:
        self.sub_title = " + ".join(self.reader.names)
        self.query_one(Probabilities).show(None, self.sub_title)
        self.run_worker(self._read_loop, thread=True, group="reader", name="reader")
        self._status()
        self._too_small(*self.size)

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size  # self.size is still the old size here
        self._too_small(width, height)
        scale = max(1, min(3, (width - SIDE_PANEL - 4) // SIDE, 2 * (height - 3) // SIDE))  # the pad, its border and the footer; the help can go beside
        self.set_class(width - SIDE * scale - 4 < SIDE_MIN, "narrow")  # no room beside the pad: the panel goes below
        if self.query(Canvas):  # none yet on the very first resize
            self.canvas.set_scale(scale)
            footer = self.query_one(KeysFooter)  # every key on screen, q Quit too
            footer.compact = width < FULL_FOOTER
            footer.show_in_rows(width < COMPACT_FOOTER)
            self._status(event.size)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only quitting while the terminal is too small: the pad is not shown."""
        return action == "quit" or not self.has_class("too-small")

    def _too_small(self, width: int, height: int) -> None:
        """In a terminal too small for the pad whole, a centred notice instead, until it is resized."""
        least_width, least_height = least_size(width)
        small = width < least_width or height < least_height
        if small != self.has_class("too-small"):
            self.set_class(small, "too-small")
            self.refresh_bindings()  # the footer's keys go and come back with the pad
        if self.query(Canvas):
            self.set_focus(None if small else self.canvas)  # the hidden pad takes no keys
        if small and self.query("#too-small"):  # none yet on the very first resize
            notice = f"terminal too small: at least {least_width}x{least_height}"
            notice = notice.replace(": ", ":\n") if len(notice) > width else notice
            self.query_one("#too-small", Static).update(f"{notice}\n(now {width}x{height}; q quits)")

    # reading, off the UI thread
    def on_canvas_changed(self, _: Canvas.Changed) -> None:
        self._request()
        self._status()

    def on_canvas_moved(self, _: Canvas.Moved) -> None:
        self._status()

    def _request(self) -> None:
        self.serial += 1
        self._latest = (self.serial, self.canvas.image.copy(), self.maps_on)
        self._wanted.set()

    def _read_loop(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            if not self._wanted.wait(0.1):
                continue
            self._wanted.clear()
            serial, drawing, maps = self._latest
            started = time.monotonic()
            reading = None if not drawing.any() else self.reader.read(drawing, maps)
            self.post_message(Read(serial, reading))
            time.sleep(max(0.0, MIN_INTERVAL - (time.monotonic() - started)))

    def on_read(self, message: Read) -> None:
        if message.serial < self.shown:
            return
        self.shown, self.reading = message.serial, message.reading
        reading = message.reading
        self.query_one(Probabilities).show(None if reading is None else reading.probs, self.sub_title)
        if self.maps_on:
            self.query_one(FeatureMaps).show(*((reading.layer, reading.maps) if reading else (None, None)))

    # keys
    def action_clear(self) -> None:
        self.canvas.clear()

    def action_maps(self) -> None:
        self.maps_on = not self.maps_on
        self.query_one(FeatureMaps).display = self.maps_on
        self.set_class(self.maps_on, "maps-on")  # the maps asked for take the side, the help's room too
        self._request()

    def action_save(self) -> None:
        if self.canvas.blank:
            self.notify("nothing to save: draw a digit first", severity="warning")
            return
        try:
            path = save_drawing(self.reader.model_input(self.canvas.image), self.out)
        except OSError as exc:
            self.notify(f"could not save into {self.out}: {exc}", severity="error")
            return
        self.notify(f"saved {path}")

    def _status(self, size: tuple[int, int] | None = None) -> None:
        """The help and the pen's state, under the pad or, in a short terminal, beside it; ``size`` while a resize is under way."""
        canvas = self.canvas
        tool = "eraser" if canvas.eraser else "pen"
        verb = "lifts" if canvas.pen_down else "lowers"
        other = "pen" if canvas.eraser else "eraser"
        lines = ["mouse: left draws, right erases", f"keys: arrows move, space {verb} the {tool}, e {other}"]
        pad = SIDE * canvas.scale + 2  # the canvas and its border
        width, height = size or self.size
        narrow = self.has_class("narrow")
        text = phrase_wrap(lines, width - 2 if narrow else pad)  # the panel is below: the help takes the width
        rows_below = height - 1 - (canvas.rows + 2)  # under the pad and its border, above the footer
        beside = text.count("\n") >= rows_below and not narrow
        self.set_class(beside, "help-beside")
        if beside:  # a short terminal: under the probabilities, shortened if need be (the footer names e)
            room = min(SIDE_PANEL, width - pad - 2) - 2
            text = phrase_wrap(lines, room)
            if text.count("\n") >= height - 1 - READING_ROWS:
                text = phrase_wrap(["left draws, right erases", f"arrows move, space {verb} the {tool}"], room)
        self.query_one("#side-status" if beside else "#status", Static).update(Text(text, style="dim"))
        below = height - (2 if width < COMPACT_FOOTER else 1) - (canvas.rows + 2)  # under the pad, above the footer
        help_rows = 0 if beside else text.count("\n") + 1
        short = narrow and below - help_rows < 3  # the reading comes first: the help gives way (the footer names the keys)
        self.set_class(short, "help-hidden")
        below -= 0 if short else help_rows
        self.set_class(narrow and below < 3, "tight")  # a row or two: the reading without its border
        self.query_one(Probabilities).styles.max_height = max(1, below) if narrow else None


def phrase_wrap(lines: list[str], width: int) -> str:
    """The lines, those wider than ``width`` broken after commas rather than inside a phrase."""
    wrapped: list[str] = []
    for line in lines:
        first, *rest = line.split(", ")
        wrapped.append(first)
        for phrase in rest:
            if len(wrapped[-1]) + 2 + len(phrase) <= width:
                wrapped[-1] += ", " + phrase
            else:
                wrapped[-1] += ","
                wrapped.append(phrase)
    return "\n".join(wrapped)


def save_drawing(image: np.ndarray, folder: Path) -> Path:
    """Write a uint8 image as ``drawing-001.png``, ``drawing-002.png``... under the first free name."""
    from PIL import Image

    from mnistctl.fsutil import write_first_free

    names = (f"drawing-{n:03d}.png" for n in itertools.count(1))
    return write_first_free(folder, names, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
