"""Small greyscale images in the terminal: a soft brush that draws like MNIST strokes, and half-block rendering.

Images are float32 arrays in [0, 255], light ink on dark, like MNIST. A terminal cell is about
twice as tall as wide, so one cell holds two pixels stacked (``▀``: top in the foreground
colour, bottom in the background colour) and the pixels come out square.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style

SIDE = 28
SIGMA = 1.0
CORE = 1.5
STEP = 0.35
TAIL = 0.05
SHOWN = 64
HALF, LOWER = "▀", "▄"


def stamp(shape: tuple[int, int], y: float, x: float, sigma: float = SIGMA) -> np.ndarray:
    """A gaussian dab centred on pixel coordinates (y, x), flattened to a solid core: values in [0, 1]."""
    rows = np.arange(shape[0], dtype=np.float32)[:, None] - y
    cols = np.arange(shape[1], dtype=np.float32)[None, :] - x
    dab = np.minimum(1.0, CORE * np.exp(-(rows**2 + cols**2) / (2 * sigma**2)))
    dab[dab < TAIL] = 0.0
    return dab


def stroke(image: np.ndarray, start: tuple[float, float], end: tuple[float, float], erase: bool = False) -> None:
    """Paint (or erase) a soft line from ``start`` to ``end`` in place, dabbing every fraction of a pixel."""
    (y0, x0), (y1, x1) = start, end
    steps = max(1, int(np.ceil(np.hypot(y1 - y0, x1 - x0) / STEP)))
    dabs = np.zeros(image.shape, dtype=np.float32)
    for t in np.linspace(0.0, 1.0, steps + 1):
        np.maximum(dabs, stamp(image.shape, y0 + t * (y1 - y0), x0 + t * (x1 - x0)), out=dabs)
    if erase:
        np.minimum(image, 255.0 * (1.0 - dabs), out=image)
    else:
        np.maximum(image, 255.0 * dabs, out=image)


def centre_by_mass(image: np.ndarray) -> np.ndarray:
    """The image shifted by whole pixels so its centre of mass lands on the centre, as in MNIST; blank stays blank."""
    total = float(image.sum())
    if total <= 0:
        return image.copy()
    h, w = image.shape
    cy = float((image.sum(1) * np.arange(h)).sum()) / total
    cx = float((image.sum(0) * np.arange(w)).sum()) / total
    dy, dx = round((h - 1) / 2 - cy), round((w - 1) / 2 - cx)
    shifted = np.zeros_like(image)
    shifted[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return shifted


def grey(value: float) -> str:
    v = int(np.clip(value, 0, 255))
    return f"#{v:02x}{v:02x}{v:02x}"


def halfblock_rows(image: np.ndarray, scale: int = 1, marks: dict[tuple[int, int], str] | None = None) -> list[list[Segment]]:
    """Terminal lines showing ``image`` with each pixel ``scale`` cells wide and ``scale`` half-cells tall.

    ``marks`` recolours single pixels (row, col) -> colour, e.g. a cursor.
    """
    marks = marks or {}
    h, w = image.shape
    lines = []
    for line in range(-(-h * scale // 2)):
        top, bottom = (2 * line) // scale, (2 * line + 1) // scale
        segments = []
        for col in range(w):
            upper, lower = float(image[top, col]), float(image[bottom, col]) if bottom < h else 0.0
            over, under = marks.get((top, col)), marks.get((bottom, col)) if bottom < h else None
            if over or under:
                segments.append(Segment(HALF * scale, Style(color=over or grey(upper), bgcolor=under or grey(lower))))
            else:
                segments.append(cell(upper, lower, scale))
        lines.append(list(Segment.simplify(segments)))
    return lines


def cell(upper: float, lower: float, width: int) -> Segment:
    """Two stacked pixels; the glyph follows the ink (``▀``, ``▄`` or blank), so a plain-text copy still shows the shape."""
    if upper >= SHOWN:
        return Segment(HALF * width, Style(color=grey(upper), bgcolor=grey(lower)))
    if lower >= SHOWN:
        return Segment(LOWER * width, Style(color=grey(lower), bgcolor=grey(upper)))
    return Segment(" " * width, Style(bgcolor=grey((upper + lower) / 2)))
