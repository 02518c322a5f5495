"""Image files read safely, to grey: the bounds, then the fastest decoder that reads the file right.

Decoding is bounded: only the formats in :data:`FORMATS`, at most :data:`MAX_BYTES` bytes and
:data:`MAX_PIXELS` pixels, checked from the header before any pixel is decoded. Plain PNGs and
JPEGs go straight to grey through libspng and OpenCV (:mod:`mnistctl.data.fastdecode`), JPEGs at a
reduced size; every other picture through Pillow (JPEG draft mode, EXIF orientation, transparency). A picture
of several frames or pages (an animated GIF, PNG or WebP, a multi-page TIFF) is read from its first, with a
warning (kept for the caller inside :func:`held_warnings`).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistctl.data import fastdecode
from mnistctl.errors import DataError, NotFoundError
from mnistctl.fsutil import NotRegular, open_regular, regular

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
FORMAT_NAMES = "PNG, JPEG, BMP, GIF, TIFF, WEBP, PBM, PGM or PPM"  # Pillow's PPM reads PBM and PGM too
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}  # the names those files go by
MAX_PIXELS = 40_000_000
MAX_BYTES = 100 * 2**20
MULTI_FRAME = ("GIF", "PNG", "TIFF", "WEBP")  # formats whose further frames are pictures of their own, not a JPEG's previews
_held: ContextVar[list[str] | None] = ContextVar("held", default=None)
_said: set[str] = set()  # a picture read again in this process is not warned of again


@contextmanager
def held_warnings() -> Iterator[list[str]]:
    """The warnings of the pictures read inside, kept in the list yielded instead of printed: for worker processes,
    whose warnings travel as values."""
    held = _held.set([])
    try:
        yield _held.get()
    finally:
        _held.reset(held)


def _warn(message: str) -> None:
    held = _held.get()
    if held is not None:
        held.append(message)
    elif message not in _said:
        from mnistctl.console import warn

        _said.add(message)
        warn(message)


def read_gray(source: str | Path | bytes | BinaryIO, name: str | None = None, side: int | None = None) -> np.ndarray:
    """The luminance of a picture: uint8 for plain PNGs and JPEGs (:mod:`mnistctl.data.fastdecode`), else float32 in [0, 1] from Pillow;
    with ``side``, decoded no larger than needed for that longer side."""
    name = name or (str(source) if isinstance(source, (str, Path)) else "input")
    data = _read(source, name)
    found = fastdecode.header(data)
    if found is not None:
        fmt, width, height = found
        _check_size(width, height, name)
        gray = fastdecode.decode(data, fmt, fastdecode.jpeg_scale(fmt, reduction(width, height, side)) if side else 1)
        if gray is not None:
            return _box_reduce(gray, side) if side else gray
    return to_gray(open_image(data, name, side), name)


def open_image(source: str | Path | bytes | BinaryIO, name: str | None = None, side: int | None = None):
    """A decoded, upright PIL image from a path, bytes or a binary stream; with ``side``, decoded no
    larger than needed for that longer side (JPEG draft mode, then a box reduction)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or (str(source) if isinstance(source, (str, Path)) else "input")
    if isinstance(source, (str, Path)):
        _check_bytes(_file_size(source, name), name)
    elif isinstance(source, bytes):
        _check_bytes(len(source), name)
        source = io.BytesIO(source)
    try:
        image = _open_unguarded(source)
        _check_size(*image.size, name)
        if frames := _frames(image):
            _warn(f"{name} has {frames}; read the first")
        if side:
            _draft(image, side)
        image.load()
        if "exif" in image.info or image.format == "TIFF":
            image = ImageOps.exif_transpose(image)
        return _reduce(image, side) if side else image
    except UnidentifiedImageError:
        if kind := _signature(source):
            raise DataError(f"{name} is truncated or corrupt (it starts as a {kind} file, which cannot be read)", "save or copy the image again") from None
        raise DataError(f"{name} is not an image in a supported format", f"use a {FORMAT_NAMES} file") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name} is truncated or corrupt ({exc})", "save or copy the image again") from None


def _frames(image) -> str | None:
    """How many frames or pages a picture holds, in words, when more than one (counted from their headers, none decoded),
    else None; the picture is left at its first frame."""
    if image.format not in MULTI_FRAME:
        return None
    try:
        count = image.n_frames
    except Exception:  # a frame after the first is damaged: the first is still read
        count = None
    seen = image.tell()
    if seen:
        image.seek(0)
    frame = "page" if image.format == "TIFF" else "frame"
    if count is None:
        return f"more than one {frame}" if seen else None
    return f"{count} {frame}s" if count > 1 else None


SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"BM": "BMP"}


def _signature(source: str | Path | BinaryIO) -> str | None:
    """The format a file's first bytes announce, of the common ones: a file that starts as one but does not decode is damaged."""
    try:
        if isinstance(source, (str, Path)):
            with open_regular(source) as file:
                head = file.read(8)
        else:
            source.seek(0)
            head = source.read(8)
    except (OSError, ValueError):
        return None
    return next((kind for magic, kind in SIGNATURES.items() if head.startswith(magic)), None)


