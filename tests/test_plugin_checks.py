"""What a plugin's architecture, optimizer or scheduler must do to train, checked before the run folder is created."""

import pytest
import torch
from test_plugins import registered

from mnistctl import hookimpl
from mnistctl.errors import RunError, UsageError
from mnistctl.registry import Spec

QUICK = {"arch": "lenet", "epochs": 1, "limit": 128, "batch_size": 64, "val_split": 0, "precision": "fp32", "scheduler": "none", "lr": 0.01}


class Checked:
    """Architectures, optimizers and schedulers that build fine but differ from what mnistctl does with them."""

    @hookimpl
    def register_archs(self, register):
        from torch import nn

        class Leaving(nn.Module):  # leaves torch for NumPy, which has no bfloat16
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                import torch

                h = self.fc(x.flatten(1))
                return h + 0 * torch.from_numpy(h.detach().numpy()).float()

        class Branching(nn.Module):  # branches on a value of its activations
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                h = self.fc(x.flatten(1))
                if h.mean().item() > 0:
                    h = h * 2
                return h

        register(Spec("lazynet", lambda width=4: nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))))
        register(Spec("lazyempty", lambda width=0: nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.LazyLinear(10))))
        register(Spec("leaving", lambda width=4: Leaving()))
        register(Spec("branching", lambda width=4: Branching()))

    @hookimpl
    def register_optimizers(self, register):
        import torch

        def split(params, lr=0.01, weight_decay=0.0):  # no weight decay for biases: a group of its own, not ignored
            params = list(params)
            return torch.optim.SGD([{"params": [p for p in params if p.dim() > 1]}, {"params": [p for p in params if p.dim() == 1], "weight_decay": 0.0}], lr=lr, weight_decay=weight_decay)

        register(Spec("nowd", lambda params, lr=0.01, weight_decay=0.0: torch.optim.SGD(params, lr=lr)))
        register(Spec("fixedlr", lambda params, lr=0.01, weight_decay=0.0: torch.optim.SGD(params, lr=0.5, weight_decay=weight_decay)))
        register(Spec("split", split))

    @hookimpl
    def register_schedulers(self, register):
        from torch.optim import lr_scheduler

        register(Spec("plateau", lambda optimizer, epochs, steps_per_epoch, patience=2: lr_scheduler.ReduceLROnPlateau(optimizer, patience=patience)))


@pytest.fixture
def checked():
    """The plugin above registered in this process for one test."""
    with registered(Checked(), "checked"):
        yield


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from test_data import write_set

    folder = tmp_path_factory.mktemp("small-data")
    write_set(folder, n_train=200, n_test=20)
    return folder


def _trainer(small_data, runs, observer=None, **settings):
    from mnistctl.training import config as trainconfig
    from mnistctl.training.trainer import Trainer

    return Trainer(trainconfig.resolve({**QUICK, **settings}), observer, runs, small_data)


def _refused(trainer, runs) -> UsageError:
    with pytest.raises(UsageError) as info:
        trainer.prepare()
    assert info.value.exit_code == 2
    assert not runs.exists() or not list(runs.iterdir())
    return info.value


def test_a_model_with_lazy_layers_trains_stops_and_resumes(checked, small_data, tmp_path):
    from mnistctl.runs import Run, checkpoint
    from mnistctl.training.trainer import Observer, Trainer

    class StopAtOnce(Observer):
        def step(self, epoch, step, steps, loss, acc):
            trainer.request_stop()

    trainer = _trainer(small_data, tmp_path / "runs", StopAtOnce(), arch="lazynet", epochs=2)
    trainer.prepare()
    assert trainer.params == 4 * 9 + 4 + 10 * 4 * 26 * 26 + 10  # the lazy layer's weights exist, and the optimizer has them
    assert sum(p.numel() for group in trainer.optimizer.param_groups for p in group["params"]) == trainer.params
    assert trainer.run()["status"] == "interrupted"
    run = Run(trainer.run_dir)
    resumed = Trainer.resume(run, data_dir=small_data)
    assert resumed.run()["status"] == "finished"
    tensors, _ = checkpoint.load(run.weights_path("best"))
    assert tensors["3.weight"].shape == (10, 4 * 26 * 26)
    from mnistctl.models import load_model

    model = load_model(run)  # as eval, visualize, predict and export build it: the lazy layer takes the weights on disk
    assert torch.equal(model.state_dict()["3.weight"].float(), tensors["3.weight"].float())


def test_a_lazy_layer_without_weights_is_refused(checked, small_data, tmp_path):
    error = _refused(_trainer(small_data, tmp_path / "runs", arch="lazyempty"), tmp_path / "runs")
    assert error.message == "the architecture 'lazyempty' from test_plugin_checks has a layer without weights (1.weight)"


def test_a_scheduler_whose_step_needs_an_argument_is_refused(checked, small_data, tmp_path):
    error = _refused(_trainer(small_data, tmp_path / "runs", scheduler="plateau"), tmp_path / "runs")
    assert error.message == (
        "the scheduler 'plateau' from test_plugin_checks built ReduceLROnPlateau, whose step() needs metrics: "
        "mnistctl calls step() once per batch with no arguments"
    )
    assert "report it to the authors of test_plugin_checks" in error.hint


def test_a_model_failing_only_under_bf16_is_refused_with_the_way_around(checked, small_data, tmp_path):
    runs = tmp_path / "runs"
    error = _refused(_trainer(small_data, runs, arch="leaving", precision="bf16"), runs)
    assert error.message.startswith("the architecture 'leaving' from test_plugin_checks fails under bf16 precision: ") and "BFloat16" in error.message
    assert "--precision fp32" in error.hint
    _trainer(small_data, runs, arch="leaving", precision="fp32").prepare()  # in fp32 it trains


@pytest.mark.parametrize("settings, warning", [
    ({"optimizer": "nowd", "weight_decay": 0.1}, "the optimizer 'nowd' from test_plugin_checks ignores --weight-decay 0.1 (its parameter groups have 0)"),
    ({"optimizer": "fixedlr", "lr": 0.02}, "the optimizer 'fixedlr' from test_plugin_checks ignores --lr 0.02 (its parameter groups have 0.5)"),
    ({"optimizer": "nowd", "weight_decay": 0.0}, None),
    ({"optimizer": "split", "weight_decay": 0.1}, None),
    ({"optimizer": "sgd", "weight_decay": 0.1}, None),
])
def test_an_optimizer_ignoring_its_rates_is_warned_about_once(checked, small_data, tmp_path, capsys, settings, warning):
    trainer = _trainer(small_data, tmp_path / "runs", **settings)
    trainer.prepare()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ([f"warning: {warning}"] if warning else [])


def test_a_model_branching_on_its_values_fails_to_export_in_one_line_naming_it(checked, small_data, tmp_path, capfd):
    from mnistctl import data
    from mnistctl.reading import export
    from mnistctl.runs import Run

    pytest.importorskip("onnxruntime")
    trainer = _trainer(small_data, tmp_path / "runs", arch="branching")
    trainer.run()
    capfd.readouterr()
    target = tmp_path / "branching.onnx"
    with pytest.raises(RunError) as info:
        export.export(Run(trainer.run_dir), "onnx", "best", target, dataset=data.load(small_data))
    assert info.value.message.startswith("the architecture 'branching' from test_plugin_checks cannot be traced for ONNX: ")
    assert "\n" not in info.value.message and "branches on tensor values" in info.value.hint
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""  # torch's graph dumps and advice are kept from the terminal
    assert not target.exists()
