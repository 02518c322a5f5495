"""mnistctl visualize: every plot is a readable, non-blank PNG; feature maps for every architecture; clear errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_plugins import registered
from typer.testing import CliRunner

from mnistctl import hookimpl
from mnistctl.cli import app
from mnistctl.data import imageprep
from mnistctl.errors import NotFoundError, RunError, UsageError
from mnistctl.models import build_model
from mnistctl.plugins import archs
from mnistctl.reading.figures import save
from mnistctl.reading.visualize import KINDS, USED_BY, Options, Plots, conv_layers, refuse_unused
from mnistctl.registry import Spec
from mnistctl.runs import Run, checkpoint

ALL_PLOTS = ["curves.png", "confusion-test.png", "filters-features.0.png", "initial-filters-features.0.png",
             "feature-maps-test-0.png", "wrong-test.png", "samples.png", "saliency-integrated-gradients-test.png"]


@pytest.fixture(scope="module")
def trained_run(short_run):
    return short_run


def check_png(path: Path, min_size=(600, 250), max_size=(2600, 4000)) -> None:
    """A decodable PNG of a plausible size whose pixels are far from uniform."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert min_size[0] <= width <= max_size[0] and min_size[1] <= height <= max_size[1], (path.name, image.size)
    assert pixels.var() > 200, f"{path.name} looks blank"
    assert (pixels < 200).mean() > 0.02, f"{path.name} has almost no ink"
    assert path.stat().st_size < 400_000


def test_all_writes_every_plot_and_prints_its_path(trained_run, tmp_path):
    out = tmp_path / "plots"
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "--what", "all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = [Path(line) for line in result.output.split()]
    assert sorted(p.name for p in printed) == sorted(ALL_PLOTS)
    assert sorted(p.name for p in out.iterdir()) == sorted(ALL_PLOTS)  # no temporary files left behind
    for path in printed:
        check_png(path)


def test_a_folder_name_that_looks_like_markup_is_printed_as_it_is(trained_run, tmp_path):
    out = tmp_path / "plots [final] x[/]y"
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "--what", "curves", "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "curves.png") and (out / "curves.png").is_file()


def test_plots_of_other_weights_than_the_best_say_so_and_keep_the_bests(trained_run, tmp_path):
    out = tmp_path / "plots"
    best = CliRunner().invoke(app, ["visualize", str(trained_run.path), "--what", "wrong,confusion,curves", "--out", str(out)])
    last = CliRunner().invoke(app, ["visualize", str(trained_run.path), "--what", "wrong,confusion", "--weights", "last", "--out", str(out / "last")])
    assert best.exit_code == 0 and last.exit_code == 0, best.output + last.output
    assert sorted(Path(p).name for p in best.output.split()) == ["confusion-test.png", "curves.png", "wrong-test.png"]
    assert sorted(Path(p).name for p in last.output.split()) == ["confusion-test-last.png", "wrong-test-last.png"]
    plots = Plots(trained_run, Options(which="last"), None)
    assert plots.weights_title.endswith(", last checkpoint") and Plots(trained_run, Options(), None).weights_title == plots.title


def test_default_folder_is_the_runs_plots_and_kinds_can_repeat(trained_run):
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "curves", "-w", "filters", "--layer", "1"])
    assert result.exit_code == 0, result.output
    assert [Path(p) for p in result.output.split()] == [trained_run.path / "plots" / "curves.png", trained_run.path / "plots" / "filters-features.3.png"]


def test_filters_of_a_deeper_layer_show_output_by_input_channels(trained_run, mnist):
    plots = Plots(trained_run, Options(layer="features.3"), mnist)
    name, figure = plots.filters()
    out, inp, kh, kw = conv_layers(plots.model)["features.3"].weight.shape
    [grid] = [ax for ax in figure.axes if ax.images]
    assert name == "filters-features.3.png" and grid.get_ylabel() == "output channel"
    rows, cols = min(out, 16), min(inp, 16)  # one kernel per (output, input) pair, one pixel apart
    assert grid.images[0].get_array().shape == (rows * (kh + 1) - 1, cols * (kw + 1) - 1)
    assert any(ax.get_label() == "<colorbar>" for ax in figure.axes)


