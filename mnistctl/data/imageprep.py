"""Photos and scans of a handwritten digit, made the way MNIST was made.

MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio and
centred by centre of mass in a 28x28 frame. :func:`prepare` turns any picture of one digit
into that form: it finds the sheet in a photo of a page on a desk, inverts dark ink on light
paper, removes uneven lighting and paper texture, crops to the ink, fits, and centres. It works
at the resolution the digit needs: pictures are decoded no larger than :data:`DECODE_SIDE`
(safely, by :mod:`mnistctl.data.imagefile`) and prepared at :data:`WORK_SIDE` at most; a small
picture (a crop, a drawing) first at :data:`SMALL_SIDE`, kept when its digit spans at least twice
the 20-pixel box there. 28x28 images already in MNIST form skip preparation.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistctl.data import fastdecode
from mnistctl.data.imagefile import finite, read_gray, reduction
from mnistctl.errors import DataError

SIDE, BOX = 28, 20
BOX_SLACK = 2
CENTRE_SLACK = 1.5
DECODE_SIDE = 256
WORK_SIDE = 128
SMALL_SIDE = 64
SMALL_INK = 12  # ink under this many pixels at WORK_SIDE is looked at again at full resolution
CLOSER_WINDOW = 4  # in a window this many times that size
BACKGROUND_SIDE = 64
STROKE_WIDTH = 2.6
MIN_CONTRAST = 0.1
MIN_COMPONENT = 0.05
EVEN_PAPER = 0.08
STRONG_INK = 0.6
EDGE_INK = 0.3
DIM_PAPER = 0.05
PAPER_AREA = 0.2
PAPER_FILL = 0.6
PAPER_THICK = 0.25  # sheets on a desk: 0.3 or more of the picture's shorter side across; slivers of paper beside a stroke 0.2
PAPER_AROUND = 0.2  # desk photos: at most 0.10 of the border beside the sheet as bright as it; tight crops 0.31 or more
PAPER_STEP = np.log(1.5)
BAND_LENGTH = 0.8  # a scanner lid's shadow or a photocopy's border: dark along most of a side of the picture,
BAND_THICK = 0.08  # at most this share of the picture across, with paper between it and the ink
INK_TAIL = 0.001  # of the square a digit can fill: the darkest and brightest pixels that tell dark ink from light


def _cv2():
    return fastdecode.cv2_one_thread()


_FRAME_PIXELS = SIDE * SIDE - (SIDE - 4) ** 2  # the outer two pixels all round
_AXIS = np.arange(SIDE, dtype=np.float64)
_LINE_ENDS = [(2, 3), (2, 3), (0, 1), (0, 1)]  # for each of _sides: the sides at the start and end of its lines


def is_mnist_form(gray: np.ndarray) -> bool:
    """28x28, a light digit on a dark frame, fitted to about 20 pixels and centred by its centre of mass:
    what MNIST looks like, so no preparation is needed. Row and column sums answer all three, cheaply."""
    if gray.shape != (SIDE, SIDE):
        return False
    rows, cols = gray.sum(axis=1, dtype=np.float64), gray.sum(axis=0, dtype=np.float64)
    total = float(rows.sum())
    if float(gray.max()) <= 0.5 * _top(gray) or _frame_brightness(gray, total) >= 0.05:
        return False
    (ink_rows,), (ink_cols,) = np.nonzero(rows), np.nonzero(cols)
    extent = max(ink_rows[-1] - ink_rows[0], ink_cols[-1] - ink_cols[0]) + 1
    dy, dx = rows @ _AXIS / total - SIDE / 2, cols @ _AXIS / total - SIDE / 2
    return abs(extent - BOX) <= BOX_SLACK and dx * dx + dy * dy <= CENTRE_SLACK**2


def prepare(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """An MNIST-style uint8 (28, 28) digit from a luminance image of any size (float in [0, 1], or uint8).

    A digit that touches the edge of the picture (cropped tight from a scan, or filling the frame)
    is prepared with a margin of paper around it, so that the paper is not taken for ink: at once
    when ink plainly runs off the edge, else when the first attempt finds no ink or ink at the edge.
    "Blank" means no ink either way. Thin dark bands along its sides (a scanner lid's shadow, a photocopy's
    border) are taken for paper. A larger picture that shows a sheet of paper on a darker
    surface is read on the sheet alone; a digit found small there is looked for again at full resolution,
    around the ink, so thin strokes do not fade. A picture of at most :data:`WORK_SIDE` pixels is first
    read at :data:`SMALL_SIDE`, at little cost, and again at full size if the digit found there is small.
    """
    x = _unit(gray)
    if max(x.shape) > WORK_SIDE:  # a photo or a page
        work = finite(_shrink(x, WORK_SIDE, reduction(x.shape[1], x.shape[0], WORK_SIDE, fit=True)), name)
        sheet = _sheet_of_paper(work)
        ink = _found_ink(sheet) if sheet is not None else None
        ink = ink if ink is not None else _found_ink(work)
        if ink is None or max(_cropped(ink).shape) < SMALL_INK:  # a small digit's strokes fade at working size: look closer
            page = _sheet_of_paper(x) if sheet is not None else None
            closer = _ink_around_strongest(page if page is not None else x)
            ink = closer if closer is not None else ink
    else:
        x = finite(x, name)
        ink = _found_ink(_shrink(x, SMALL_SIDE)) if max(x.shape) > SMALL_SIDE else None
        if ink is None or max(_cropped(ink).shape) < 2 * BOX:  # too few pixels for this digit: look closer
            ink = _found_ink(x)
    if ink is None:
        raise DataError(f"{name} has no ink that stands out from the paper (it is blank, or the ink is too faint)",
                        "photograph a digit written in dark ink on light paper, or light on dark; darken a faint pencil digit")
    ink = _cropped(ink)
    if max(ink.shape) > WORK_SIDE:  # ink along a strip the working size kept long: thickened at that size, not with a kernel as long as it
        ink = _resize(ink, WORK_SIDE / max(ink.shape))
    ink = _thicken(ink, BOX / max(ink.shape))
    return _centre(_fit(ink, BOX))


def _ink_around_strongest(page: np.ndarray) -> np.ndarray | None:
    """The ink in a window of ``page``, at its full resolution, around what stands out most at working size
    from the paper around it (dark or light, in any light: the mean over a square wider than a small digit)."""
    cv2 = _cv2()
    factor = _shrink_factor(page, WORK_SIDE)
    small = _shrink(page, WORK_SIDE, factor)
    strength = cv2.GaussianBlur(np.abs(small - cv2.blur(small, (SMALL_INK + 1, SMALL_INK + 1))), (0, 0), 1)
    row, col = np.unravel_index(np.argmax(strength), strength.shape)
    half = CLOSER_WINDOW * SMALL_INK * factor // 2
    top, left = max(0, (2 * row + 1) * factor // 2 - half), max(0, (2 * col + 1) * factor // 2 - half)
    return _found_ink(_shrink(page[top : top + 2 * half, left : left + 2 * half], DECODE_SIDE))  # bounded for a huge array


def _sheet_of_paper(x: np.ndarray) -> np.ndarray | None:
    """The sheet, in a photo of a sheet of paper on a darker surface (a page on a desk), else None.

    Light multiplies, so the sheet's border is a sharp step in the log of the picture, however
    uneven the light: the sheet is the brightest region bounded by such steps, at least a fifth of
    the picture and most of the rectangle around it, with mostly darker surface outside its box and along
    the picture's border. A white area enclosed by the strokes of a digit cropped tight from a scan
    has paper, not a desk, along the border.
    """
    cv2 = _cv2()
    shade = np.log(np.maximum(_shrink(x, BACKGROUND_SIDE), 1 / 255))
    rows, cols = shade.shape
    flat = cv2.morphologyEx(shade, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) < PAPER_STEP
    _, labels, stats, _ = cv2.connectedComponentsWithStats(flat.astype(np.uint8), connectivity=4)
    area, widths, heights = stats[:, cv2.CC_STAT_AREA], stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    large = [int(r) for r in 1 + np.flatnonzero(widths[1:] * heights[1:] >= PAPER_AREA * rows * cols)]  # a sheet's strokes are not its area
    framed = [r for r in large if (widths[r], heights[r]) != (cols, rows) and _sheet_shaped(labels == r, area[r])]
    if not framed:  # nothing shaped like a sheet on a surface: most pictures stop here
        return None
    levels = {r: float(np.median(shade[labels == r])) for r in large}
    sheet = max(large, key=levels.get)
    column, row, width, height, _ = (int(v) for v in stats[sheet])
    outside = np.ones_like(flat)
    outside[row : row + height, column : column + width] = False
    if sheet not in framed or np.count_nonzero(shade[outside] < levels[sheet] - PAPER_STEP) < PAPER_FILL * np.count_nonzero(outside):
        return None
    if not _desk_around(shade, labels == sheet, levels[sheet]):  # paper around it: a white area enclosed by strokes
        return None
    factor = _shrink_factor(x, BACKGROUND_SIDE)
    top, bottom, left, right = row + 1, row + height - 1, column + 1, column + width - 1  # a pixel in from its border
    sheet_x = x[top * factor : bottom * factor, left * factor : right * factor]
    desk = _off_sheet(labels, sheet)[top:bottom, left:right]
    if desk.any():  # a turned sheet: corners of the desk inside its box, which would read as ink
        sheet_x = sheet_x.copy()
        sheet_x[np.kron(desk, np.ones((factor, factor), bool))] = np.exp(levels[sheet])
    return sheet_x


def _sheet_shaped(region: np.ndarray, area: int) -> bool:
    """Whether a region of even paper is shaped like a sheet, straight or turned: most of the smallest
    rectangle around it (turned to fit), which is not thin (a sliver of paper beside a stroke)."""
    sides = _cv2().minAreaRect(_cv2().findNonZero(region.astype(np.uint8)))[1]
    return area >= PAPER_FILL * sides[0] * sides[1] and min(sides) >= PAPER_THICK * min(region.shape)


def _off_sheet(labels: np.ndarray, sheet: int) -> np.ndarray:
    """What lies outside the sheet's outline (the convex hull of its even paper): the desk, and the sheet's own edge."""
    cv2 = _cv2()
    hull = np.zeros(labels.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero((labels == sheet).astype(np.uint8))), 1)
    return hull == 0


def _desk_around(shade: np.ndarray, sheet: np.ndarray, level: float) -> bool:
    """Whether the picture's border, where it is not the sheet, is hardly ever as bright as the sheet: a desk,
    not more paper around a white area enclosed by strokes."""
    around = _border(shade)[~_border(sheet)]
    return around.size > 0 and np.count_nonzero(around > level - PAPER_STEP / 2) < PAPER_AROUND * around.size


def _cropped(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _found_ink(x: np.ndarray) -> np.ndarray | None:
    x = _without_border_bands(x)
    edge = _border(x)
    paper = _median(edge)
    margin_first = float(np.abs(edge - paper).max()) > EDGE_INK  # some edge pixel stands out: ink runs off the picture
    ink = _ink_with_margin(x, edge, paper) if margin_first else None
    if ink is None:
        ink = _ink(x)
        if not margin_first and (ink is None or _touches_edge(ink)):
            padded = _ink_with_margin(x, edge, paper)
            ink = padded if padded is not None else ink
    return ink


def _without_border_bands(x: np.ndarray) -> np.ndarray:
    """``x`` with thin bands along its sides painted as the paper beside them (a scanner lid's shadow, a photocopy's
    border): lines from the border in that are ink along most of their length, up to a line of paper at most
    :data:`BAND_THICK` of the picture in, with ink left elsewhere. A stroke of a digit cropped tight crosses the
    picture or runs on into the digit, with no line of paper between. Where a band meets another (a frame's
    corner), the end of its line of paper is not looked at."""
    off = np.abs(x - _quantiles(x[::2, ::2], [0.5])[0]) > EDGE_INK
    depths = [_long_lines(lines) for lines in _sides(off)]
    painted, ink = x.copy(), off.copy()
    for side, lines in enumerate(_sides(off)):
        corner = int(BAND_THICK * lines.shape[1])
        start, end = (corner if depths[other] else 0 for other in _LINE_ENDS[side])
        width = _band_width(lines[:, start : lines.shape[1] - end], depths[side])
        if 0 < width <= BAND_THICK * len(lines):
            band = _sides(painted)[side]
            band[:width] = band[width]
            _sides(ink)[side][:width] = False
    return painted if ink.any() else x


def _sides(x: np.ndarray) -> list[np.ndarray]:
    """Views of ``x`` from its top, bottom, left and right: each side's lines, from the border in."""
    return [x, x[::-1], x.T, x.T[::-1]]


