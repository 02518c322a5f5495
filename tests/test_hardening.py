"""Issue 11: failures before and after a run is claimed, runs someone else made, data checksums, resume and the NaN guard."""

import json
import re
import shutil

import pytest
import torch
from typer.testing import CliRunner

from mnistctl import runs
from mnistctl.cli import app
from mnistctl.errors import DataError, NotFoundError, RunError, TrainingDiverged, UsageError
from mnistctl.reading import evaluate, split_predictions
from mnistctl.reading.compare import compare
from mnistctl.runs import Kind, Status, checkpoint
from mnistctl.training import config as trainconfig
from mnistctl.training.trainer import Observer, Trainer
from test_cli import run_mnistctl
from test_data import write_set

QUICK = {"arch": "lenet", "epochs": 1, "limit": 256, "batch_size": 64, "val_split": 0, "log_every": 1000, "precision": "fp32"}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """A small 28x28 data set in MNIST's layout, so these tests train and predict in moments."""
    folder = tmp_path_factory.mktemp("small-data")
    write_set(folder, n_train=300, n_test=50, seed=1)
    return folder


def trainer(tmp_path, data, **flags):
    return Trainer(trainconfig.resolve({**QUICK, **flags}), None, tmp_path / "runs", data)


# Failures before and after the run directory is claimed

