"""The drawing pad: a 28x28 canvas drawn with the mouse (right button erases) or the keyboard (arrows, space)."""

from __future__ import annotations

import numpy as np
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from mnistctl.tui.pixels import SIDE, halfblock_rows, stroke

CURSOR, PEN, ERASER = "#3b82f6", "#f59e0b", "#ef4444"
LEFT, RIGHT = 1, 3


class Canvas(Widget, can_focus=True):
    """28x28 pixels in [0, 255], light on dark; ``scale`` cells per pixel side."""

    BINDINGS = [
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        Binding("space", "pen", "Pen"),
        Binding("e", "eraser", "Eraser"),
    ]

    class Changed(Message):
        """The drawing changed."""

    class Moved(Message):
        """The cursor moved, or the pen was lifted, put down or switched."""

    def __init__(self, scale: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image = np.zeros((SIDE, SIDE), dtype=np.float32)
        self.cursor = (SIDE // 2, SIDE // 2)
        self.pen_down = False
        self.eraser = False
        self.scale = scale
        self._button = 0
        self._last: tuple[float, float] | None = None
        self._lines: list[Strip] = []

    @property
    def blank(self) -> bool:
        return not self.image.any()

    @property
    def rows(self) -> int:
        """Terminal rows the pad takes: two pixels to a half-block character."""
        return -(-SIDE * self.scale // 2)

    def set_scale(self, scale: int) -> None:
        self.scale = max(1, scale)
        self.styles.width = SIDE * self.scale
        self.styles.height = self.rows
        self._redraw()

    def on_mount(self) -> None:
        self.set_scale(self.scale)

    def clear(self) -> None:
        self.image[:] = 0
        self._changed()

    def draw(self, start: tuple[float, float], end: tuple[float, float], erase: bool = False) -> None:
        stroke(self.image, start, end, erase)
        self._changed()

    def _changed(self) -> None:
        self._redraw()
        self.post_message(self.Changed())

    def _redraw(self) -> None:
        colour = (ERASER if self.eraser else PEN) if self.pen_down else CURSOR
        marks = {self.cursor: colour} if self.screen.focused is self else {}  # has_focus follows only after on_focus
        self._lines = [Strip(line) for line in halfblock_rows(self.image, self.scale, marks)]
        self.refresh()

    def render_line(self, y: int) -> Strip:
        return self._lines[y] if 0 <= y < len(self._lines) else Strip.blank(self.size.width)

    def on_focus(self) -> None:
        self._redraw()

    def on_blur(self) -> None:
        self._redraw()

    def pixel_at(self, x: int, y: int) -> tuple[float, float]:
        """The pixel coordinates (row, col) at the centre of content cell (x, y)."""
        return (2 * y + 1) / self.scale - 0.5, (x + 0.5) / self.scale - 0.5

    # mouse
    def on_mouse_down(self, event: events.MouseDown) -> None:
        offset = event.get_content_offset(self)
        if offset is None or event.button not in (LEFT, RIGHT):
            return
        self._button = event.button
        self._last = self.pixel_at(offset.x, offset.y)
        self.capture_mouse()
        self.draw(self._last, self._last, erase=self._erasing())

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if not self._button or self._last is None:
            return
        offset = event.get_content_offset_capture(self)
        point = self.pixel_at(offset.x, offset.y)
        if point != self._last:
            self.draw(self._last, point, erase=self._erasing())
            self._last = point

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._button:
            self.on_mouse_move(event)  # type: ignore[arg-type]
            self._button, self._last = 0, None
            self.release_mouse()

    def _erasing(self) -> bool:
        return self._button == RIGHT or self.eraser

    # keyboard
    def action_move(self, dy: int, dx: int) -> None:
        start = self.cursor
        self.cursor = (int(np.clip(start[0] + dy, 0, SIDE - 1)), int(np.clip(start[1] + dx, 0, SIDE - 1)))
        if self.pen_down:
            self.draw(start, self.cursor, erase=self.eraser)
        else:
            self._redraw()
        self.post_message(self.Moved())

    def action_pen(self) -> None:
        self.pen_down = not self.pen_down
        if self.pen_down:
            self.draw(self.cursor, self.cursor, erase=self.eraser)
        else:
            self._redraw()
        self.post_message(self.Moved())

    def action_eraser(self) -> None:
        self.eraser = not self.eraser
        self._redraw()
        self.post_message(self.Moved())
