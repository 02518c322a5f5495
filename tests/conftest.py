import json
import os
from pathlib import Path

import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="session", autouse=True)
def decoded_data_cache(tmp_path_factory):
    """Decoded sets go to a folder of this session, not the user's cache; MNIST found beside the repo is
    named in $MNISTCTL_DATA_DIR, so commands run as subprocesses find it too (they inherit both)."""
    os.environ["MNISTCTL_DATA_CACHE"] = str(tmp_path_factory.mktemp("decoded"))
    if "MNISTCTL_DATA_DIR" not in os.environ and (found := mnist_dir()) is not None:
        os.environ["MNISTCTL_DATA_DIR"] = str(found)


def mnist_dir() -> Path | None:
    """MNIST found the way the command finds it ($MNISTCTL_DATA_DIR, then the cache), else ../shared beside the repo."""
    from mnistctl import data
    from mnistctl.errors import DataError

    for candidate in (None, SHARED_MNIST):
        try:
            return data.resolve(candidate, download=False)["train_images"].parent
        except DataError:
            continue
    return None


def pytest_terminal_summary(terminalreporter):
    """Say once why tests were skipped when there is no data, instead of a reason per test."""
    if mnist_dir() is None and terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(
            "MNIST was not found ($MNISTCTL_DATA_DIR, ~/.cache/mnistctl, ../shared/data/mnist): the tests that train "
            "or read data were skipped. Point MNISTCTL_DATA_DIR at the four IDX files to run them.", yellow=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real MNIST folder. In CI it must exist: a missing folder fails instead of skipping."""
    found = mnist_dir()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but MNIST is not at MNISTCTL_DATA_DIR or ../shared/data/mnist")
        pytest.skip("no MNIST data (see the note at the end)")
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


@pytest.fixture
def terminal(monkeypatch):
    """The dashboards' commands, run by a test runner whose streams are not a terminal."""
    monkeypatch.setattr("mnistctl.cli.options.require_terminal", lambda what, hint: None)
