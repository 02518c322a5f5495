"""train --log-layers: statistics exact on tiny models, hooks only on logging steps, events at the interval, the plot."""

import math

import pytest
import torch
from PIL import Image
from test_cli import run_mnistctl
from torch import nn

from mnistctl.errors import RunError, UsageError
from mnistctl.reading.figures.layerstats import layer_stats_figure
from mnistctl.reading.visualize import Plots, expand
from mnistctl.runs import Kind
from mnistctl.runs.events import problem
from mnistctl.training import config as trainconfig
from mnistctl.training.layerstats import LayerStats, diagnose, watched

X = torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, -1.0, 2.0, 0.0]])


class Recorder:
    def __init__(self):
        self.events = []

    def event(self, kind, **fields):
        self.events.append((kind, fields))


def identity_net() -> nn.Sequential:
    linear = nn.Linear(4, 4)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(4))
        linear.bias.zero_()
    return nn.Sequential(linear, nn.ReLU())


def logged_step(model, stats, optimizer, x=X, step=1):
    assert stats.begin(step, epoch=1)
    model(x).sum().backward()
    stats.before_step()
    optimizer.step()
    return stats.after_step()


def test_relu_statistics_are_exact_on_a_known_input():
    model = identity_net()
    stats = LayerStats(model, every=1)
    layers = logged_step(model, stats, torch.optim.SGD(model.parameters(), lr=0.0))["layers"]
    relu = torch.relu(X)
    assert list(layers) == ["0", "1"] and layers["1"]["type"] == "ReLU"
    assert layers["1"]["zeros"] == 0.5  # -2, -4, -1 and 0 of eight values
    assert layers["1"]["mean"] == pytest.approx(relu.mean().item(), rel=1e-3)
    assert layers["1"]["std"] == pytest.approx(relu.std().item(), rel=1e-3)
    assert layers["0"]["zeros"] == 0.125  # the one exact zero of the input passes the identity
    assert layers["1"]["grad"] == pytest.approx(math.sqrt(8) * math.sqrt(2), rel=1e-3)  # d(sum)/d(output) is all ones; times √batch
    assert layers["0"]["grad"] == pytest.approx(math.sqrt(4) * math.sqrt(2), rel=1e-3)  # ones where the ReLU let through
    assert layers["0"]["params"]["weight"]["norm"] == 2.0


def test_the_output_gradient_does_not_depend_on_the_batch_size():
    """An epoch's shorter last batch (always logged: it is the run's last step) reads like the full ones."""

    def output_grads(x):
        model = identity_net()
        stats = LayerStats(model, every=1)
        assert stats.begin(1, epoch=1)
        model(x).mean(dim=1).mean().backward()  # a batch-mean loss, as training's
        stats.before_step()
        return {name: rec["grad"] for name, rec in stats.after_step()["layers"].items()}

    assert output_grads(X.repeat(64, 1)) == pytest.approx(output_grads(X), rel=1e-3)


def test_update_ratio_is_lr_times_gradient_over_weight_for_plain_sgd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    weight = model[2].weight.detach().clone()
    model(X).sum().backward()
    grad = model[2].weight.grad.detach().clone()
    model.zero_grad()
    stats = LayerStats(model, every=1)
    params = logged_step(model, stats, torch.optim.SGD(model.parameters(), lr=0.1))["layers"]["2"]["params"]
    assert params["weight"]["grad"] == pytest.approx(grad.norm().item(), rel=1e-3)
    assert params["weight"]["update"] == pytest.approx((0.1 * grad).norm().item() / weight.norm().item(), rel=1e-3)
    assert set(params) == {"weight", "bias"}


def test_hooks_only_on_logging_steps_and_removed_after():
    model = identity_net()
    recorder = Recorder()
    stats = LayerStats(model, every=3, writer=recorder)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(1, 7):
        logging = stats.begin(step, epoch=1)
        assert logging == (step % 3 == 0)
        assert bool(model[1]._forward_hooks) == logging
        model(X).sum().backward()
        stats.before_step()
        optimizer.step()
        assert (stats.after_step() is not None) == logging
        assert not model[0]._forward_hooks and not model[1]._forward_hooks
    assert [(kind, fields["step"]) for kind, fields in recorder.events] == [(Kind.LAYERS, 3), (Kind.LAYERS, 6)]
    assert all(problem({"event": str(kind), "time": 0.0, **fields}) is None for kind, fields in recorder.events)


def test_any_module_tree_a_module_called_twice_and_third_party_activations():
    class MySwish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class ThirdParty(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(4))
            self.relu = nn.ReLU()
            self.body = nn.Sequential(nn.Linear(4, 4), MySwish(), nn.Dropout(0.0), nn.Flatten())

        def forward(self, x):
            return self.relu(self.body(self.relu(x * self.scale)))

    model = ThirdParty()
    assert list(watched(model)) == ["ThirdParty", "relu", "body.0", "body.1"]  # no dropout, no flatten
    layers = logged_step(model, LayerStats(model, every=1), torch.optim.SGD(model.parameters(), lr=0.1))["layers"]
    assert list(layers) == ["relu", "body.0", "body.1", "relu#2", "ThirdParty"]
    assert layers["relu"]["zeros"] == 0.5 and layers["ThirdParty"]["params"]["scale"]["update"] > 0


