"""predict's preparation of photos and scans: what is paper, what is ink, wherever the digit lies."""

import numpy as np
import pytest
from PIL import Image

from mnistctl.data import imageprep
from test_predict import scanned_crop, sheet_on_a_desk


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
