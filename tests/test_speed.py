"""The speed work keeps behaviour: pooling before ReLU is the same network, deferred loss syncs keep the guard."""

import math

import pytest
import torch

from mnistctl.errors import TrainingDiverged
from mnistctl.plugins import archs
from mnistctl.training import config as trainconfig
from mnistctl.training.trainer import Trainer


@pytest.mark.parametrize("arch", ["lenet", "simplecnn", "deep-dropout"])
def test_pooling_before_relu_is_the_same_network(arch):
    torch.manual_seed(0)
    model = archs().get(arch).factory().eval()
    x = torch.randn(4, 1, 28, 28)
    layers = list(model.features.modules())[1:]
    layers = [m for m in layers if not isinstance(m, torch.nn.Sequential)]
    swapped = [i for i in range(len(layers) - 1) if isinstance(layers[i], torch.nn.MaxPool2d) and isinstance(layers[i + 1], torch.nn.ReLU)]
    assert swapped
    for i in swapped:
        layers[i], layers[i + 1] = torch.nn.ReLU(), layers[i]
    h = x
    for layer in layers:
        h = layer(h)
    torch.testing.assert_close(model.classifier(h), model(x))


def test_strided_bn_is_registered_with_its_parameter_count():
    spec = archs().get("strided-bn")
    model = spec.factory()
    assert sum(p.numel() for p in model.parameters()) == spec.params
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_non_finite_loss_queued_between_syncs_names_its_step(tmp_path, data_dir):
    trainer = Trainer(trainconfig.resolve({"arch": "lenet", "limit": 256, "val_split": 100}), runs_dir=tmp_path, data_dir=data_dir)
    trainer.prepare()
    trainer.step_in_epoch = 3
    trainer._pending = [(torch.tensor(0.5), torch.tensor(7), 8, 0.05), (torch.tensor(math.nan), torch.tensor(1), 8, 0.05), (torch.tensor(0.4), torch.tensor(8), 8, 0.05)]
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, step 2, at a learning rate of 0.05;"):
        trainer._sync()


def test_running_totals_add_up_at_each_sync(tmp_path, data_dir):
    trainer = Trainer(trainconfig.resolve({"arch": "lenet", "limit": 256, "val_split": 100}), runs_dir=tmp_path, data_dir=data_dir)
    trainer.prepare()
    trainer._pending = [(torch.tensor(0.5), torch.tensor(6), 8, 0.05), (torch.tensor(0.25), torch.tensor(4), 4, 0.05)]
    loss, acc = trainer._sync()
    assert (loss, acc) == (5 / 12, 10 / 12)
    assert trainer.running == {"loss": 0.5 * 8 + 0.25 * 4, "correct": 10, "seen": 12} and trainer._pending == []
