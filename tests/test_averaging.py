import torch
from torch import nn

from mnistctl import runs
from mnistctl.models import build_model, loss_and_accuracy, predict_proba
from mnistctl.runs import checkpoint
from mnistctl.training import config as trainconfig
from mnistctl.training.averaging import WeightAverage
from mnistctl.training.trainer import Trainer
from test_cli import run_mnistctl

QUICK = {"arch": "strided-bn", "epochs": 2, "limit": 1024, "batch_size": 128, "val_split": 1000, "log_every": 4}


def test_the_average_follows_the_model_with_a_ramped_decay():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = WeightAverage(model, decay=0.5)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(4):
        model(torch.randn(8, 3))  # moves the BatchNorm statistics and its batch count
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(step)
        decay = min(0.5, (1 + step) / (10 + step))
        for key, value in model.state_dict().items():
            expected[key] = decay * expected[key] + (1 - decay) * value if value.is_floating_point() else value.clone()
    averaged = average.module.state_dict()
    for key, value in expected.items():
        assert torch.allclose(averaged[key], value), key
    assert averaged["1.num_batches_tracked"].item() == 4
    assert not torch.equal(averaged["0.weight"], model.state_dict()["0.weight"])
    assert not any(p.requires_grad for p in average.module.parameters())


def test_a_run_with_ema_validates_and_saves_the_average(tmp_path, data_dir):
    trainer = Trainer(trainconfig.resolve({**QUICK, "ema": 0.9}), None, tmp_path / "runs", data_dir)
    assert trainer.run()["status"] == "finished"
    run = runs.Run(trainer.run_dir)
    state = checkpoint.load_state(run.state_path)
    last, _ = checkpoint.load(run.weights("last"))
    for key, value in state["average"].items():
        assert torch.equal(last[key], value), key
    differs = [key for key in last if last[key].is_floating_point() and not torch.equal(last[key], state["model"][key])]
    assert differs, "the saved weights are the model's, not its average"
    model = build_model(run.config)
    model.load_state_dict(last)
    val_loss, val_acc = loss_and_accuracy(predict_proba(model, trainer.val_x, trainer.mean, trainer.std), trainer.val_y)
    epoch = run.epochs()[-1]
    assert (val_loss, val_acc) == (epoch["val_loss"], epoch["val_acc"])
    assert run.config["ema"] == 0.9


def test_train_ema_flag_is_checked_in_one_line(tmp_path):
    result = run_mnistctl("train", "--ema", "1", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["error: ema = 1.0 is not allowed: expected a decay above 0 and below 1, such as 0.999, or nothing (fix --ema or the config file)"]
    assert not (tmp_path / "runs").exists()
