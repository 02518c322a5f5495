"""Photos and scans of a handwritten digit, made the way MNIST was made.

MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio and
centred by centre of mass in a 28x28 frame. :func:`prepare` turns any picture of one digit
into that form: it inverts dark ink on light paper, removes uneven lighting and paper texture,
crops to the ink, fits, and centres. Decoding is bounded: the pixel count is checked from the
header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistctl.errors import DataError, NotFoundError

MAX_PIXELS = 50_000_000
MAX_BYTES = 100 * 2**20
SIDE, BOX = 28, 20
WORK_SIDE = 256
BACKGROUND_SIDE = 64
STROKE_WIDTH = 2.6
MIN_CONTRAST = 0.08
MIN_COMPONENT = 0.05


def open_image(source: str | Path | bytes | BinaryIO, name: str | None = None):
    """A decoded, upright PIL image from a path, bytes or a binary stream."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or (str(source) if isinstance(source, (str, Path)) else "input")
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise NotFoundError(f"{name} does not exist", "check the path")
    elif isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            _check_size(image, name)
            image.load()
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise DataError(f"{name} is not an image", "use a PNG, JPEG, BMP, GIF, TIFF or WebP file") from None
        raise DataError(f"{name} is too large to decode safely", f"use an image of at most {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"{name} is truncated or corrupt ({exc})", "save or copy the image again") from None


def _check_size(image, name: str) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DataError(f"{name} is {width}x{height} pixels, too large to decode safely", f"scale it down to at most {MAX_PIXELS:,} pixels")
    if width < 1 or height < 1:
        raise DataError(f"{name} has no pixels", "use another image")


def to_gray(image) -> np.ndarray:
    """Luminance in [0, 1] as float32 (H, W), from any mode; transparency is laid on a contrasting background."""
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535
    if image.mode in ("I", "F"):
        gray = np.asarray(image, dtype=np.float32)
        top = gray.max(initial=0)
        return gray / (1 if top <= 1 else 255 if top <= 255 else 65535)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        gray, alpha = (np.asarray(band, dtype=np.float32) / 255 for band in image.convert("LA").split())
        if alpha.min() < 1:
            ink = float((gray * alpha).sum() / max(alpha.sum(), 1e-6))
            background = 1.0 if ink < 0.5 else 0.0
            return alpha * gray + (1 - alpha) * background
        return gray
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def prepare(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """An MNIST-style uint8 (28, 28) digit from a luminance image in [0, 1] of any size."""
    from scipy import ndimage

    x = _shrink(np.asarray(gray, dtype=np.float32), WORK_SIDE)
    ink = _suppress_background(_ink_up(x, ndimage))
    if ink is None:
        raise DataError(f"{name} has no ink (the image is blank)", "photograph a digit written in dark ink on light paper, or light on dark")
    ink = _keep_main_strokes(ink, ndimage)
    rows, cols = np.nonzero(ink)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    ink = _thicken(ink, BOX / max(ink.shape), ndimage)
    return _centre(_fit(ink, BOX), ndimage)


def _shrink(x: np.ndarray, side: int) -> np.ndarray:
    """Area-average down so the longer side is at most ``side``."""
    scale = side / max(x.shape)
    return _resize(x, scale) if scale < 1 else x


def _resize(x: np.ndarray, scale: float) -> np.ndarray:
    height, width = x.shape
    return _resize_to(x, (max(1, round(height * scale)), max(1, round(width * scale))))


def _resize_to(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average when shrinking, bilinear when growing."""
    from PIL import Image

    resample = Image.Resampling.BOX if shape[0] * shape[1] < x.size else Image.Resampling.BILINEAR
    if x.shape == tuple(shape):
        return x
    image = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(image.resize((shape[1], shape[0]), resample), dtype=np.float32)


def _ink_up(x: np.ndarray, ndimage) -> np.ndarray:
    """Bright ink on a flat dark page, whichever way round the picture was.

    Against the page's local median the ink is the long tail: below it for dark ink, above for light.
    """
    small = _shrink(x, BACKGROUND_SIDE // 2)
    page = _resize_to(ndimage.median_filter(small, size=max(3, max(small.shape) // 3), mode="nearest"), x.shape)
    darkest, brightest = np.percentile(x - page, [0.1, 99.9])
    if -darkest > brightest:
        x = 1 - x
    return np.clip(x - _background(x, ndimage), 0, None)


def _suppress_background(x: np.ndarray) -> np.ndarray | None:
    """Ink in [0, 1] on exact zero (paper texture and noise removed), or None when nothing stands out of the noise."""
    from scipy import ndimage

    if max(x.shape) >= 64:
        x = ndimage.gaussian_filter(x, sigma=max(x.shape) / 256)
    sample = x[::2, ::2]
    median = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - median)))
    peak = float(np.percentile(x, 99.9))
    if peak - median < max(MIN_CONTRAST, 6 * noise):
        return None
    threshold = max(_otsu(x), median + 3 * noise)
    strong = x[x > threshold]
    top = float(np.percentile(strong, 90)) if strong.size else peak
    return np.clip((x - threshold) / max(top - threshold, 1e-6), 0, 1)


def _background(x: np.ndarray, ndimage) -> np.ndarray:
    """The paper under uneven light: a grey opening wider than any stroke, computed small and smoothed."""
    small = _shrink(x, BACKGROUND_SIDE)
    window = max(3, max(small.shape) // 3)
    small = ndimage.uniform_filter(ndimage.grey_opening(small, size=window), size=window, mode="nearest")
    return _resize_to(small, x.shape)


def _otsu(x: np.ndarray) -> float:
    counts, edges = np.histogram(x, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mass = np.cumsum(counts * centres)
    below, above = weight[:-1], weight[-1] - weight[:-1]
    valid = (below > 0) & (above > 0)
    mean_below = np.divide(mass[:-1], below, out=np.zeros_like(mass[:-1]), where=valid)
    mean_above = np.divide(mass[-1] - mass[:-1], above, out=np.zeros_like(mass[:-1]), where=valid)
    spread = np.where(valid, below * above * (mean_below - mean_above) ** 2, -1)
    return float(edges[1:][np.argmax(spread)])


def _keep_main_strokes(ink: np.ndarray, ndimage) -> np.ndarray:
    """Drop specks: connected pieces with less than a twentieth of the largest piece's ink."""
    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return ink
    mass = ndimage.sum_labels(ink, labels, index=np.arange(1, count + 1))
    keep = np.concatenate([[False], mass >= MIN_COMPONENT * mass.max()])
    return np.where(keep[labels], ink, 0)


def _thicken(ink: np.ndarray, scale: float, ndimage) -> np.ndarray:
    """Widen strokes too thin for MNIST (a fine pen photographed large) to MNIST's width once fitted."""
    mask = ink > 0.5
    edge = np.count_nonzero(mask & ~ndimage.binary_erosion(mask))
    width = 2 * np.count_nonzero(mask) / max(edge, 1) * scale
    grow = round((STROKE_WIDTH - width) / scale / 2)
    if grow < 1:
        return ink
    ink = np.pad(ink, grow)
    return ndimage.grey_dilation(ink, footprint=_disk(grow))


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius**2


def _fit(ink: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio, then stretch to full ink."""
    fitted = np.clip(_resize(ink, box / max(ink.shape)), 0, None)
    return fitted / max(float(fitted.max()), 1e-6)


def _centre(digit: np.ndarray, ndimage) -> np.ndarray:
    """Paste into a 28x28 frame so the centre of mass lands on pixel (14, 14), as in MNIST."""
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    cy, cx = ndimage.center_of_mass(digit)
    h, w = digit.shape
    top = int(np.clip(round(SIDE / 2 - cy), 0, SIDE - h))
    left = int(np.clip(round(SIDE / 2 - cx), 0, SIDE - w))
    canvas[top : top + h, left : left + w] = digit
    return np.round(canvas * 255).astype(np.uint8)


def as_raw(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """An image already in MNIST form, as uint8 (28, 28)."""
    if gray.shape != (SIDE, SIDE):
        h, w = gray.shape
        raise DataError(f"{name} is {w}x{h}, but --raw needs 28x28 images in MNIST form", "drop --raw to prepare it")
    return np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8)


def load_prepared(source: str | Path | bytes | BinaryIO, raw: bool = False, name: str | None = None) -> np.ndarray:
    """The 28x28 uint8 image the model sees for a picture file, its bytes or a stream."""
    name = name or (str(source) if isinstance(source, (str, Path)) else "input")
    gray = to_gray(open_image(source, name))
    return as_raw(gray, name) if raw else prepare(gray, name)


def read_stdin(stream: BinaryIO) -> bytes:
    """All of standard input, refusing more than :data:`MAX_BYTES`."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise DataError(f"standard input holds more than {MAX_BYTES // 2**20} MB", "pass a smaller image")
    return data