def test_curves_follow_the_metrics(trained_run, mnist):
    _, figure = Plots(trained_run, dataset=mnist).curves()
    loss, acc, lr = figure.axes[:3]
    val = [line for line in acc.lines if line.get_label() == "validation"][0]
    assert list(val.get_ydata()) == pytest.approx([100 * e["val_acc"] for e in trained_run.epochs()])
    assert [ax.get_xlabel() for ax in (loss, acc, lr)] == ["epoch"] * 3
    assert trained_run.name in figure.get_suptitle()



def test_the_learning_rate_is_replayed_step_by_step_where_the_logged_rates_agree():
    from mnistctl.reading.visualize import learning_rates
    from mnistctl.training import config as trainconfig

    config = trainconfig.resolve({"scheduler": "step", "scheduler_options": {"milestones": "1,2"}, "epochs": 3, "lr": 0.1})
    rates = learning_rates(config, 10, [{"step": 10, "lr": 0.1}, {"step": 20, "lr": 0.01}], 3)
    assert rates == pytest.approx([0.1] * 10 + [0.01] * 10 + [0.001] * 10)  # each drop at the first step of its epoch
    assert learning_rates(config, 10, [{"step": 20, "lr": 0.1}], 3) is None  # not the schedule the run logged
    assert learning_rates(config, 10, [], 2) == pytest.approx([0.1] * 10 + [0.01] * 10)  # a run stopped after 2 epochs


def test_the_curves_of_a_run_with_ema_say_its_validation_is_of_the_average(trained_run, mnist, tmp_path):
    import shutil

    copy = tmp_path / "ema"
    shutil.copytree(trained_run.path, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "ema": 0.999}))
    for run, label in ((trained_run, "validation"), (Run(copy), "validation (weight average)")):
        _, figure = Plots(run, dataset=mnist).curves()
        assert label in [line.get_label() for line in figure.axes[1].lines]
        assert "train" in [line.get_label() for line in figure.axes[1].lines]


def write_untrained_run(root: Path, arch: str) -> Run:
    """A run of an untrained architecture: config and weights only."""
    path = root / arch
    path.mkdir(parents=True)
    config = {"name": arch, "arch": arch, "arch_options": {}, "val_split": 1000, "seed": 0, "data": {"mean": 0.1307, "std": 0.3081}}
    (path / "config.json").write_text(json.dumps(config))
    model = build_model(config)
    for which in ("initial", "best"):
        checkpoint.save_model(path / "weights" / f"{which}.safetensors", model)
    return Run(path)


def test_samples_of_a_run_that_augments_show_the_same_images_warped_as_in_training(mnist, tmp_path):
    run = write_untrained_run(tmp_path, "lenet")
    _, plain = Plots(run, dataset=mnist).samples()
    assert len(plain.axes) == 2
    config = json.loads((run.path / "config.json").read_text())
    config["augment"] = {"rotation": 10.0, "shift": 0.1, "zoom": 0.0, "elastic": 34.0}
    config["limit"], config["data"]["n_train"] = 2048, 2048  # as a run trained with --limit 2048 records it
    (run.path / "config.json").write_text(json.dumps(config))
    _, figure = Plots(Run(run.path), dataset=mnist).samples()
    originals, warped = (ax.images[0].get_array() for ax in figure.axes[:2])
    assert figure.axes[1].get_title() == "the same, augmented as in training (rot 10° shift 0.1 elastic 34)"
    assert originals.shape == warped.shape and np.abs(originals.astype(int) - warped.astype(int)).mean() > 5
    assert abs(int(originals.sum()) - int(warped.sum())) < 0.3 * originals.sum()  # the digits moved, they did not vanish
    assert [label for label in figure.axes[2].get_legend_handles_labels()[1] if label.startswith("train")] == ["train (2,048 images)"]
    _, again = Plots(Run(run.path), dataset=mnist).samples()
    assert np.array_equal(again.axes[1].images[0].get_array(), warped)  # seeded by the run's seed
    check_png(save(figure, tmp_path / "samples.png"))


