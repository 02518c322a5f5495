"""Figures read right: exact tick labels, one type face, "an 8", visible points and reference labels, runs left out named."""

import re

import numpy as np
import pytest
from matplotlib import colors as mcolors
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from mnistctl.reading.figures.style import TEST, VAL


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


def epochs_of(n: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.66 + 0.1 * e, "val_loss": 0.36 / e, "val_acc": 0.879 + 0.01 * e,
             "lr": 0.05, "best": True} for e in range(1, n + 1)]


def visible(line) -> bool:
    """A line of at least two points, or points with markers: something a reader sees."""
    points = np.asarray(line.get_xydata(), dtype=float)
    return len(points[np.isfinite(points).all(axis=1)]) >= 2 or line.get_marker() not in (None, "None", "", " ")


@pytest.mark.parametrize("n_steps", [1, 2])
def test_the_curves_list_only_what_they_draw(n_steps):
    from mnistctl.reading.figures.training import curves_figure

    steps = [{"step": 40 * (k + 1), "loss": 0.9 - 0.1 * k, "lr": 0.05} for k in range(n_steps)]
    figure = curves_figure("run", epochs_of(n_steps), steps, 40, None)
    drawn(figure)
    for ax in figure.axes[:3]:
        for line in ax.lines:
            assert visible(line), (ax.get_title(), line.get_label())
        legend = ax.get_legend()
        if legend:
            labelled = {line.get_label() for line in ax.lines}
            assert {t.get_text() for t in legend.get_texts()} <= labelled
    logged = [line for line in figure.axes[0].lines if line.get_label() == "train (per logged step)"]
    assert len(logged) == (n_steps > 1)


def near(pixels: np.ndarray, colour: str, tolerance: float = 0.12) -> int:
    """How many pixels are of ``colour``."""
    return int((np.abs(pixels[..., :3] / 255 - np.array(mcolors.to_rgb(colour))).max(axis=-1) < tolerance).sum())


@pytest.mark.parametrize("n_epochs", [1, 2])
def test_the_test_mark_leaves_the_validation_point_beneath_it_visible(n_epochs):
    from mnistctl.reading.figures.training import curves_figure

    epochs = epochs_of(n_epochs)
    last = epochs[-1]
    figure = curves_figure("run", epochs, [], None, {"epoch": last["epoch"], "test_acc": last["val_acc"] + 0.0005})
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    acc = figure.axes[1]
    (val,) = [line for line in acc.lines if line.get_label() == "validation"]
    (test,) = [line for line in acc.lines if line.get_label().startswith("test")]
    x, y = acc.transData.transform((last["epoch"], 100 * last["val_acc"]))
    pixels = np.asarray(canvas.buffer_rgba())
    row, col = int(round(pixels.shape[0] - y)), int(round(x))
    half = int(np.ceil(max(val.get_markersize(), test.get_markersize()) * figure.dpi / 72))
    around = pixels[row - half : row + half + 1, col - half : col + half + 1]
    square = max(1, int(val.get_markersize() * figure.dpi / 72 / 2) - 1)
    centre = pixels[row - square : row + square + 1, col - square : col + square + 1]
    assert near(centre, VAL) >= 0.5 * centre.shape[0] * centre.shape[1], "the validation point is covered"
    assert near(around, TEST) >= 20, "the test mark is not seen"


def layer_events(n_layers: int, n_points: int) -> list[dict]:
    rng = np.random.default_rng(1)
    kinds = ["Conv2d", "BatchNorm2d", "ReLU"]
    events = []
    for k in range(n_points):
        layers = {}
        for i in range(n_layers):
            kind = kinds[i % 3]
            params = {"params": {"weight": {"grad": 0.1 * (i + 1), "update": 10 ** (-3 + 2.5 * rng.random())}}} if kind != "ReLU" else {}
            layers[f"features.{i}"] = {"type": kind, "mean": 0.1 * i, "std": 0.5 + 0.1 * i, "zeros": 0.4 + 0.02 * i, "grad": 0.01 * (i + 1), **params}
        events.append({"step": 10 * (k + 1), "epoch": 1, "layers": layers})
    return events


@pytest.mark.parametrize("n_points", [3, 9, 40])
def test_many_layers_each_look_different(n_points):
    from mnistctl.reading.figures.layerstats import layer_stats_figure

    figure = layer_stats_figure("run", layer_events(22, n_points), steps_per_epoch=20)
    handles = figure.legends[0].legend_handles
    assert len(handles) == 22
    for i, a in enumerate(handles):
        for b in handles[i + 1 :]:
            if (a.get_linestyle(), a.get_marker()) == (b.get_linestyle(), b.get_marker()):
                distance = np.linalg.norm(np.subtract(mcolors.to_rgb(a.get_color()), mcolors.to_rgb(b.get_color())))
                assert distance >= 0.2, (a.get_label(), b.get_label(), a.get_color(), b.get_color())


def test_the_reference_levels_of_the_layer_stats_are_labelled_where_no_data_is():
    from mnistctl.reading.figures.layerstats import layer_stats_figure

    figure = layer_stats_figure("run", layer_events(22, 9), steps_per_epoch=20)
    renderer = drawn(figure)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    wanted = {"dead above": panels["Fraction of zeros (dead units)"], "typical ~1e-3": panels["Update / weight ratio  ||Δw|| / ||w||"],
              "too large": panels["Update / weight ratio  ||Δw|| / ||w||"]}
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    found = {t.get_text(): t for t in texts if t.get_text() in wanted}
    assert set(found) == set(wanted)
    legend = figure.legends[0].get_window_extent(renderer)
    for label, text in found.items():
        box = text.get_window_extent(renderer)
        assert not box.overlaps(wanted[label].bbox), f"{label!r} is drawn over the data of its panel"
        assert not box.overlaps(legend)
        others = [t for t in texts if t is not text and t.get_window_extent(renderer).width > 0]
        assert not [t.get_text() for t in others if box.overlaps(t.get_window_extent(renderer))], label


LONG = "this-is-a-very-long-run-name-that-goes-on-and-on-for-quite-a-while-indeed-yes-really-long"


def test_compare_names_the_runs_without_a_curve_and_keeps_long_names_short():
    from mnistctl.reading.figures.training import compare_figure

    names = ["fast", "lenet", LONG, "one-epoch", "early", "strided", "diverged-late"]
    curves = [(f"{name} (test {90 - k}.{k}1%)", epochs_of(1 + k % 3)) for k, name in enumerate(names)]
    curves[3:3] = [("diverged (failed)", []), ("interrupted (interrupted)", [])]
    figure = compare_figure(curves)
    renderer = drawn(figure)
    title = figure.get_suptitle()
    assert f"{len(names)} of {len(curves)} runs" in title and "diverged (failed)" in title and "interrupted (interrupted)" in title
    legend = figure.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == len(names)
    for name, label in zip(names, labels):
        assert label.startswith(name[:12]) and re.search(r"\(test [\d.]+%\)$", label), label
    box = legend.get_window_extent(renderer)
    assert box.height < 0.25 * figure.bbox.height and box.width < figure.bbox.width


def test_compare_of_runs_that_all_have_curves_says_how_many():
    from mnistctl.reading.figures.training import compare_figure

    figure = compare_figure([("a (test 90.00%)", epochs_of(2)), ("b (test 91.00%)", epochs_of(3))])
    assert figure.get_suptitle() == "Validation curves of 2 runs"
