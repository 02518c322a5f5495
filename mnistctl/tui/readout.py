"""What ``mnistctl draw`` shows beside the pad: probability bars, and the first conv layer's feature maps."""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.text import Text
from textual.widget import Widget

from mnistctl.tui.pixels import halfblock_rows

BAR = 22
EIGHTHS = " ▏▎▍▌▋▊▉█"
TILES = (14, 12, 10)


def bar(fraction: float, width: int = BAR) -> str:
    """A horizontal bar of ``width`` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


class Probabilities(Widget):
    """The likeliest digit, and a bar for every digit, the bars as wide as there is room for."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.probs: np.ndarray | None = None
        self.models = ""

    def show(self, probs: np.ndarray | None, models: str) -> None:
        self.probs, self.models = probs, models
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        """The height of the whole panel, whatever it was last drawn at: a max-height cuts it down, then ``render`` fits it."""
        head = len(Text.assemble("model ", self._names(width)).wrap(self.app.console, max(1, width)))
        return head + (2 if self.probs is None else 12)

    def render(self) -> RenderableType:
        probs, rows = self.probs, self.size.height
        model = Text.assemble(("model ", "dim"), self._names(self.size.width))
        if probs is None:
            return Text("\n").join([model, Text(""), Text("draw a digit", style="italic dim")])
        order = np.argsort(-probs, kind="stable")
        best = int(order[0])
        reads = Text.assemble(("reads ", ""), (f" {best} ", "bold reverse green"), f"  {probs[best]:.1%}")
        head = len(model.wrap(self.app.console, max(1, self.size.width)))
        if rows < head + 12:  # no room for a bar per digit: the reading first, then the model and the runners-up
            then = Text.assemble(("then ", "dim"), *(Text.assemble((f"{d} ", "bold yellow"), f"{probs[d]:.1%}  ") for d in order[1:3]))
            return Text("\n").join([model, reads, then] if rows >= head + 2 else [reads, then][: max(1, rows)])
        lines = [model, reads, Text("")]
        width = max(0, min(BAR, self.size.width - 9))  # room left by "9 " and " 100.0%"
        for digit, p in enumerate(probs):
            style = "bold green" if digit == best else ("yellow" if digit in order[1:3] else "dim")
            lines.append(Text.assemble((f"{digit} ", "bold" if digit == best else ""), (bar(float(p), width), style), f" {p:6.1%}"))
        return Text("\n").join(lines)

    def _names(self, width: int) -> Text:
        """The models' names in bold, each whole or, when longer than a line, cut with an ellipsis: never broken across lines."""
        names = []
        for name in self.models.split(" + "):
            text = Text(name, style="bold")
            text.truncate(max(1, width), overflow="ellipsis")
            names.append(text)
        return Text(" + ").join(names)


class Pixels:
    """A rich renderable of pre-rendered half-block lines."""

    def __init__(self, lines: list[list[Segment]]):
        self.lines = lines

    def __rich_console__(self, console, options):
        for line in self.lines:
            yield from line
            yield Segment.line()


def tiles(maps: np.ndarray, cols: int, side: int = TILES[0], gap: int = 1) -> np.ndarray:
    """Feature maps (n, h, w) pooled to ``side`` pixels, their positive part on one grey scale, in rows of ``cols``."""
    import torch
    import torch.nn.functional as F

    pooled = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[None], side)[0].numpy()
    pooled = np.clip(pooled, 0, None)
    pooled = 255 * pooled / max(float(pooled.max()), 1e-6)
    rows = -(-len(pooled) // cols)
    mosaic = np.full((rows * (side + 2 * gap) - 2 * gap, cols * (side + gap) - gap), 40.0, dtype=np.float32)
    for k, tile in enumerate(pooled):
        r, c = divmod(k, cols)
        top = r * (side + 2 * gap)
        mosaic[top : top + side, c * (side + gap) : c * (side + gap) + side] = tile
    return mosaic


class FeatureMaps(Widget):
    """The first conv layer's outputs for the current drawing, most active first, as small greyscale tiles that fill the widget."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.conv: str | None = None
        self.maps: np.ndarray | None = None

    def show(self, layer: str | None, maps: np.ndarray | None) -> None:
        self.conv, self.maps = layer, maps
        self.refresh()

    def caption(self, count: int) -> Text:
        n = len(self.maps)
        return Text.assemble((self.conv or "", "bold"), f": all {n} channels" if count == n else f": top {count} of {n}")

    def render(self) -> RenderableType:
        if self.maps is None:
            return Text("draw a digit" if self.conv is None else f"{self.conv}: no output", style="italic dim")
        n, width = len(self.maps), self.size.width
        caption_lines = max(len(self.caption(k).wrap(self.app.console, max(1, width))) for k in (n, n - 1))  # the longest captions
        height = max(0, self.size.height - caption_lines)
        fits = []
        for side in TILES:
            cols, rows = (width + 1) // (side + 1), (height + 1) // (side // 2 + 1)
            fits.append((min(n, cols * rows), side, cols))
        count, side, cols = max(fits)  # the most channels, at the largest size that shows them
        if not count:
            return Text("no room for the maps", style="italic dim")
        shown = np.argsort(-np.abs(self.maps).mean(axis=(1, 2)), kind="stable")[:count]
        return Group(self.caption(count), Pixels(halfblock_rows(tiles(self.maps[shown], cols, side), 1)))