def check_feature_maps(run: Run, mnist, tmp_path: Path) -> None:
    plots = Plots(run, Options(index=7), mnist)
    convs = conv_layers(plots.model)
    name, figure = plots.feature_maps()
    assert name == "feature-maps-test-7.png"
    assert len(figure.subfigs) == 1 + len(convs)
    assert [sub._suptitle.get_text().split(":")[0] for sub in figure.subfigs[1:]] == list(convs)
    check_png(save(figure, tmp_path / name))


@pytest.mark.parametrize("arch", archs().names())
def test_feature_maps_come_out_for_every_registered_architecture(arch, mnist, tmp_path):
    check_feature_maps(write_untrained_run(tmp_path, arch), mnist, tmp_path)


class OddNamesPlugin:
    """A third-party architecture whose conv layers sit in a dict and a list under unusual names."""

    @staticmethod
    @hookimpl
    def register_archs(register):
        def odd(width=6):
            from torch import nn

            class Odd(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = nn.ModuleDict({"entry": nn.Conv2d(1, width, 5, padding=2)})
                    self.trunk = nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Conv2d(width, 2 * width, 3, stride=2, groups=2))])
                    self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10))

                def forward(self, x):
                    return self.head(self.trunk[0](self.stem["entry"](x)))

            return Odd()

        register(Spec("odd-names", odd, "test architecture"))

        def flat(width=4):
            from torch import nn

            return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))

        register(Spec("flat", flat, "no conv layers"))


@pytest.fixture
def odd_plugin():
    with registered(OddNamesPlugin, "odd-names-test"):
        yield


def test_feature_maps_and_filters_of_a_third_party_architecture(odd_plugin, mnist, tmp_path):
    run = write_untrained_run(tmp_path, "odd-names")
    check_feature_maps(run, mnist, tmp_path)
    name, _ = Plots(run, Options(layer="trunk.0.1")).filters()
    assert name == "filters-trunk.0.1.png"
    with pytest.raises(NotFoundError, match="no conv layer 'features.0'") as info:
        Plots(run, Options(layer="features.0")).filters()
    assert info.value.hint == "the conv layers are 0=stem.entry, 1=trunk.0.1"