def _read(source: str | Path | bytes | BinaryIO, name: str) -> bytes:
    """All the bytes of a file, bytes or a stream, refusing more than :data:`MAX_BYTES`."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, (str, Path)):
        try:
            with open_regular(source) as file:
                size = os.fstat(file.fileno()).st_size
                _check_bytes(size, name)
                data = file.read(size + 1)
        except OSError as exc:
            raise _unreadable(name, exc) from None
    else:
        data = source.read(MAX_BYTES + 1)
    _check_bytes(len(data), name)
    if not data:
        raise DataError(f"{name} is empty", "save or copy the image again" if name != "stdin" else "pipe an image: mnistctl predict - < photo.jpg")
    return data


def _open_unguarded(source):
    """Image.open of the listed formats only; Pillow's own pixel guard is off so that :func:`_check_size` decides."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        return Image.open(source, formats=FORMATS)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _file_size(path: str | Path, name: str) -> int:
    try:
        return regular(path).st_size
    except OSError as exc:
        raise _unreadable(name, exc) from None


def _unreadable(name: str, exc: OSError) -> NotFoundError:
    if isinstance(exc, FileNotFoundError) and any(c in Path(name).name for c in "*?["):
        return NotFoundError(f"{name} does not exist", "no file matches this pattern: the shell passes on a pattern that matches nothing as it is")
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"{name} does not exist", "check the path")
    if isinstance(exc, NotRegular):
        return NotFoundError(f"{name} is not a regular file", "pass an image file")
    return NotFoundError(f"{name} cannot be read ({exc.strerror or exc})", "check the path and its permissions")


def _check_bytes(size: int, name: str) -> None:
    if size > MAX_BYTES:
        raise DataError(f"{name} holds more than {MAX_BYTES // 2**20} MB", "pass a smaller image")


def _check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise DataError(f"{name} is {width}x{height} pixels, too large to decode safely", f"scale it down to at most {MAX_PIXELS:,} pixels")
    if width < 1 or height < 1:
        raise DataError(f"{name} has no pixels", "use another image")


def reduction(width: int, height: int, side: int, fit: bool = False) -> int:
    """How many pixels a side to average into one for work at ``side``: enough to bring the longer side
    down to ``side`` (with ``fit``, to at most ``side``), but not so many that the shorter side falls below
    a quarter of it (a wide strip keeps the height of its digit), as long as at most about (4 side)²
    pixels are left."""
    def share(n: int, d: int) -> int:
        return -(-n // d) if fit else n // d

    by_longer, by_shorter = share(max(width, height), side), min(width, height) // (side // 4)
    return max(1, min(by_longer, by_shorter), share(math.isqrt(width * height), 4 * side))


def _draft(image, side: int) -> None:
    """Let libjpeg decode grey at 1/2, 1/4 or 1/8 scale when the picture is larger than needed."""
    width, height = image.size
    factor = reduction(width, height, side)
    if image.format == "JPEG" and factor >= 2:
        image.draft("L", (max(1, width // factor), max(1, height // factor)))


def _reduce(image, side: int):
    factor = reduction(*image.size, side)
    if factor >= 2 and image.mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return image.reduce(factor)
    return image


def _box_reduce(gray: np.ndarray, side: int) -> np.ndarray:
    """Average whole blocks of pixels, like :func:`_reduce` does for a PIL image."""
    factor = reduction(gray.shape[1], gray.shape[0], side)
    if factor < 2:
        return gray
    cv2 = fastdecode.cv2_one_thread()
    height, width = gray.shape[0] // factor, gray.shape[1] // factor
    if height < 1 or width < 1:  # a line of pixels: average what there is
        return cv2.resize(gray, (max(1, width), max(1, height)), interpolation=cv2.INTER_AREA)
    return cv2.resize(gray[: height * factor, : width * factor], (width, height), interpolation=cv2.INTER_AREA)


def to_gray(image, name: str = "input") -> np.ndarray:
    """Luminance in [0, 1] as float32 (H, W), from any mode; transparency is laid on a contrasting background."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return _in_bits_used(np.asarray(image, dtype=np.float32), name)
    if image.mode == "LAB":
        return np.asarray(image.getchannel("L"), dtype=np.float32) / 255
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        gray, alpha = (np.asarray(band, dtype=np.float32) / 255 for band in image.convert("LA").split())
        if alpha.min() < 1:
            ink = float((gray * alpha).sum() / max(alpha.sum(), 1e-6))
            background = 1.0 if ink < 0.5 else 0.0
            return alpha * gray + (1 - alpha) * background
        return gray
    return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32) / 255


def _in_bits_used(values: np.ndarray, name: str) -> np.ndarray:
    """16-bit, 32-bit or float pixels in [0, 1]: floats up to 1 as they are, else over the bits the
    values use, so that 12-bit data in a 16-bit file spans 0..4095, not a sixteenth of the range."""
    top = float(finite(values, name).max(initial=0))
    if top > 1:
        top = 2.0 ** max(8, int(np.ceil(np.log2(top + 1)))) - 1
    return np.clip(values / max(top, 1e-6), 0, 1)


def finite(values: np.ndarray, name: str) -> np.ndarray:
    """``values``, refused when any pixel is NaN or infinite."""
    if not np.isfinite(values).all():
        raise DataError(f"{name} has pixels that are not numbers (NaN or infinite)", "give it finite values, or save it as an 8-bit PNG")
    return values


def read_stdin(stream: BinaryIO) -> bytes:
    """All of standard input, refusing more than :data:`MAX_BYTES`."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise DataError(f"standard input holds more than {MAX_BYTES // 2**20} MB", "pass a smaller image")
    return data
