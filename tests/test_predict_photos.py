"""predict's preparation of photos and scans: what is paper, what is ink, wherever the digit lies."""

import numpy as np
import pytest
from PIL import Image

from mnistctl.data import imageprep
from test_predict import png, scanned_crop, sheet_on_a_desk


def likeness(prepared: np.ndarray, digit: np.ndarray) -> float:
    """The correlation of a prepared image with the MNIST digit it was made from."""
    return float(np.corrcoef(prepared.ravel().astype(float), digit.ravel().astype(float))[0, 1])


@pytest.mark.parametrize("angle", [20, 35, -30])
def test_a_sheet_turned_far_on_a_desk_is_read_without_the_desk(angle, mnist):
    digits = mnist.test_images[:5].numpy()
    prepared = [imageprep.load_prepared(sheet_on_a_desk(d, (800, 600), angle)) for d in digits]
    turned = [np.asarray(Image.fromarray(d).rotate(angle, Image.Resampling.BILINEAR)) for d in digits]  # the digit turns with its sheet
    found = [likeness(p, t) for p, t in zip(prepared, turned)]
    assert np.mean(found) > 0.6, found  # the sheet's outline, read as ink, was under 0.4


def test_a_sliver_of_paper_beside_the_stroke_of_a_tall_tight_crop_is_not_a_sheet(mnist):
    ones = mnist.test_images[[302, 735]].numpy()  # ones leaning across a narrow crop
    found = [likeness(imageprep.load_prepared(scanned_crop(d)), d) for d in ones]
    assert min(found) > 0.85, found  # cut to the sliver's box, the top of the stroke was lost


def small_on_a_page(digit: np.ndarray, top: int, left: int, size: int = 40) -> bytes:
    """An MNIST digit ``size`` px high, dark on a white 600x800 page, at (``top``, ``left``)."""
    page = np.full((800, 600), 255, np.uint8)
    page[top : top + size, left : left + size] = 255 - np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC))
    return png(page)


@pytest.mark.parametrize("left", [50, 300, 400])
def test_a_small_digit_on_a_large_page_is_read_wherever_it_lies(left, mnist):
    digits = mnist.test_images[:5].numpy()
    found = [likeness(imageprep.load_prepared(small_on_a_page(d, 100, left)), d) for d in digits]  # none is called blank
    assert np.mean(found) > 0.7, found  # read at working size, its thin strokes faded to a few pixels or none


def scanned_with_a_band(digit: np.ndarray, width: int, sides: str) -> bytes:
    """An MNIST digit scanned 200 px high, dark on white with 40 px of paper round it, and a black band ``width`` px
    thick along each of ``sides`` (t, b, l, r): a scanner lid's shadow, a photocopy's border."""
    page = np.pad(255 - np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BICUBIC)), 40, constant_values=255)
    for side in sides:
        band = {"t": page[:width], "b": page[-width:], "l": page[:, :width], "r": page[:, -width:]}[side]
        band[...] = 0
    return png(page)


@pytest.mark.parametrize("width", [3, 8, 12])
@pytest.mark.parametrize("sides", ["tblr", "t", "b", "l", "r"])
def test_a_thin_dark_band_along_the_border_of_a_scan_is_not_ink(width, sides, mnist):
    digits = mnist.test_images[:5].numpy()
    found = [likeness(imageprep.load_prepared(scanned_with_a_band(d, width, sides)), d) for d in digits]
    assert min(found) > 0.8, found  # the band was read as the digit, with the digit beside it as a speck


def test_a_stroke_cropped_tight_along_a_side_is_not_a_band(mnist):
    ones = mnist.test_images[[265, 2324]].numpy()  # thick ones filling their crops: their sides are ink from end to end
    found = [likeness(imageprep.load_prepared(scanned_crop(d)), d) for d in ones]
    assert np.mean(found) > 0.96, found  # their rounded ends, taken for bands between them, were cut off: 0.94


@pytest.mark.parametrize("ratio", [1, 5, 10, 20, 30, 40, 50, 60, 70, 80])
def test_a_digit_at_the_end_of_a_strip_up_to_80_times_as_long_as_tall_is_read(ratio, mnist):
    digits = mnist.test_images[[0, 17, 40, 60]].numpy()  # sevens reaching the strip's edge, and a "1"
    strips = [np.pad(255 - d, ((0, 0), (0, imageprep.SIDE * (ratio - 1))), constant_values=255) for d in digits]
    found = [likeness(imageprep.load_prepared(png(s)), d) for s, d in zip(strips, digits)]
    assert min(found) > 0.6, found  # a margin twice the strip's height: its ink too rare to tell dark from light, and blurred
