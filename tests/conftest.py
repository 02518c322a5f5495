import json
import os
from pathlib import Path

import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mnist_dir() -> Path | None:
    for candidate in (os.environ.get("MNISTCTL_DATA_DIR"), SHARED_MNIST):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real MNIST folder. In CI it must exist: a missing folder fails instead of skipping."""
    found = mnist_dir()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but MNIST is not at MNISTCTL_DATA_DIR or ../shared/data/mnist")
        pytest.skip("MNIST data not available; set MNISTCTL_DATA_DIR")
    return found


@pytest.fixture(scope="session")
def mnist(data_dir):
    from mnistctl import data

    return data.load(data_dir, download=False)


SHORT_RUN = {"arch": "lenet", "epochs": 2, "limit": 1024, "batch_size": 128, "val_split": 1000,
             "log_every": 4, "precision": "fp32", "optimizer": "adam", "scheduler": "none", "name": "short"}


@pytest.fixture(scope="session")
def train_run(tmp_path_factory, data_dir):
    """Trains a real run through the engine, once per session for each distinct set of settings."""
    from mnistctl import runs
    from mnistctl.training import config as trainconfig
    from mnistctl.training.trainer import Trainer

    trained = {}

    def train(**settings):
        key = json.dumps(settings, sort_keys=True)
        if key not in trained:
            trainer = Trainer(trainconfig.resolve(settings), None, tmp_path_factory.mktemp("runs"), data_dir)
            trainer.run()
            trained[key] = runs.Run(trainer.run_dir)
        return trained[key]

    return train


@pytest.fixture(scope="session")
def short_run(train_run):
    """lenet, two epochs on 1,024 images: shared by the eval, visualize and export tests."""
    return train_run(**SHORT_RUN)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Runs go to a temporary folder and matplotlib never opens a window."""
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
