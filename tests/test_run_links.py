"""A run directory whose folders or metrics file are symbolic links elsewhere: nothing is written through them."""

import shutil

import pytest
from typer.testing import CliRunner

from mnistctl import runs
from mnistctl.cli import app
from mnistctl.errors import RunError
from mnistctl.runs import Status
from mnistctl.training.trainer import Trainer
from test_hardening import copies, interrupted_copy, small_data  # noqa: F401 -- fixtures


@pytest.mark.parametrize("folder, command", [
    ("plots", ["visualize", "RUN", "--what", "curves"]),
    ("reports", ["eval", "RUN"]),
    ("exports", ["export", "RUN"]),
])
def test_a_linked_folder_of_a_run_is_refused_and_what_it_points_to_is_left_alone(folder, command, copies, tmp_path):
    _, (good, _) = copies
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("mine")
    shutil.rmtree(good.path / folder, ignore_errors=True)  # what other tests wrote there
    (good.path / folder).symlink_to(outside, target_is_directory=True)
    result = CliRunner().invoke(app, [good.path.as_posix() if arg == "RUN" else arg for arg in command])
    assert isinstance(result.exception, RunError) and result.exception.message == f"{good.path / folder} is a symbolic link, not a folder of the run"
    assert [p.name for p in outside.iterdir()] == ["precious.txt"] and (outside / "precious.txt").read_text() == "mine"


@pytest.mark.parametrize("folder", ["weights", "state"])
def test_resume_refuses_a_linked_weights_or_state_folder(folder, interrupted_copy, small_data, tmp_path):
    moved = tmp_path / "moved"
    (interrupted_copy.path / folder).rename(moved)
    (interrupted_copy.path / folder).symlink_to(moved, target_is_directory=True)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in moved.iterdir())
    with pytest.raises(RunError, match="is a symbolic link, not a folder of the run"):
        Trainer.resume(interrupted_copy, data_dir=small_data).run()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in moved.iterdir()) == before


def test_resume_refuses_a_metrics_file_linked_elsewhere_and_leaves_the_run_as_it_was(interrupted_copy, small_data, tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_bytes(interrupted_copy.metrics_path.read_bytes())
    interrupted_copy.metrics_path.unlink()
    interrupted_copy.metrics_path.symlink_to(victim)
    notes, summary = victim.read_bytes(), interrupted_copy.summary_path.read_bytes()
    with pytest.raises(RunError, match="metrics.jsonl is a symbolic link, not a file of the run"):
        Trainer.resume(interrupted_copy, data_dir=small_data).run()
    assert victim.read_bytes() == notes and interrupted_copy.summary_path.read_bytes() == summary
    assert runs.Run(interrupted_copy.path).status() == Status.INTERRUPTED