def test_all_of_a_model_without_conv_layers_skips_its_layer_plots_with_a_note(odd_plugin, tmp_path):
    run = write_untrained_run(tmp_path, "flat")
    result = CliRunner().invoke(app, ["visualize", str(run.path), "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    assert sorted(Path(p).name for p in result.stdout.split()) == ["confusion-test.png", "saliency-integrated-gradients-test.png", "samples.png", "wrong-test.png"]
    assert "warning: skipped filters, initial-filters, feature-maps: flat from test_visualize has no Conv2d layers" in result.stderr
    named = CliRunner().invoke(app, ["visualize", str(run.path), "--what", "filters", "--out", str(tmp_path / "named")])
    assert isinstance(named.exception, UsageError) and named.exception.message == "flat from test_visualize has no Conv2d layers"


def test_feature_maps_of_a_user_image_read_and_decoded_once(trained_run, mnist, tmp_path, monkeypatch):
    digit = 255 - np.kron(mnist.test_images[0].numpy(), np.ones((4, 4), dtype=np.uint8))  # dark ink on paper, 112x112
    path = tmp_path / "my-seven.png"
    Image.fromarray(digit).save(path)
    decoded = []
    read_gray = imageprep.read_gray
    monkeypatch.setattr(imageprep, "read_gray", lambda source, *args, **kwargs: decoded.append(source) or read_gray(source, *args, **kwargs))
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "feature-maps", "--image", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()) == tmp_path / "feature-maps-my-seven.png"
    check_png(tmp_path / "feature-maps-my-seven.png")
    assert decoded == [str(path)]  # not once for each check, file name and drawing


@pytest.mark.parametrize(
    "args, error, message, hint",
    [
        (["no-such-run", "-w", "curves"], NotFoundError, "no run 'no-such-run'", ""),
        (["RUN", "-w", "pictures"], UsageError, "unknown --what 'pictures'", ", ".join(KINDS)),
        (["RUN", "-w", "filters", "--layer", "conv9"], NotFoundError, "no conv layer 'conv9'", "0=features.0, 1=features.3"),
        (["RUN", "-w", "feature-maps", "--index", "10000"], UsageError, "--index 10000 is out of range", "use 0 to 9999"),
        (["RUN", "-w", "feature-maps", "--index", "-1"], UsageError, "--index -1 is out of range", "use 0 to 9999"),
        (["NOWEIGHTS", "-w", "confusion"], RunError, "has no best weights", ""),
        (["NOWEIGHTS", "-w", "curves"], RunError, "has no finished epochs", ""),
        (["RUN", "-w", ""], UsageError, "--what names no plot", ", ".join(KINDS)),
        (["RUN", "-w", " , "], UsageError, "--what names no plot", ", ".join(KINDS)),
        (["RUN", "-w", "curves", "--method", "occlusion"], UsageError, "--method occlusion would be ignored", "add saliency to --what"),
        (["RUN", "-w", "curves", "--split", "val"], UsageError, "--split val would be ignored", "add one of them to --what"),
        (["RUN", "-w", "samples", "--layer", "1"], UsageError, "--layer 1 would be ignored", "add one of them to --what"),
        (["RUN", "-w", "feature-maps", "--index", "5", "--image", "digit.png"], UsageError, "so --index 5 would be ignored", "drop one"),
        (["RUN", "-w", "feature-maps", "--split", "val", "--image", "digit.png"], UsageError, "so --split val would be ignored", "drop one"),
    ],
)
def test_bad_input_fails_before_writing_anything(trained_run, tmp_path, args, error, message, hint):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((trained_run.path / "config.json").read_text())
    args = [{"RUN": str(trained_run.path), "NOWEIGHTS": str(bare)}.get(a, a) for a in args]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["visualize", *args, "--out", str(out)])
    assert isinstance(result.exception, error), result.output
    assert message in result.exception.message and hint in (result.exception.hint or "")
    assert not out.exists() or not any(out.iterdir())


def test_options_are_refused_only_when_given_and_unused():
    refuse_unused(["saliency"], {"split": "val", "layer": None, "index": None, "image": None, "method": "occlusion"})
    refuse_unused(["feature-maps", "confusion"], {"split": "val", "layer": None, "index": None, "image": "digit.png", "method": None})
    refuse_unused(["feature-maps"], {"split": None, "layer": None, "index": 3, "image": None, "method": None})
    refuse_unused(["curves"], {"split": None, "layer": None, "index": None, "image": None, "method": None})


def test_split_help_names_every_plot_that_uses_the_split():
    from typer.main import get_command

    [split] = [p for p in get_command(app).commands["visualize"].params if p.name == "split"]
    assert {kind for kind in KINDS if kind in split.help} == USED_BY["split"]