def test_diagnose_marks_dead_exploding_and_vanishing_layers():
    def layer(zeros=0.1, grad=0.01, update=1e-3):
        return {"type": "X", "zeros": zeros, "grad": 0.1, "params": {"weight": {"norm": 1.0, "grad": grad, "update": update}}}

    layers = {"ok": layer(), "ok2": layer(grad=0.02), "dead": layer(zeros=0.97), "huge": layer(grad=50.0),
              "jump": layer(update=0.8), "tiny": layer(grad=1e-9)}  # fmt: skip
    assert diagnose(layers) == {"dead": ["dead"], "huge": ["exploding"], "jump": ["exploding"], "tiny": ["vanishing"]}


@pytest.fixture(scope="module")
def logged_run(train_run):
    """lenet, 512 images in 4 steps an epoch, two epochs, layer statistics every third step."""
    return train_run(arch="lenet", epochs=2, limit=512, batch_size=128, val_split=500, log_layers=3, precision="fp32",
                     optimizer="sgd", scheduler="none", name="layers")  # fmt: skip


def test_training_writes_one_event_per_interval_and_at_its_last_step_holding_every_layer(logged_run):
    events = list(logged_run.events(Kind.LAYERS))
    assert [(e["epoch"], e["step"]) for e in events] == [(1, 3), (2, 6), (2, 8)]
    layers = events[-1]["layers"]
    assert list(layers) == ["features.0", "features.2", "features.3", "features.5", "classifier.1", "classifier.2",
                            "classifier.4", "classifier.5", "classifier.7"]  # fmt: skip  (convs, ReLUs after pooling, linears)
    assert all(0 < rec["params"]["weight"]["update"] < 1 for rec in layers.values() if "params" in rec)
    assert all(0 <= rec["zeros"] <= 1 and rec["grad"] > 0 for rec in layers.values())


def test_the_last_step_of_a_run_logs_too_so_a_short_run_has_its_statistics():
    model = identity_net()
    recorder = Recorder()
    stats = LayerStats(model, every=50, writer=recorder, last=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    assert [stats.begin(step, epoch=1) for step in range(1, 4)] == [False] * 3
    logged_step(model, stats, optimizer, step=4)
    assert [(kind, fields["step"]) for kind, fields in recorder.events] == [(Kind.LAYERS, 4)]


def test_bad_interval_is_refused():
    with pytest.raises(UsageError, match="log_layers = 0 is not allowed") as raised:
        trainconfig.resolve({"log_layers": 0})
    assert raised.value.hint.startswith("fix --log-layers-every")


def test_visualize_layer_stats_writes_a_png(logged_run, tmp_path):
    assert "layer-stats" in expand("all", logged_run)
    [path] = Plots(logged_run).make(["layer-stats"], tmp_path)
    assert path.name == "layer-stats.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 1000


def test_visualize_layer_stats_without_them_says_how_in_one_line(short_run, tmp_path):
    assert "layer-stats" not in expand("all", short_run)
    with pytest.raises(RunError, match="has no layer statistics") as raised:
        Plots(short_run).make(["layer-stats"], tmp_path)
    assert raised.value.hint == "train with --log-layers"
    result = run_mnistctl("visualize", str(short_run.path), "--what", "layer-stats", "--out", str(tmp_path / "out"))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "train with --log-layers" in result.stderr and not (tmp_path / "out").exists()


def record(kind: str, zeros: float) -> dict:
    params = {"params": {"weight": {"grad": 0.5, "update": 0.01}}} if kind != "ReLU" else {}
    return {"type": kind, "mean": 0.1, "std": 1.0 + zeros, "zeros": zeros, "grad": 0.02 + zeros, **params}


def test_a_single_logged_point_is_readable_and_layers_on_top_of_each_other_are_named():
    layers = {"conv": record("Conv2d", 0.0), "relu": record("ReLU", 0.6), "linear": record("Linear", 0.0)}
    figure = layer_stats_figure("one", [{"step": 50, "epoch": 2, "layers": layers}], steps_per_epoch=40, span=2)
    axes = figure.axes[:6]
    assert axes[0].get_xlim()[0] == 0 and axes[0].get_xlim()[1] >= 2  # the run's span, not a sliver around epoch 1.25
    assert all(line.get_marker() == "o" and line.get_markersize() >= 6 for ax in axes for line in ax.lines if len(line.get_xdata()) == 1)
    zeros = axes[2]
    assert zeros.get_title() == "Fraction of zeros (dead units)"
    assert [t.get_text() for t in zeros.texts if t.get_text().startswith("on top")] == ["on top of each other: conv, linear"]


def test_few_logged_points_get_a_note_on_logging_more(logged_run, capsys):
    Plots(logged_run).layer_stats()
    note = capsys.readouterr().err
    assert "logged layer statistics at only 3 of its 8 steps" in note and "--log-layers-every 1" in note


def test_a_layers_event_without_layers_is_not_usable():
    assert problem({"event": "layers", "time": 0.0, "step": 3}) == "a layers event without layers"
    assert problem({"event": "layers", "time": 0.0, "step": 3, "layers": []}) == "a layers event whose layers is not an object"