def _long_lines(lines: np.ndarray) -> int:
    """How many of the first ``lines`` (of ink or not) are ink along :data:`BAND_LENGTH` of their length."""
    return int(np.argmin(np.append(lines.mean(axis=1) >= BAND_LENGTH, False)))


def _band_width(lines: np.ndarray, depth: int) -> int:
    """How many ``lines`` a band is: its ``depth`` long lines of ink, then no more lines of ink than those (a soft
    or uneven edge) before a line without ink; 0 for none (a digit's stroke, narrowing)."""
    clear = np.flatnonzero(~lines[depth : 2 * depth + 1].any(axis=1))
    return depth + int(clear[0]) if depth and clear.size else 0


def _unit(gray: np.ndarray) -> np.ndarray:
    """Luminance as float32 in [0, 1], from uint8 or float."""
    return gray.astype(np.float32) * np.float32(1 / 255) if gray.dtype == np.uint8 else np.asarray(gray, dtype=np.float32)


def _ink(x: np.ndarray, extent: int | None = None) -> np.ndarray | None:
    ink = _suppress_background(_ink_up(x), extent or _extent(x))
    return None if ink is None else _keep_main_strokes(ink)


def _median(values: np.ndarray) -> float:
    """np.median, from a sort (a partition is slow on the many equal values of a page)."""
    ordered = np.sort(values, axis=None)
    return float(ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / 2


def _ink_with_margin(x: np.ndarray, edge: np.ndarray, paper: float) -> np.ndarray | None:
    margined = _with_margin(x, edge, paper)
    return _ink(margined, _extent(x) + 2 * _margin(x)) if margined is not None else None  # a strip's margin is paper, not a larger digit


def _with_margin(x: np.ndarray, edge: np.ndarray, paper: float) -> np.ndarray | None:
    """``x`` with a quarter of its size of paper added around it, when that is safe: its ``edge`` is mostly
    one even shade of paper, or it holds ink much darker than any shadow. Not for a page in uneven
    light, where a flat margin would itself look like ink. Where the edge is mostly paper in light
    that varies across it, the margin goes on with that light; else it is the edge's median shade."""
    off = np.abs(edge - paper)
    even = np.count_nonzero(off < EVEN_PAPER) * 2 >= edge.size
    flat = np.count_nonzero(off < EVEN_PAPER / 4) * 2 >= edge.size
    pad = _margin(x)
    if even and not flat:
        margined = _paper_light(x, edge, paper, pad)
        margined[pad:-pad, pad:-pad] = x
        return margined
    if not even:
        low, high = _quantiles(x[::2, ::2], [0.01, 0.99])
        if high - low < STRONG_INK:
            return None
    return _cv2().copyMakeBorder(x, pad, pad, pad, pad, _cv2().BORDER_CONSTANT, value=paper)


def _margin(x: np.ndarray) -> int:
    """How much paper :func:`_with_margin` adds on each side: a quarter of the picture's extent."""
    return max(2, _extent(x) // 4)


def _paper_light(x: np.ndarray, edge: np.ndarray, paper: float, pad: int) -> np.ndarray:
    """The light on the paper along ``x``'s border (its ``edge`` pixels), as a plane fitted with the ink
    left out, over ``x`` grown by ``pad`` on each side."""
    height, width = x.shape
    rows, cols = (_border(grid) for grid in np.mgrid[0:height, 0:width])
    terms = np.stack([np.ones_like(rows), rows, cols], axis=1).astype(np.float64)
    keep = np.abs(edge - paper) < 2 * EVEN_PAPER
    for _ in range(3):
        kept = terms[keep]
        plane = np.linalg.solve(kept.T @ kept, kept.T @ edge[keep])
        off = np.abs(edge - terms @ plane)
        keep = off < 3 * 1.4826 * _median(off[keep]) + 1e-3
    rows = np.arange(-pad, height + pad, dtype=np.float32)[:, None]
    cols = np.arange(-pad, width + pad, dtype=np.float32)[None, :]
    return np.clip(np.float32(plane[0]) + np.float32(plane[1]) * rows + np.float32(plane[2]) * cols, 0, 1)


def _border(x: np.ndarray) -> np.ndarray:
    """The pixels along the four sides of ``x``: top, bottom, left, right."""
    return np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])


