"""The fast paths of predict's input: OpenCV decoding that matches Pillow's and keeps the bounds,
chunks sized by what images cost, and JSON lines written out directly."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnistctl.cli.predict_output import json_line
from mnistctl.data import fastdecode, imagefile, imageprep
from mnistctl.errors import DataError, NotFoundError
from mnistctl.reading import predict


def page(side: int = 200) -> np.ndarray:
    """A 4 in dark ink on slightly uneven paper, uint8."""
    image = Image.new("L", (side, side), 235)
    ImageDraw.Draw(image).line([(0.6 * side, 0.15 * side), (0.2 * side, 0.65 * side), (0.8 * side, 0.65 * side)], fill=30, width=side // 14)
    ImageDraw.Draw(image).line([(0.62 * side, 0.35 * side), (0.62 * side, 0.9 * side)], fill=30, width=side // 14)
    shade = np.linspace(0, 20, side, dtype=np.float32)[None, :]
    return (np.asarray(image, np.float32) - shade).clip(0, 255).astype(np.uint8)


def encode(array: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    (array if isinstance(array, Image.Image) else Image.fromarray(array)).save(buffer, fmt, **options)
    return buffer.getvalue()


def upside_down() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 3
    return exif


def pillow_path(data: bytes) -> np.ndarray:
    gray = imagefile.to_gray(imagefile.open_image(data, side=imageprep.DECODE_SIDE))
    return imageprep.as_raw(gray) if imageprep.is_mnist_form(gray) else imageprep.prepare(gray)


def rotated_jpeg(gray: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter left; viewers turn it right
    return encode(np.asarray(Image.fromarray(gray).rotate(90, expand=True)), "JPEG", quality=92, exif=exif)


PLAIN = {
    "png-L": lambda g: encode(g, "PNG"),
    "png-RGB": lambda g: encode(np.dstack([g] * 3), "PNG"),
    "png-P": lambda g: encode(np.asarray(Image.fromarray(g).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).convert("RGB")), "PNG"),
    "jpeg-L": lambda g: encode(g, "JPEG", quality=92),
    "jpeg-RGB-large": lambda g: encode(np.dstack([np.kron(g, np.ones((4, 4), np.uint8))] * 3), "JPEG", quality=92),
    "jpeg-EXIF": rotated_jpeg,
}


@pytest.mark.parametrize("kind", PLAIN)
def test_opencv_reads_plain_files_like_pillow(kind):
    data = PLAIN[kind](page())
    assert fastdecode.header(data) is not None
    fast, slow = imageprep.load_prepared(data), pillow_path(data)
    assert np.abs(fast.astype(int) - slow.astype(int)).mean() < 3, kind
    assert fast.shape == (28, 28) and fast.dtype == np.uint8


@pytest.mark.parametrize("kind", ["png-L", "png-RGB", "png-P"])
def test_libspng_and_opencv_give_pillows_grey(kind, monkeypatch):
    if fastdecode.spng() is None:
        pytest.skip("pyspng is not installed here")
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    gray = np.asarray(Image.fromarray(colours).convert("L"))
    data = PLAIN[kind](gray) if kind == "png-L" else encode(Image.fromarray(colours).convert(kind[4:]), "PNG")
    fast = fastdecode.decode(data, "PNG")
    pillow = np.asarray(Image.open(io.BytesIO(data)).convert("L")).astype(int)
    assert np.abs(fast - pillow).max() <= 1 and np.mean(fast == pillow) > 0.99
    monkeypatch.setattr(fastdecode, "spng", lambda: None)
    assert np.array_equal(fast, fastdecode.decode(data, "PNG"))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, colour: int, stream: bytes, pieces: int = 1, interlaced: int = 0) -> bytes:
    """An 8-bit PNG whose zlib ``stream`` is split over ``pieces`` IDAT chunks."""
    cuts = np.linspace(0, len(stream), pieces + 1).astype(int)
    idat = b"".join(_chunk(b"IDAT", stream[a:b]) for a, b in zip(cuts, cuts[1:]))
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, interlaced))
    return b"\x89PNG\r\n\x1a\n" + header + idat + _chunk(b"IEND", b"")


def _scanlines(pixels: np.ndarray) -> bytes:
    rows = pixels.reshape(pixels.shape[0], -1)
    return np.hstack([np.zeros((len(rows), 1), np.uint8), rows]).tobytes()


ISAL_CASES = {
    "L": lambda c: encode(Image.fromarray(c).convert("L"), "PNG"),
    "RGB": lambda c: encode(c, "PNG"),
    "P": lambda c: encode(Image.fromarray(c).convert("P"), "PNG"),
    "RGB-stored": lambda c: encode(c, "PNG", compress_level=0),
    "RGB-best": lambda c: encode(c, "PNG", optimize=True),
    "RGB-5-IDAT": lambda c: _png(c.shape[1], c.shape[0], 2, zlib.compress(_scanlines(c)), pieces=5),
}


@pytest.mark.parametrize("kind", ISAL_CASES)
def test_pngs_inflated_by_isal_decode_to_the_same_pixels(kind, monkeypatch):
    if fastdecode.spng() is None or fastdecode.isal_zlib() is None:
        pytest.skip("pyspng or python-isal is not installed here")
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (200, 340, 3), dtype=np.uint8)  # grey: 68 kB of image data, two stored blocks
    colours[:, :60] //= 8  # a smooth part, so that filters other than None are chosen
    data = ISAL_CASES[kind](colours)
    assert fastdecode._inflated_png(data) is not None
    fast = fastdecode.decode(data, "PNG")
    monkeypatch.setattr(fastdecode, "isal_zlib", lambda: None)
    assert np.array_equal(fast, fastdecode.decode(data, "PNG"))


def test_small_damaged_or_overlong_image_data_is_left_to_libspng():
    if fastdecode.isal_zlib() is None:
        pytest.skip("python-isal is not installed here")
    good = _scanlines(np.zeros((300, 300), np.uint8))
    assert fastdecode._inflated_png(_png(300, 300, 0, zlib.compress(good))) is not None
    bad_crc = bytearray(_png(300, 300, 0, zlib.compress(good)))
    bad_crc[bad_crc.find(b"IDAT") + 12] ^= 1
    overlong = _png(300, 300, 0, zlib.compress(good + b"\0" * 10_000_000))  # inflates far past the header's size
    short = _png(300, 300, 0, zlib.compress(good[:-5]))
    cut = _png(300, 300, 0, zlib.compress(good)[:-6])
    interlaced = _png(300, 300, 0, zlib.compress(good), interlaced=1)
    small = _png(28, 28, 0, zlib.compress(_scanlines(np.zeros((28, 28), np.uint8))))
    for data in (bytes(bad_crc), overlong, short, cut, interlaced, small):
        assert fastdecode._inflated_png(data) is None


def test_the_mnist_form_shortcut_gives_the_pixels_unchanged():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 250
    data = encode(digit, "PNG")
    assert fastdecode.header(data) == ("PNG", 28, 28)
    assert np.array_equal(imageprep.load_prepared(data), digit)
    assert imageprep.is_mnist_form(digit) and imageprep.is_mnist_form(digit / np.float32(255))


def _with_transparency(gray):
    rgba = np.dstack([gray] * 3 + [np.full_like(gray, 200)])
    return encode(rgba, "PNG")


LEFT_TO_PILLOW = {
    "alpha": _with_transparency,
    "tRNS": lambda g: encode(g, "PNG", transparency=235),
    "eXIf": lambda g: encode(g, "PNG", exif=upside_down()),
    "16-bit": lambda g: encode(g.astype(np.uint16) * 257, "PNG"),
    "truncated-png": lambda g: encode(g, "PNG")[:-30],
    "truncated-jpeg": lambda g: encode(g, "JPEG")[:-30],
    "CMYK-jpeg": lambda g: encode(Image.fromarray(g).convert("CMYK"), "JPEG"),
    "gif": lambda g: encode(g, "GIF"),
}


@pytest.mark.parametrize("kind", LEFT_TO_PILLOW)
def test_files_opencv_might_read_differently_are_left_to_pillow(kind):
    assert fastdecode.header(LEFT_TO_PILLOW[kind](page(64))) is None


def test_truncated_files_are_still_refused():
    for data in (encode(page(), "PNG")[:-100], encode(page(), "JPEG")[:-100]):
        with pytest.raises(DataError, match="truncated or corrupt"):
            imageprep.load_prepared(data)


def test_damaged_files_leave_standard_error_alone(capfd):
    profiled = encode(page(64), "PNG", icc_profile=b"too short")  # libpng warns about it
    assert fastdecode.header(profiled) is not None
    assert np.array_equal(imageprep.load_prepared(profiled), pillow_path(profiled))
    damaged = bytearray(encode(page(64), "PNG"))
    start = damaged.find(b"IDAT") + 10
    damaged[start : start + 10] = b"x" * 10  # libpng fails on it and says so
    with pytest.raises(DataError, match="truncated or corrupt"):
        imageprep.load_prepared(bytes(damaged))
    assert capfd.readouterr().err == ""


def _jpeg_header(width: int, height: int) -> bytes:
    frame = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xc0" + frame + b"\xff\xda" + b"\x00" * 64 + b"\xff\xd9"


def _png_header(width: int, height: int) -> bytes:
    return _png(width, height, 0, zlib.compress(b"\0" * 1000))


@pytest.mark.parametrize("bomb", [_png_header(60_000, 60_000), _jpeg_header(60_000, 60_000)], ids=["png", "jpeg"])
def test_bombs_are_refused_from_the_header_before_any_decoding(bomb, monkeypatch):
    assert fastdecode.header(bomb)[1:] == (60_000, 60_000)

    def never(*args, **kwargs):
        raise AssertionError("decoded before the size was checked")

    monkeypatch.setattr(fastdecode, "decode", never)
    monkeypatch.setattr(imagefile, "open_image", never)
    with pytest.raises(DataError, match="60000x60000 pixels, too large to decode safely"):
        imageprep.load_prepared(bomb)


def test_a_folder_or_missing_file_is_not_found(tmp_path):
    for path in (tmp_path, tmp_path / "none.png"):
        with pytest.raises(NotFoundError):
            imagefile.read_gray(path)


def test_jpegs_are_decoded_at_the_size_the_work_needs():
    assert imagefile.reduction(828, 828, 256) == 3 and imagefile.reduction(3000, 2000, 256) == 11
    assert fastdecode.jpeg_scale("JPEG", 3) == 2 and fastdecode.jpeg_scale("JPEG", 11) == 8
    assert fastdecode.jpeg_scale("JPEG", 1) == 1 and fastdecode.jpeg_scale("PNG", 11) == 1
    data = encode(np.dstack([np.kron(page(), np.ones((5, 5), np.uint8))] * 3), "JPEG", quality=90)  # 1000x1000
    assert imagefile.read_gray(data, side=imageprep.DECODE_SIDE).shape == (500, 500)  # libjpeg decoded it at half size


def test_chunks_hold_a_few_images_until_their_cost_is_known_then_about_the_same_work():
    sizer = predict._Sizer()
    assert sizer.size() == predict.CHUNK
    sizer.learn(predict.Chunk(["a"] * 10, np.zeros((10, 28, 28), np.uint8), {}, seconds=0.05))  # photos: 5 ms each
    assert sizer.size() == round(predict.CHUNK_SECONDS / 0.005)
    sizer.learn(predict.Chunk(["a"] * 10_000, np.zeros((1, 28, 28), np.uint8), {}, seconds=0.01))  # tiny images
    assert sizer.size() == predict.MAX_CHUNK


def test_json_lines_are_exactly_what_json_dumps_writes():
    results = [
        predict.Prediction('odd "name" \u00e9\\.png', 7, 0.9123456789, [(7, 0.9123456789), (1, 0.05), (2, 1e-09)]),
        predict.Prediction("plain.png", 0, 1.0, [(0, 1.0)]),
        predict.Failure("bad.png", DataError("bad.png is blank", "draw a digit")),
    ]
    for result in results:
        assert json_line(result) == json.dumps(result.as_dict())
        assert json.loads(json_line(result)) == result.as_dict()


def test_a_line_of_pixels_fails_alone_and_the_other_images_are_read():
    line, digit = np.full((1, 4000), 200, np.uint8), encode(page(), "PNG")
    chunk = predict._prepare_chunk([("line.png", encode(line, "PNG")), ("tall.png", encode(line.T, "PNG")), ("page.png", digit)], raw=False)
    assert [type(e) for e in chunk.errors.values()] == [DataError, DataError] and "no ink" in chunk.errors[0].message
    assert np.array_equal(chunk.images, [imageprep.load_prepared(digit)])


def test_an_unexpected_failure_on_one_image_is_that_images_error(monkeypatch):
    load_prepared = imageprep.load_prepared

    def odd(source, raw=False, name=None):
        if name == "odd.png":
            raise ValueError("a decoder bug\nwith a second line")
        return load_prepared(source, raw, name)

    monkeypatch.setattr(imageprep, "load_prepared", odd)
    good = encode(page(), "PNG")
    chunk = predict._prepare_chunk([("odd.png", good), ("good.png", good)], raw=False)
    assert str(chunk.errors[0]).startswith("odd.png could not be read (ValueError: a decoder bug)") and "\n" not in str(chunk.errors[0])
    assert len(chunk.images) == 1
    monkeypatch.setenv("MNISTCTL_DEBUG", "1")
    with pytest.raises(ValueError, match="a decoder bug"):
        predict._prepare_chunk([("odd.png", good)], raw=False)


def test_lab_tiffs_are_read_by_their_lightness():
    lab = encode(Image.fromarray(np.dstack([page()] * 3)).convert("LAB"), "TIFF")
    assert Image.open(io.BytesIO(lab)).mode == "LAB"
    assert np.abs(imageprep.load_prepared(lab).astype(int) - imageprep.load_prepared(encode(page(), "PNG"))).max() <= 64


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_images_with_pixels_that_are_not_numbers_are_refused_in_one_line(bad, recwarn):
    pixels = page().astype(np.float32) / 255
    pixels[0, 0] = bad
    with pytest.raises(DataError, match="not numbers"):
        imageprep.load_prepared(encode(Image.fromarray(pixels, "F"), "TIFF"))
    assert not recwarn.list


@pytest.mark.parametrize("shape", [(60, 40), (600, 400)])
def test_arrays_with_pixels_that_are_not_numbers_are_refused_by_prepare(shape, recwarn):
    pixels = np.ones(shape, np.float32)
    pixels[shape[0] // 4 : -shape[0] // 4, shape[1] // 2 - 3 : shape[1] // 2 + 3] = 0
    pixels[shape[0] // 2, shape[1] // 2] = np.nan
    with pytest.raises(DataError, match="drawing has pixels that are not numbers"):
        imageprep.prepare(pixels, "drawing")
    assert not recwarn.list


def test_16_bit_images_are_read_over_the_bits_they_use():
    digit = np.zeros((28, 28), np.uint16)
    digit[4:24, 12:17] = 4080  # 12-bit data, white on black
    big = np.kron(digit, np.ones((3, 3), np.uint16))
    assert imageprep.load_prepared(encode(digit, "PNG")).max() >= 250  # in MNIST form once scaled to 12 bits
    assert imageprep.load_prepared(encode(big, "TIFF")).max() == 255  # prepared: not blank
    assert np.allclose(imagefile.to_gray(Image.fromarray(big * 16)), imagefile.to_gray(Image.fromarray(big)), atol=0.01)


def test_a_wide_strip_keeps_enough_height_and_the_bounds_still_hold():
    assert imagefile.reduction(3000, 140, 256) == 2 and imagefile.reduction(140, 3000, 256) == 2  # 70 px high, not 12
    assert imagefile.reduction(400_000, 100, 256) == 6  # never more than about 1024 x 1024 pixels
    strip = np.zeros((140, 3000), np.float32)
    assert min(imageprep._shrink(strip, imageprep.WORK_SIDE, imagefile.reduction(3000, 140, imageprep.WORK_SIDE, fit=True)).shape) >= imageprep.WORK_SIDE // 4
