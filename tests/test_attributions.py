"""Attributions: Captum maps for any architecture, the figure, visualize --what saliency and predict --explain."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_visualize import check_png, odd_plugin, write_untrained_run  # noqa: F401 - odd_plugin is a fixture
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.errors import UsageError
from mnistctl.models import load_model
from mnistctl.plugins import archs
from mnistctl.reading.attributions import METHODS, attribute, explain_figure, scorer
from mnistctl.reading.figures import save
from mnistctl.reading.visualize import Options, Plots


@pytest.fixture(scope="module")
def trained_run(short_run):
    return short_run


@pytest.fixture(scope="module")
def forward(trained_run):
    return scorer([(load_model(trained_run), *trained_run.normalization)])


@pytest.mark.parametrize("method", METHODS)
def test_attributions_have_one_finite_map_per_image_and_class(method, forward, mnist):
    images = mnist.test_images[:3].numpy()
    maps = attribute(forward, images, np.array([[7, 1], [2, 0], [1, 4]]), method)
    assert maps.shape == (3, 2, 28, 28) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and np.abs(maps).max() > 0
    assert not np.allclose(maps[:, 0], maps[:, 1])  # each class gets its own map


def test_integrated_gradients_add_up_to_the_logit_difference_from_black(forward, mnist):
    images = mnist.test_images[:4].numpy()
    targets = mnist.test_labels[:4].numpy()
    maps = attribute(forward, images, targets)[:, 0]
    with torch.no_grad():
        x = torch.from_numpy(images).float().div(255).unsqueeze(1)
        gap = (forward(x) - forward(torch.zeros_like(x)))[torch.arange(4), torch.from_numpy(targets)].numpy()
    assert maps.sum(axis=(1, 2)) == pytest.approx(gap, rel=0.1, abs=0.2)
    assert not maps[images == 0].any()  # from a black baseline, black pixels get nothing


def test_the_model_is_left_in_eval_mode_and_unchanged(trained_run, mnist):
    model = load_model(trained_run)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attribute(scorer([(model, *trained_run.normalization)]), mnist.test_images[:2].numpy(), np.array([1, 2]), "gradient-shap")
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def explain(run, mnist):
    forward = scorer([(load_model(run), *run.normalization)])
    images = mnist.test_images[:2].numpy()
    columns = [[("7 (predicted)", 7), ("1 (true)", 1)], [("2 (predicted)", 2)]]
    return explain_figure("test", images, ["first", "second"], columns, forward, "integrated-gradients")


@pytest.mark.parametrize("arch", archs().names())
def test_the_figure_builds_for_every_registered_architecture(arch, mnist, tmp_path):
    figure = explain(write_untrained_run(tmp_path, arch), mnist)
    check_png(save(figure, tmp_path / f"{arch}.png"), min_size=(500, 250))


def test_the_figure_builds_for_a_third_party_architecture(odd_plugin, mnist, tmp_path):  # noqa: F811
    check_png(save(explain(write_untrained_run(tmp_path, "odd-names"), mnist), tmp_path / "odd.png"), min_size=(500, 250))


def test_the_figure_shows_the_digit_and_a_map_per_class_on_a_zero_centred_scale(trained_run, mnist):
    figure = explain(trained_run, mnist)
    cards = figure.subfigs[0].subfigs
    assert [card._suptitle.get_text() for card in cards] == ["first", "second"]
    first = cards[0].axes
    assert [ax.get_title() for ax in first] == ["input", "7 (predicted)", "1 (true)"]
    assert not cards[1].axes[2].get_visible()  # the second image asked for one class only
    maps = first[1].images[0]
    assert maps.norm.vcenter == 0 and maps.get_cmap().name == "RdBu_r"
    assert first[1].collections, "the digit's outline is drawn over the map"
    [bar] = figure.subfigs[1].axes
    assert "attribution" in bar.get_title()


def test_visualize_saliency_writes_a_png(trained_run, mnist, tmp_path):
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "saliency", "--method", "gradient-shap", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()) == tmp_path / "saliency-gradient-shap-test.png"
    check_png(tmp_path / "saliency-gradient-shap-test.png")


def test_visualize_saliency_explains_mistakes_first(trained_run, mnist):
    plots = Plots(trained_run, Options(), mnist)
    _, figure = plots.saliency()
    probs, targets = plots.predictions
    wrong = int((probs.argmax(1) != targets).sum())
    titles = [card._suptitle.get_text() for card in figure.subfigs[0].subfigs if card.get_visible()]
    assert len(titles) == min(wrong, 6) + 3
    assert all(" read as " in t for t in titles)
    cards = [re.fullmatch(r"#\d+: (an?) (\d) read as (\d) \(\d+%\)", t) for t in titles]
    assert all(cards), titles
    assert all(article == ("an" if true == "8" else "a") for article, true, _ in (c.groups() for c in cards))  # "an 8", "a 7"
    read = [c.groups()[1:] for c in cards]
    assert all(a != b for a, b in read[: min(wrong, 6)]) and all(a == b for a, b in read[-3:])


def test_predict_explain_writes_a_png(trained_run, mnist, tmp_path):
    digit = 255 - np.kron(mnist.test_images[0].numpy(), np.ones((4, 4), dtype=np.uint8))
    Image.fromarray(digit).save(tmp_path / "seven.png")
    out = tmp_path / "why" / "seven-why.png"
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "seven.png"), "--run", str(trained_run.path), "--explain", str(out), "--json"])
    assert result.exit_code == 0, result.output
    check_png(out, min_size=(500, 200))
    assert sorted(p.name for p in out.parent.iterdir()) == ["seven-why.png"]


def test_predict_explain_says_when_no_image_was_read_to_explain(trained_run, tmp_path):
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    out = tmp_path / "why.png"
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "blank.png"), "--run", str(trained_run.path), "--explain", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert f"{out} is not written: no image was read" in result.stderr.replace("\n", "")


def test_the_explanation_of_an_ensemble_says_they(trained_run, tmp_path, monkeypatch):
    from mnistctl.reading import attributions, predict

    titles = []
    monkeypatch.setattr(attributions, "explain_figure", lambda title, *args: titles.append(title))
    monkeypatch.setattr("mnistctl.reading.figures.save", lambda figure, path, replace: path)
    members = [predict.member_from_run(trained_run, onnx=False), predict.member_from_run(trained_run, "last", onnx=False)]
    shown = [predict.Prediction("one.png", 1, 0.9, [(1, 0.9), (7, 0.05)], np.zeros((28, 28), np.uint8))]
    for ensemble, pronoun in ((members[:1], "it"), (members, "they")):
        attributions.explain_predictions(shown, ensemble, tmp_path / "why.png", 2)
        assert titles[-1] == f"Why {' + '.join(m.name for m in ensemble)} read this digit as {pronoun} did"


def test_an_unknown_method_is_one_usage_error(trained_run, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "saliency", "--method", "lime", "--out", str(out)])
    assert isinstance(result.exception, UsageError)
    assert result.exception.message == "unknown --method 'lime'" and "integrated-gradients" in result.exception.hint
    assert not out.exists()


@pytest.mark.parametrize("examples, classes", [(1, 1), (1, 3), (4, 3)])
def test_the_colour_bar_labels_never_overlap(examples, classes):
    from mnistctl.reading.figures.attributions import attributions_figure

    rng = np.random.default_rng(0)
    image = (rng.random((28, 28)) * 255).astype(np.uint8)
    cards = [(image, f"image {i}", [(str(c), rng.normal(size=(28, 28))) for c in range(classes)]) for i in range(examples)]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = attributions_figure("Why", "how", cards)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    colour_bar = next(ax for ax in figure.get_axes() if [t.get_text() for t in ax.get_xticklabels()] == ["away from the class", "no effect", "towards the class"])
    boxes = [label.get_window_extent(renderer) for label in colour_bar.get_xticklabels()]
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:])), [(b.x0, b.x1) for b in boxes]