@pytest.mark.parametrize(
    "flags, message",
    [
        ({"arch_options": {"channels": "x,2"}}, "option channels = 'x,2' is not allowed: expected a list of whole numbers"),
        ({"arch_options": {"num_classes": "-5"}}, "'lenet' cannot be built"),
        ({"arch_options": {"channels": "1,2,3"}}, "'lenet' cannot be built"),
        ({"optimizer_options": {"momentum": "-1"}}, "option momentum = -1.0 is not allowed"),
        ({"batch_size": 1_000_000_000}, "larger than the 256 training images"),
        ({"val_split": 1_000_000}, "--val-split 1,000,000 leaves no training images"),
    ],
)
def test_bad_options_fail_before_the_run_directory_is_claimed(flags, message, tmp_path, small_data):
    with pytest.raises(UsageError, match=message):
        trainer(tmp_path, small_data, optimizer="sgd", **flags).prepare()
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_failure_after_claiming_records_failed_with_the_message(tmp_path, small_data, monkeypatch):
    t = trainer(tmp_path, small_data)
    t.prepare()
    monkeypatch.setattr(t, "_train", lambda: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    with pytest.raises(RuntimeError):
        t.run()
    run = runs.Run(t.run_dir)
    assert run.status() == Status.FAILED and run.summary["status"] == "failed"
    assert "disk on fire" in run.last(Kind.END)["message"]


def test_nan_guard_says_no_checkpoint_was_written_yet(tmp_path, small_data):
    t = trainer(tmp_path, small_data, optimizer="sgd", lr=1e12)
    with pytest.raises(TrainingDiverged) as info:
        t.run()
    run = runs.Run(t.run_dir)
    assert not run.weights_path("last").exists() and not run.weights_path("best").exists()
    assert run.weights_path("initial").is_file()
    assert "no checkpoint was written yet: it diverged in the first epoch, so only the initial weights are on disk" in info.value.message
    assert "(" not in info.value.message + info.value.hint  # printed as "message (hint)": no parentheses within
    assert run.status() == Status.FAILED and run.summary["wall_time"] > 0
    diverged_at = int(re.search(r"at epoch 1, step (\d+)", info.value.message).group(1))
    assert run.last(Kind.END)["step"] == diverged_at <= t.global_step  # the step the loss became NaN, not the sync after it


# Runs someone else made: one damaged run is warned about, the others are still compared

def _copy(run, root, name):
    """A copy without the reports other tests may have left (their predictions are of the full test set)."""
    shutil.copytree(run.path, root / name, ignore=shutil.ignore_patterns("reports"))
    return runs.Run(root / name)


@pytest.fixture
def copies(short_run, tmp_path, small_data):
    """Two copies of a real run, recorded as trained on the small data set (so predicting is quick)."""
    from mnistctl import data

    root = tmp_path / "runs"
    root.mkdir()
    md5 = data.load(small_data).md5
    made = [_copy(short_run, root, n) for n in ("good", "other")]
    for run in made:
        config = run.config
        config["data"].update(dir=str(small_data), md5=md5)
        run.config_path.write_text(json.dumps(config))
    return root, made


def _damage(run, how):
    if how == "metrics-not-objects":
        with run.metrics_path.open("a") as f:
            f.write("5\n[]\n\"text\"\nnull\n")
    elif how == "end-without-status":
        with run.metrics_path.open("a") as f:
            f.write(json.dumps({"event": "end", "time": 1.0}) + "\n")
    elif how == "summary-list":
        run.summary_path.write_text("[1, 2]")
    elif how == "config-list":
        run.config_path.write_text("[1, 2]")
    elif how == "predictions-shape":
        split_predictions.load_or_compute(run)
        saved = split_predictions.path(run, "test")
        checkpoint.save(saved, {"probs": torch.rand(7), "targets": torch.zeros(3, 2, dtype=torch.long)}, checkpoint.load(saved)[1])


READABLE = ["metrics-not-objects", "end-without-status", "summary-list", "predictions-shape"]


@pytest.mark.parametrize("how", READABLE)
def test_a_damaged_but_readable_run_is_still_compared(how, copies):
    root, (good, damaged) = copies
    _damage(damaged, how)
    result = compare(["good", "other"], root)
    assert {row["name"] for row in result.rows} == {"good", "other"}
    assert result.pairs and result.ensemble is not None and len(result.rows) == 2


def test_a_run_with_a_list_as_config_is_skipped_with_a_warning(copies):
    root, (good, damaged) = copies
    _damage(damaged, "config-list")
    result = compare(["good", "other"], root)
    assert [row["name"] for row in result.rows] == ["good"]
    assert any("skipped other" in w and "holds a list" in w for w in result.warnings)
    all_runs = compare([], root, all_runs=True, stats=False)
    assert [row["name"] for row in all_runs.rows] == ["good"]


@pytest.mark.parametrize("how", READABLE)
def test_eval_reads_a_damaged_run(how, copies):
    _, (_, damaged) = copies
    _damage(damaged, how)
    result = evaluate.evaluate(damaged)
    assert result["n"] == 50 and result["run"] == "other"


def test_a_run_folder_without_its_config_is_named_not_called_missing(copies):
    root, (_, damaged) = copies
    damaged.config_path.unlink()
    for ref in ("other", str(damaged.path)):
        with pytest.raises(NotFoundError, match=f"^{damaged.path} has no config.json "):
            runs.resolve_checkpoint(ref, None, root)
    with pytest.raises(NotFoundError, match="no run 'nothing'"):
        runs.resolve("nothing", root)


def test_eval_of_a_run_with_a_list_as_config_is_one_run_error(copies):
    _, (_, damaged) = copies
    _damage(damaged, "config-list")
    with pytest.raises(RunError, match="holds a list"):
        evaluate.evaluate(damaged)


def test_damaged_saved_predictions_are_computed_again(copies, capsys):
    _, (good, damaged) = copies
    _damage(damaged, "predictions-shape")
    probs, targets = split_predictions.load_or_compute(damaged)
    assert probs.shape == (50, 10) and targets.shape == (50,)
    assert "damaged" in capsys.readouterr().err


# Data checksums recorded in config.json are checked again

@pytest.fixture
def other_data(tmp_path):
    folder = tmp_path / "other-data"
    write_set(folder, n_train=300, n_test=40, seed=4)
    return folder


def _point_at(run, folder):
    config = run.config
    config["data"]["dir"] = str(folder)
    run.config_path.write_text(json.dumps(config))


def test_eval_refuses_other_data_unless_told(copies, other_data):
    _, (copy, _) = copies
    _point_at(copy, other_data)
    refused = CliRunner().invoke(app, ["eval", str(copy.path)])
    assert isinstance(refused.exception, DataError) and refused.exception.exit_code == 1
    assert "is not the data run good was trained on" in str(refused.exception) and "--ignore-data-mismatch" in str(refused.exception)
    assert not split_predictions.path(copy, "test").exists()
    accepted = CliRunner().invoke(app, ["eval", str(copy.path), "--ignore-data-mismatch", "--json"])
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(accepted.stdout[accepted.stdout.index("{"):])["n"] == 40


def test_compare_export_and_visualize_refuse_other_data(copies, other_data):
    root, (copy, other) = copies
    _point_at(copy, other_data)
    result = compare(["good", "other"], root)
    assert any(w.startswith("good is left out") and "--ignore-data-mismatch" in w for w in result.warnings)
    assert result.ensemble is None
    for command in (["export", str(copy.path)], ["visualize", str(copy.path), "--what", "confusion"]):
        refused = CliRunner().invoke(app, command)
        assert isinstance(refused.exception, DataError), (command, refused.output)
    told = compare(["good", "other"], root, ignore_data_mismatch=True)
    assert not any(w.startswith("good is left out") for w in told.warnings)
    assert any(w.startswith("other") and "left out" in w for w in told.warnings)


def test_runs_that_recorded_no_checksums_are_not_refused(copies, other_data):
    _, (copy, _) = copies
    config = copy.config
    del config["data"]["md5"]
    copy.config_path.write_text(json.dumps(config))
    assert copy.dataset(other_data).folder == str(other_data.resolve())


@pytest.mark.parametrize("md5, message", [("garbage", "data.md5 = 'garbage' is not a table of checksums"), ({}, "data.md5 holds no checksums")])
def test_checksums_recorded_wrongly_are_damage_not_a_check_skipped(copies, other_data, md5, message):
    _, (copy, _) = copies
    config = copy.config
    config["data"]["md5"] = md5
    copy.config_path.write_text(json.dumps(config))
    with pytest.raises(RunError, match=message):
        copy.dataset(other_data)
    if md5 == {}:  # the config is otherwise readable: the flag uses the data found
        assert copy.dataset(other_data, ignore_mismatch=True).folder == str(other_data.resolve())


# Resume of a run copied from another machine

class StopAtFirstStep(Observer):
    trainer = None

    def step(self, epoch, step, steps, loss, acc):
        self.trainer.request_stop()


@pytest.fixture
def interrupted_copy(tmp_path, small_data):
    observer = StopAtFirstStep()
    t = Trainer(trainconfig.resolve({**QUICK, "epochs": 2, "name": "moved"}), observer, tmp_path / "here", small_data)
    observer.trainer = t
    assert t.run()["status"] == "interrupted"
    copy = _copy(runs.Run(t.run_dir), tmp_path, "elsewhere")
    config = copy.config
    config["data"]["dir"] = str(tmp_path / "gone" / "mnist")
    copy.config_path.write_text(json.dumps(config))
    return copy


def test_resume_of_a_copied_run_finds_the_data_through_the_usual_lookup(interrupted_copy, small_data, tmp_path):
    moved = shutil.copytree(small_data, tmp_path / "data-on-this-machine")
    result = run_mnistctl("train", "--resume", str(interrupted_copy.path), "-q", MNISTCTL_DATA_DIR=str(moved))
    assert result.returncode == 0, result.stderr
    assert interrupted_copy.status() == Status.FINISHED


def test_resume_refuses_other_data(interrupted_copy, other_data, monkeypatch):
    monkeypatch.setenv("MNISTCTL_DATA_DIR", str(other_data))
    with pytest.raises(DataError, match="is not the data run elsewhere was trained on") as info:
        Trainer.resume(interrupted_copy).run()
    assert "--ignore-data-mismatch" in info.value.hint
    assert interrupted_copy.status() == Status.INTERRUPTED


def test_unreadable_saved_predictions_are_computed_again_for_eval_and_compare(copies, capsys):
    root, (good, damaged) = copies
    cache = split_predictions.path(damaged, "test")
    split_predictions.load_or_compute(damaged)
    cache.write_bytes(b"garbage")
    assert evaluate.evaluate(damaged)["n"] == 50
    assert "unreadable; computing them again" in capsys.readouterr().err
    cache.write_bytes(b"garbage")
    result = compare(["good", "other"], root)
    assert result.pairs and set(result.ensemble["runs"]) == {"good", "other"}


# sweep --show and --plot read a study whose runs are damaged


@pytest.fixture
def damaged_study(tmp_path):
    """A study of three finished trials: a run with a corrupt summary.json, a status mnistctl does not know, a good run."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    root = tmp_path / "runs"
    root.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{root / 'optuna.db'}", study_name="s", direction="maximize")
    dist = {"lr": optuna.distributions.FloatDistribution(0.001, 0.1, log=True)}
    for n, (status, summary) in enumerate([("finished", "{broken"), ("weird", '{"test_acc": 0.9}'), ("early_stopped", '{"test_acc": "0.95"}')]):
        (root / f"s-t{n}").mkdir()
        (root / f"s-t{n}" / "summary.json").write_text(summary)
        study.add_trial(optuna.trial.create_trial(params={"lr": 0.01 * (n + 1)}, distributions=dist, value=0.9 + n / 100,
                                                  intermediate_values={1: 0.9}, user_attrs={"run": f"s-t{n}", "status": status}))
    return root


def test_sweep_show_and_plot_read_past_a_damaged_run_and_an_unknown_status(damaged_study, capsys):
    from mnistctl.reading import sweep as reading

    study = __import__("optuna").load_study(study_name="s", storage=f"sqlite:///{damaged_study / 'optuna.db'}")
    rows = {row["name"]: row for row in reading.rows(study, damaged_study)}
    assert rows["s-t0"]["test_acc"] is None and "s-t0" in capsys.readouterr().err
    assert rows["s-t1"]["status"] == Status.FINISHED and rows["s-t1"]["test_acc"] == 0.9  # 'weird': the trial's own state
    assert rows["s-t2"]["status"] == Status.EARLY_STOPPED and rows["s-t2"]["test_acc"] is None
    result = CliRunner().invoke(app, ["sweep", "--study", "s", "--show", "--plot", str(damaged_study / "s.png"), "--runs-dir", str(damaged_study)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert all(f"s-t{n}" in result.stdout for n in range(3)) and (damaged_study / "s.png").stat().st_size > 0


def test_a_summary_value_that_is_not_a_number_is_shown_as_missing_with_a_warning(copies):
    root, (good, damaged) = copies
    summary = json.loads(damaged.summary_path.read_text())
    damaged.summary_path.write_text(json.dumps({**summary, "test_acc": "0.99", "params": [1]}))
    result = compare(["good", "other"], root)
    row = {r["name"]: r for r in result.rows}["other"]
    assert row["test_acc"] == damaged.last(Kind.TEST)["test_acc"] and row["params"] > 0  # from the metrics and the architecture
    assert any("params=[1] (not a number), test_acc='0.99' (not a number); shown: " in w for w in result.warnings), result.warnings
    assert CliRunner().invoke(app, ["compare", "good", "other", "--runs-dir", str(root), "--plot", str(root / "c.png")]).exit_code == 0


def test_a_checkpoint_the_disk_has_no_room_for_is_a_file_system_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import safetensors.torch

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as partial:
            partial.write(b"half")
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    target = tmp_path / "last.safetensors"
    with pytest.raises(OSError) as info:
        checkpoint.save(target, {"w": torch.zeros(3)})
    assert (info.value.errno, info.value.filename, info.value.strerror) == (errno.ENOSPC, str(target), "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    (lambda config: config["data"].update(mean="x"), "data.mean = 'x', data.std = "),
    (lambda config: config["data"].update(n_train=-5), "data.n_train = -5 is not a whole number of 1 or more"),
    (lambda config: config.pop("data"), "records no data table (mean, std, n_train)"),
], ids=["mean", "n_train", "no-data"])
def test_resume_of_a_run_with_damaged_data_settings_is_refused_and_leaves_it_resumable(damage, message, interrupted_copy, small_data):
    config = interrupted_copy.config
    damage(config)
    interrupted_copy.config_path.write_text(json.dumps(config))
    before = interrupted_copy.summary_path.read_bytes()
    with pytest.raises(RunError) as info:
        Trainer.resume(interrupted_copy, data_dir=small_data)
    assert message in info.value.message and info.value.hint == "the run directory is damaged"
    assert interrupted_copy.summary_path.read_bytes() == before


def test_a_run_started_on_a_gpu_resumes_on_the_cpu_when_told(interrupted_copy, small_data):
    config = interrupted_copy.config
    config["device"] = "cuda"  # as a run made on a machine with a GPU records it
    interrupted_copy.config_path.write_text(json.dumps(config))
    if not torch.cuda.is_available():
        refused = run_mnistctl("train", "--resume", str(interrupted_copy.path), "-q", MNISTCTL_DATA_DIR=str(small_data))
        assert refused.returncode == 2 and "error: device 'cuda' is not available on this machine" in refused.stderr
    result = run_mnistctl("train", "--resume", str(interrupted_copy.path), "--device", "cpu", "-q", MNISTCTL_DATA_DIR=str(small_data))
    assert result.returncode == 0, result.stderr
    assert interrupted_copy.summary["status"] == "finished"
    refused = run_mnistctl("train", "--resume", str(interrupted_copy.path), "--device", "cpu", "--epochs", "3")
    assert refused.returncode == 2 and "so --epochs would be ignored" in refused.stderr