def test_all_of_a_run_stopped_in_its_first_epoch_skips_the_curves_with_a_note(trained_run, tmp_path):
    stopped = tmp_path / "stopped"
    (stopped / "weights").mkdir(parents=True)
    (stopped / "config.json").write_text((trained_run.path / "config.json").read_text())
    (stopped / "metrics.jsonl").write_text(next(line for line in trained_run.metrics_path.open() if '"start"' in line))
    for which in ("initial", "last"):
        (stopped / "weights" / f"{which}.safetensors").write_bytes((trained_run.path / "weights" / f"{which}.safetensors").read_bytes())
    result = CliRunner().invoke(app, ["visualize", str(stopped), "--weights", "last", "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    of_last = {"confusion-test-last.png", "filters-features.0-last.png", "initial-filters-features.0.png", "feature-maps-test-0-last.png",
               "wrong-test-last.png", "samples.png", "saliency-integrated-gradients-test-last.png"}
    assert sorted(Path(p).name for p in result.stdout.split()) == sorted(of_last)
    assert result.stderr.strip() == "warning: skipped curves: run stopped has no finished epochs yet"
    named = CliRunner().invoke(app, ["visualize", str(stopped), "--weights", "last", "-w", "all,curves", "--out", str(tmp_path / "named")])
    assert isinstance(named.exception, RunError) and "has no finished epochs" in named.exception.message
    best = CliRunner().invoke(app, ["visualize", str(stopped), "--out", str(tmp_path / "best")])  # the best weights: none yet
    assert best.exit_code == 0, best.output
    assert sorted(Path(p).name for p in best.stdout.split()) == ["initial-filters-features.0.png", "samples.png"]
    assert best.stderr.splitlines()[1] == ("warning: skipped confusion, filters, feature-maps, wrong, saliency: run stopped has no best weights; "
                                           "--weights last draws them with its last weights")
    with (stopped / "metrics.jsonl").open("a") as metrics:  # it ended there, failed: no epoch will come
        metrics.write('{"event": "end", "time": 1.0, "status": "failed", "message": "boom"}\n')
    ended = CliRunner().invoke(app, ["visualize", str(stopped), "--weights", "last", "-w", "curves"])
    assert ended.exception.message == "run stopped has no finished epochs" and ended.exception.hint == "it ended before its first epoch was done"
    with (stopped / "metrics.jsonl").open("a") as metrics:  # two logged steps: a loss curve of its first epoch
        metrics.writelines(f'{{"event": "step", "time": 1.0, "epoch": 1, "step": {s}, "loss": {1 / s}, "lr": 0.05, "images_per_s": 1.0}}\n' for s in (2, 4))
    steps = CliRunner().invoke(app, ["visualize", str(stopped), "-w", "curves", "--out", str(tmp_path / "steps")])
    assert steps.exit_code == 0, steps.output
    check_png(tmp_path / "steps" / "curves.png")


def test_a_run_in_its_first_epoch_draws_the_step_it_logged_and_says_it_is_still_training(trained_run, tmp_path, monkeypatch):
    import mnistctl.reading.visualize as visualize
    from mnistctl.reading.figures.training import curves_figure

    live = tmp_path / "live"
    live.mkdir()
    (live / "config.json").write_text((trained_run.path / "config.json").read_text())
    start = next(line for line in trained_run.metrics_path.open() if '"start"' in line)
    (live / "metrics.jsonl").write_text(start + '{"event": "step", "time": 1.0, "epoch": 1, "step": 2, "loss": 0.9, "lr": 0.05, "images_per_s": 1.0}\n')
    drawn = []
    monkeypatch.setattr(visualize, "curves_figure", lambda *args, **kwargs: drawn.append(curves_figure(*args, **kwargs)) or drawn[-1])
    result = CliRunner().invoke(app, ["visualize", str(live), "-w", "curves", "--out", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "plots" / "curves.png").format == "PNG"
    assert "run live is still training its first epoch" in " ".join(result.stderr.split())
    loss, acc, _ = drawn[0].axes
    assert [list(line.get_ydata()) for line in loss.lines] == [[0.9]] and [t.get_text() for t in acc.texts] == ["first epoch still training"]


def test_an_out_folder_never_loses_a_file_but_the_runs_plots_are_replaced(trained_run, tmp_path):
    out = tmp_path / "vis"
    out.mkdir()
    (out / "curves.png").write_text("mine")
    refused = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "curves,filters", "--out", str(out)])
    assert isinstance(refused.exception, UsageError) and refused.exception.message == f"--out {out} already holds curves.png"
    assert sorted(p.name for p in out.iterdir()) == ["curves.png"] and (out / "curves.png").read_text() == "mine"
    with pytest.raises(UsageError, match="appeared while it was being written"):  # a file that appears after the check is kept too
        Plots(trained_run).make(["curves"], out, replace=False)
    assert (out / "curves.png").read_text() == "mine"
    (trained_run.plots_dir / "curves.png").parent.mkdir(exist_ok=True)
    (trained_run.plots_dir / "curves.png").write_text("an old plot")
    assert CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "curves"]).exit_code == 0
    check_png(trained_run.plots_dir / "curves.png")


