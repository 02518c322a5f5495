"""Plain PNGs and JPEGs decoded straight to grey, at a reduced size where the format allows: PNGs by
libspng (pyspng, where it has a wheel; a sixth faster) else OpenCV's libpng, both turned grey by
OpenCV's ``cvtColor``, which rounds as Pillow does; JPEGs by OpenCV's libjpeg. Where python-isal
is installed, ISA-L inflates a PNG's image data at twice zlib's speed, and libspng only unfilters
it (:func:`_inflated_png`).

Only files that these decoders read as Pillow would (to within a grey level) qualify: 8-bit PNGs
(grey, RGB or palette) without transparency, EXIF or animation (whose frames Pillow counts), and
8-bit grey or colour JPEGs, each complete (ending with its end marker). :func:`header` reads their
size from the bytes without decoding anything, so that the caller can check the bounds first;
anything else is None and left to Pillow.
libpng and libjpeg print their complaints about damaged files on the C-level standard error, which
is muted while they decode: the caller reports the damage in one line of its own.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
PNG_FLAT_COLOURS = (0, 2, 3)
PNG_REFUSED = (b"tRNS", b"eXIf", b"acTL")  # transparency, EXIF orientation, animation: left to Pillow
PNG_CHANNELS = {0: 1, 2: 3, 3: 1}
ZLIB_STORED = b"\x78\x01"  # a zlib header for uncompressed blocks
STORED_BLOCK = 65535
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_SCALES = (8, 4, 2)
_muted = False


def header(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG or JPEG that :func:`decode` reads like Pillow, else None."""
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data.startswith(JPEG_START):
        return _jpeg(data)
    return None


@functools.cache
def cv2_one_thread():
    """OpenCV on one thread: images are prepared one per process, and small ones gain nothing from threads."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


@functools.cache
def spng():
    """pyspng, or None where it is not installed."""
    try:
        import pyspng
    except ImportError:
        return None
    return pyspng


@functools.cache
def isal_zlib():
    """ISA-L's zlib (python-isal), or None where it is not installed."""
    try:
        from isal import isal_zlib
    except ImportError:
        return None
    return isal_zlib


def decode(data: bytes, fmt: str, scale: int = 1) -> np.ndarray | None:
    """Grey uint8 pixels (JPEG: upright by its EXIF orientation, at 1/``scale`` size), or None if the decoder cannot read them."""
    cv2 = cv2_one_thread()
    if fmt == "PNG" and spng() is not None:
        try:
            pixels = spng().load(_inflated_png(data) or data)
        except RuntimeError:
            return None
        return pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    if fmt == "PNG":  # libpng's own grey truncates: read the colours, and round as above
        pixels = _imdecode(data, cv2.IMREAD_UNCHANGED)
        return pixels if pixels is None or pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    flag = cv2.IMREAD_GRAYSCALE
    if scale in JPEG_SCALES:
        flag = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[scale]
    return _imdecode(data, flag)


def _imdecode(data: bytes, flag: int) -> np.ndarray | None:
    cv2 = cv2_one_thread()
    with _stderr_muted():
        try:
            return cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        except cv2.error:
            return None


def mute_stderr() -> None:
    """Send this process's standard error to /dev/null for good: for worker processes, whose errors travel as values."""
    global _muted
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    _muted = True


@contextmanager
def _stderr_muted() -> Iterator[None]:
    if _muted:
        yield
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def jpeg_scale(fmt: str, factor: int) -> int:
    """The largest reduction libjpeg decodes for free, at most ``factor``."""
    if fmt != "JPEG":
        return 1
    return next((scale for scale in JPEG_SCALES if scale <= factor), 1)


def _png(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 33 or data[12:16] != b"IHDR" or not data.endswith(PNG_END):
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth != 8 or colour not in PNG_FLAT_COLOURS:
        return None
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind in PNG_REFUSED:
            return None
        if kind == b"IEND":
            return ("PNG", width, height) if position + 12 == len(data) else None
        position += 12 + length
    return None


def _inflated_png(data: bytes) -> bytes | None:
    """The same PNG with its image data inflated by ISA-L and stored uncompressed; None where python-isal
    is missing, the image is small (little to gain), interlaced, or its image data is damaged (libspng
    then reads the original)."""
    zlib = isal_zlib()
    width, height, _, colour, _, _, interlaced = struct.unpack(">IIBBBBB", data[16:29])
    size = height * (1 + width * PNG_CHANNELS[colour])
    if zlib is None or interlaced or size < STORED_BLOCK:
        return None
    first, compressed = _image_data(data, zlib)
    if first is None:
        return None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, size + 1)
    except zlib.error:
        return None
    if not inflater.eof or len(raw) != size:
        return None
    return b"".join([data[:first], *_stored_idat(raw, zlib), PNG_END])


def _image_data(data: bytes, zlib) -> tuple[int | None, bytes]:
    """Where a PNG's IDAT chunks start, and their contents joined; (None, b"") if one fails its CRC."""
    position, first, bodies, whole = 8, None, [], memoryview(data)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"IDAT":
            body = whole[position + 8 : position + 8 + length]
            if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack(">I", data[position + 8 + length : position + 12 + length])[0]:
                return None, b""
            first = position if first is None else first
            bodies.append(body)
        position += 12 + length
    return first, b"".join(bodies)


def _stored_idat(raw: bytes, zlib) -> list:
    """An IDAT chunk holding ``raw`` as a zlib stream of uncompressed blocks, in parts to join."""
    view, stream = memoryview(raw), [ZLIB_STORED]
    for start in range(0, len(raw), STORED_BLOCK):
        block = view[start : start + STORED_BLOCK]
        stream += [struct.pack("<BHH", start + STORED_BLOCK >= len(raw), len(block), len(block) ^ 0xFFFF), block]
    stream.append(struct.pack(">I", zlib.adler32(raw)))
    crc = zlib.crc32(b"IDAT")
    for part in stream:
        crc = zlib.crc32(part, crc)
    return [struct.pack(">I4s", sum(len(part) for part in stream), b"IDAT"), *stream, struct.pack(">I", crc)]


def _jpeg(data: bytes) -> tuple[str, int, int] | None:
    if not data.endswith(JPEG_END):
        return None
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in JPEG_FRAMES:
            if position + 10 > len(data):
                return None
            precision, height, width, components = struct.unpack(">BHHB", data[position + 4 : position + 10])
            return ("JPEG", width, height) if precision == 8 and components in (1, 3) and height > 0 and width > 0 else None
        if marker == 0xDA or length < 2:
            return None
        position += 2 + length
    return None