def _touches_edge(ink: np.ndarray) -> bool:
    return bool(_border(ink).any())


def _shrink_factor(x: np.ndarray, side: int) -> int:
    """How many pixels a side :func:`_shrink` averages into one."""
    return max(1, -(-max(x.shape) // side))


def _extent(x: np.ndarray) -> int:
    """How large a picture ``x`` is for its digit: its longer side, but at most eight times the shorter one (a wide strip)."""
    return min(max(x.shape), 8 * min(x.shape))


def _shrink(x: np.ndarray, side: int, factor: int | None = None) -> np.ndarray:
    """Average whole blocks of ``factor`` pixels a side, by default so the longer side is at most ``side`` (a few edge pixels may drop)."""
    factor = factor or _shrink_factor(x, side)
    if factor < 2:
        return x
    height, width = x.shape[0] // factor, x.shape[1] // factor
    if height < 1 or width < 1:
        return _resize_to(x, (max(1, height), max(1, width)))
    cv2 = _cv2()
    return cv2.resize(np.ascontiguousarray(x[: height * factor, : width * factor], dtype=np.float32), (width, height), interpolation=cv2.INTER_AREA)


def _quantiles(x: np.ndarray, fractions: list[float]) -> list[float]:
    """Order statistics at the given fractions (nearest rank), from one sort (which, unlike a partition, stays fast on ties)."""
    ordered = np.sort(x, axis=None)
    return [float(ordered[min(ordered.size - 1, int(f * ordered.size))]) for f in fractions]


def _resize(x: np.ndarray, scale: float) -> np.ndarray:
    height, width = x.shape
    return _resize_to(x, (max(1, round(height * scale)), max(1, round(width * scale))))


def _resize_to(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average when shrinking, bilinear when growing."""
    cv2 = _cv2()

    if x.shape == tuple(shape):
        return x
    interpolation = cv2.INTER_AREA if shape[0] * shape[1] < x.size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(x, dtype=np.float32), (shape[1], shape[0]), interpolation=interpolation)


def _ink_up(x: np.ndarray) -> np.ndarray:
    """Bright ink on a flat dark page, whichever way round the picture was.

    Against the page's local median the ink is the long tail: below it for dark ink, above for light.
    Dark ink is measured as the share of the paper's light it takes away, so a stroke in a dim
    corner is as strong as one in full light.
    """
    cv2 = _cv2()

    small = _shrink(x, BACKGROUND_SIDE // 2)
    window = max(3, _extent(small) // 3) | 1
    pad = window // 2
    padded = cv2.copyMakeBorder(np.round(small * 255).astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    page = _resize_to(cv2.medianBlur(padded, window)[pad:-pad, pad:-pad].astype(np.float32) / 255, x.shape)
    tail = _ink_tail(x)
    darkest, brightest = _quantiles(x[::2, ::2] - page[::2, ::2], [tail, 1 - tail])
    if -darkest > brightest:  # dark ink, measured against the paper's brightness: light multiplies
        x = 1 - x
        background = _background(x)
        return np.maximum(x - background, 0) / np.maximum(1 - background, DIM_PAPER)
    return np.maximum(x - _background(x), 0)


def _ink_tail(x: np.ndarray) -> float:
    """:data:`INK_TAIL` of a square of ``x``'s shorter side, as a share of its pixels: the ink of a digit in a long
    strip is a small share of the strip."""
    return INK_TAIL * min(x.shape) / max(x.shape)


def _background(x: np.ndarray) -> np.ndarray:
    """The paper under uneven light: a grey opening wider than any stroke, computed small and smoothed.

    The opening's dilation and the smoothing see the picture continued past its border in a
    straight line (odd reflection), as light goes on: repeating the border pixels instead flattened
    a gradient there, and left a corner in dim light brighter than the paper found for it, as ink.
    """
    cv2 = _cv2()

    small = _shrink(x, BACKGROUND_SIDE)
    window = max(3, _extent(small) // 3)
    kernel = np.ones((window, window), np.uint8)
    reach = window // 2 + 1
    eroded = cv2.erode(small, kernel, borderType=cv2.BORDER_REPLICATE)
    opened = _within(cv2.dilate(_continued(eroded, reach), kernel), reach)
    return _resize_to(_within(cv2.blur(_continued(opened, reach), (window, window)), reach), x.shape)


def _continued(x: np.ndarray, pad: int) -> np.ndarray:
    """``x`` continued ``pad`` pixels past each side in a straight line (mirrored through its border
    pixels), or flat where it is too narrow for that."""
    cv2 = _cv2()

    flat = cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    if min(x.shape) <= pad:
        return flat
    return cv2.addWeighted(flat, 2, cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_REFLECT_101), -1, 0)


def _within(x: np.ndarray, pad: int) -> np.ndarray:
    return x[pad:-pad, pad:-pad]


def _suppress_background(x: np.ndarray, extent: int) -> np.ndarray | None:
    """Ink in [0, 1] on exact zero (paper texture and noise removed, at a scale set by the picture's ``extent``),
    or None when nothing stands out of the noise."""
    cv2 = _cv2()

    if extent >= 64:
        x = cv2.GaussianBlur(x, (0, 0), extent / 256)
    sample = x[::2, ::2]
    median, peak = _quantiles(sample, [0.5, 0.999])
    noise = 1.4826 * _quantiles(np.abs(sample - median), [0.5])[0]
    if peak - median < max(MIN_CONTRAST, 6 * noise):
        return None
    threshold = max(_otsu(x), median + 3 * noise)
    strong = x[x > threshold]
    top = _quantiles(strong, [0.9])[0] if strong.size else peak
    return np.clip((x - threshold) / max(top - threshold, 1e-6), 0, 1)


def _otsu(x: np.ndarray) -> float:
    """Otsu's threshold, on 256 grey levels spanning the image's range."""
    cv2 = _cv2()

    top = max(float(x.max()), 1e-6)
    level, _ = cv2.threshold(np.round(x * (255 / top)).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return (level + 0.5) * top / 255


def _keep_main_strokes(ink: np.ndarray) -> np.ndarray:
    """Drop specks: connected pieces with less than a twentieth of the largest piece's ink."""
    cv2 = _cv2()

    count, labels = cv2.connectedComponents((ink > 0).astype(np.uint8), connectivity=8)
    if count <= 2:
        return ink
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)
    mass[0] = 0
    keep = mass >= MIN_COMPONENT * mass.max()
    keep[0] = False
    return np.where(keep[labels], ink, 0).astype(np.float32)


def _thicken(ink: np.ndarray, scale: float) -> np.ndarray:
    """Widen strokes too thin for MNIST (a fine pen photographed large) to MNIST's width once fitted."""
    cv2 = _cv2()

    mask = (ink > 0.5).astype(np.uint8)
    eroded = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    edge = np.count_nonzero(mask) - np.count_nonzero(eroded)
    width = 2 * np.count_nonzero(mask) / max(edge, 1) * scale
    grow = round((STROKE_WIDTH - width) / scale / 2)
    if grow < 1:
        return ink
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(cv2.copyMakeBorder(ink, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0), disk)


def _fit(ink: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio, then stretch to full ink."""
    fitted = np.maximum(_resize(ink, box / max(ink.shape)), 0)
    return fitted / max(float(fitted.max()), 1e-6)


def _centre(digit: np.ndarray) -> np.ndarray:
    """Paste into a 28x28 frame so the centre of mass lands on pixel (14, 14), as in MNIST."""
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    h, w = digit.shape
    total = max(float(digit.sum()), 1e-6)
    cy = float(digit.sum(axis=1) @ np.arange(h)) / total
    cx = float(digit.sum(axis=0) @ np.arange(w)) / total
    top = min(max(round(SIDE / 2 - cy), 0), SIDE - h)
    left = min(max(round(SIDE / 2 - cx), 0), SIDE - w)
    canvas[top : top + h, left : left + w] = digit
    return np.round(canvas * 255).astype(np.uint8)


def as_raw(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """An image already in MNIST form, as uint8 (28, 28); refused when its frame is mostly light (dark on light)."""
    if gray.shape != (SIDE, SIDE):
        h, w = gray.shape
        raise DataError(f"{name} is {w}x{h}, but --raw needs 28x28 images in MNIST form", "drop --raw to prepare it")
    if _frame_brightness(gray, float(gray.sum(dtype=np.float64))) > 0.5:  # MNIST's frame is black; a digit may touch it, not fill it
        raise DataError(f"{name} looks dark on light, not MNIST form (white on black)", "drop --raw to have it prepared")
    return _as_uint8(gray)


def _top(gray: np.ndarray) -> float:
    return 255.0 if gray.dtype == np.uint8 else 1.0


def _frame_brightness(gray: np.ndarray, total: float) -> float:
    """The mean of the outer two pixels of a 28x28 image whose pixels sum to ``total``, from 0 (black) to 1 (white)."""
    return (total - float(gray[2:-2, 2:-2].sum(dtype=np.float64))) / (_top(gray) * _FRAME_PIXELS)


def _as_uint8(gray: np.ndarray) -> np.ndarray:
    return gray if gray.dtype == np.uint8 else np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8)


def load_prepared(source: str | Path | bytes | BinaryIO, raw: bool = False, name: str | None = None) -> np.ndarray:
    """The 28x28 uint8 image the model sees for a picture file, its bytes or a stream."""
    name = name or (str(source) if isinstance(source, (str, Path)) else "input")
    gray = read_gray(source, name, side=None if raw else DECODE_SIDE)
    if raw:
        return as_raw(gray, name)
    return _as_uint8(gray) if is_mnist_form(gray) else prepare(gray, name)