def test_visualize_takes_the_data_folder_like_eval(trained_run, data_dir, tmp_path):
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "samples", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    check_png(tmp_path / "samples.png")
    missing = CliRunner().invoke(app, ["visualize", str(trained_run.path), "-w", "samples", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "--data-dir" in str(missing.exception) and not (tmp_path / "x").exists()


@pytest.mark.parametrize("n_epochs", [1, 2, 5])
def test_the_curves_legends_never_cover_a_point(n_epochs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mnistctl.reading.figures.training import curves_figure

    epochs = [{"epoch": e, "train_loss": 2.1 / e, "train_acc": 0.26 + 0.1 * e, "val_loss": 1.4 / e, "val_acc": 0.47 + 0.05 * e,
               "lr": 0.05, "best": True} for e in range(1, n_epochs + 1)]
    figure = curves_figure("run", epochs, [], None, {"epoch": n_epochs, "test_acc": 0.46 + 0.05 * n_epochs})
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lays the figure out
    renderer = canvas.get_renderer()
    for ax in figure.axes[:2]:
        box = ax.get_legend().get_window_extent(renderer)
        points = np.concatenate([ax.transData.transform(line.get_xydata()) for line in ax.lines if line.get_marker() not in (None, "None", "")])
        inside = (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)
        assert not inside.any(), f"{ax.get_title()}: legend over {points[inside]}"


def test_curves_of_events_without_a_learning_rate_say_it_was_not_logged():
    from mnistctl.reading.figures.training import curves_figure

    epochs = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.9, "val_loss": 1 / e, "val_acc": 0.9} for e in (1, 2)]
    steps = [{"step": s, "loss": 1 / s} for s in (1, 2, 3)]
    figure = curves_figure("run", epochs, steps, 2, None)
    lr = figure.axes[2]
    assert [t.get_text() for t in lr.texts] == ["not logged"] and len(lr.lines[0].get_xdata()) == 0


def test_a_control_character_in_the_out_folder_is_printed_escaped(trained_run, tmp_path):
    result = CliRunner().invoke(app, ["visualize", str(trained_run.path), "--what", "curves", "--out", str(tmp_path / "new\nline")])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path}/new\\nline/curves.png\n"


def test_the_curves_of_a_run_stopped_in_its_test_pass_show_the_test_result_eval_kept(trained_run, mnist, tmp_path):
    import shutil

    from mnistctl.reading import evaluate

    copy = Run(shutil.copytree(trained_run.path, tmp_path / "untested"))
    shutil.rmtree(copy.path / "reports", ignore_errors=True)  # what other tests' eval of the shared run kept
    lines = [line for line in copy.metrics_path.read_text().splitlines() if json.loads(line)["event"] != "test"]
    copy.metrics_path.write_text("\n".join(lines) + "\n")
    star = lambda: [line.get_label() for line in Plots(copy, dataset=mnist).curves()[1].axes[1].lines if line.get_label().startswith("test")]
    assert star() == []
    evaluate.save(copy, evaluate.evaluate(copy, "test", "best", mnist))
    kept = json.loads((copy.path / "reports" / "eval-test.json").read_text())["accuracy"]
    assert star() == [f"test, best checkpoint: {kept:.2%}"]
