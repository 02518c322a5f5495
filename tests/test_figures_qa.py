"""Figures read right: exact tick labels, one type face, "an 8", visible points and reference labels, runs left out named."""

import re

import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text


def drawn(figure):
    """The figure laid out and rendered, and its renderer."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def confusion(top_error: float) -> np.ndarray:
    """A 10-class confusion matrix of 1,000 images a class whose largest off-diagonal share is ``top_error`` percent."""
    matrix = np.zeros((10, 10), dtype=int)
    rng = np.random.default_rng(0)
    for t in range(10):
        for p in rng.choice([c for c in range(10) if c != t], 3, replace=False):
            matrix[t, p] = rng.integers(1, max(2, int(10 * top_error) // 4))
    matrix[4, 9] = int(10 * top_error)
    return matrix + np.diag(1000 - matrix.sum(axis=1))  # each row sums to 1,000


@pytest.mark.parametrize("top_error", [2.2, 0.9, 7.3, 13.1, 41.0])
def test_the_confusion_colour_bar_labels_say_exactly_where_their_ticks_are(top_error):
    from mnistctl.reading.figures.predictions import confusion_figure

    figure = confusion_figure("run", "test split", confusion(top_error))
    drawn(figure)
    (bar,) = [ax for ax in figure.axes if ax.get_ylabel().startswith("% of the true class")]
    low, high = sorted(bar.get_ylim())
    locs = [loc for loc in bar.yaxis.get_majorticklocs() if low - 1e-9 <= loc <= high + 1e-9]
    labels = bar.yaxis.get_major_formatter().format_ticks(locs)
    assert len(locs) >= 2
    for loc, label in zip(locs, labels):
        assert label.endswith("%") and float(label[:-1]) == pytest.approx(loc, abs=1e-9), (loc, label)


def test_the_confusion_percentages_on_and_off_the_diagonal_are_in_one_type_face():
    from mnistctl.reading.figures.predictions import confusion_figure

    figure = confusion_figure("run", "test split", confusion(2.2))
    drawn(figure)
    share = figure.axes[1]
    faces = {t.get_text(): font_manager.findfont(t.get_fontproperties()) for t in share.texts}
    diagonal = {f"{v / 10:.1f}" for v in np.diag(confusion(2.2))}
    assert diagonal <= set(faces) and len(set(faces.values())) == 1, faces
    tick_face = font_manager.findfont(share.get_xticklabels()[0].get_fontproperties())
    assert set(faces.values()) == {tick_face}


@pytest.mark.parametrize("digit", range(10))
def test_an_article_before_a_digit_is_an_only_for_eight(digit):
    from mnistctl.reading.figures.style import with_articles

    assert with_articles(f"#12: a {digit} read as 3") == f"#12: {'an' if digit == 8 else 'a'} {digit} read as 3"
    assert with_articles(f"A {digit} or data {digit}") == f"{'An' if digit == 8 else 'A'} {digit} or data {digit}"


def test_attribution_captions_say_an_8():
    from mnistctl.reading.figures.attributions import attributions_figure

    image = np.zeros((28, 28), dtype=np.uint8)
    image[8:20, 10:18] = 255
    attribution = np.linspace(-1, 1, 28 * 28).reshape(28, 28)
    cards = [(image, f"#{k}: a {true} read as {read} (99%)", [(f"{read} (predicted)", attribution)]) for k, (true, read) in enumerate([(8, 3), (7, 8), (1, 2)])]
    figure = attributions_figure("Why a 8 is read as it is", "how", cards)
    texts = [t.get_text() for t in figure.findobj(Text) if t.get_text()]
    assert not [t for t in texts if re.search(r"\ba 8", t)], texts
    for k, (true, read) in enumerate([(8, 3), (7, 8), (1, 2)]):
        assert f"#{k}: {'an' if true == 8 else 'a'} {true} read as {read} (99%)" in texts
