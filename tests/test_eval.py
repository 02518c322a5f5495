"""mnistctl eval: metrics from probabilities, the report files, and the command on a briefly trained run."""

import dataclasses
import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from mnistctl import runs
from mnistctl.cli import app
from mnistctl.errors import NotFoundError, RunError, UsageError
from mnistctl.reading import evaluate, split_predictions
from mnistctl.runs import checkpoint
from test_cli import run_mnistctl

VAL_SPLIT = 1000


@pytest.fixture(scope="module")
def trained_run(short_run):
    return short_run


def one_hot(predicted, classes=10):
    return torch.nn.functional.one_hot(torch.tensor(predicted), classes).float() * 0.9 + 0.01



def test_a_loss_that_blew_up_is_shown_in_three_significant_digits():
    from rich.console import Console

    targets = torch.tensor([0, 1, 2])
    result = {"run": "blown", "split": "test", "checkpoint": "best", "epoch": 1, **evaluate.metrics(one_hot([0, 1, 1], classes=3), targets)}
    result["loss"] = 6.8946793185270456e19
    console = Console(width=200, record=True)
    console.print(evaluate.tables(result)[0])
    assert "6.89e+19" in console.export_text()

def test_metrics_count_the_confusions():
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    probs = one_hot([0, 1, 1, 1, 2, 2, 0, 0, 2], classes=3)
    m = evaluate.metrics(probs, targets)
    assert m["confusion_matrix"] == [[1, 2, 0], [0, 1, 1], [2, 0, 2]]
    assert m["n"] == 9 and m["errors"] == 5 and m["accuracy"] == pytest.approx(4 / 9)
    assert [r["support"] for r in m["per_class"]] == [3, 2, 4]
    class1 = m["per_class"][1]  # predicted 1 three times, right once; one of two true 1s found
    assert class1["precision"] == pytest.approx(1 / 3) and class1["recall"] == pytest.approx(1 / 2)
    assert class1["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert m["macro_avg"]["recall"] == pytest.approx((1 / 3 + 1 / 2 + 2 / 4) / 3)
    assert m["weighted_avg"]["support"] == 9
    # largest counts first, ties by true class then predicted class
    assert m["most_confused"] == [
        {"true": 0, "predicted": 1, "count": 2},
        {"true": 2, "predicted": 0, "count": 2},
        {"true": 1, "predicted": 2, "count": 1},
    ]
    assert m["loss"] == pytest.approx(-probs[torch.arange(9), targets].log().mean().item())


def test_most_confused_keeps_the_top_five_nonzero_cells():
    matrix = [[0] * 10 for _ in range(10)]
    for k, (t, p) in enumerate([(3, 5), (7, 2), (4, 9), (9, 4), (8, 3), (1, 7)]):
        matrix[t][p] = 10 - k
    pairs = evaluate.most_confused(matrix)
    assert [(c["true"], c["predicted"], c["count"]) for c in pairs] == [(3, 5, 10), (7, 2, 9), (4, 9, 8), (9, 4, 7), (8, 3, 6)]
    assert evaluate.most_confused([[5, 0], [0, 5]]) == []


def test_eval_on_the_test_split_matches_the_labels_and_the_training_run(trained_run, mnist):
    result = evaluate.evaluate(trained_run, "test", "best", mnist)
    matrix = torch.tensor(result["confusion_matrix"])
    assert matrix.sum() == len(mnist.test_labels) == result["n"]
    assert matrix.sum(1).tolist() == torch.bincount(mnist.test_labels, minlength=10).tolist()
    assert [r["support"] for r in result["per_class"]] == matrix.sum(1).tolist()
    assert result["accuracy"] == pytest.approx(matrix.trace().item() / matrix.sum().item())
    test_event = list(trained_run.events("test"))[-1]
    assert (result["accuracy"], result["loss"]) == (test_event["test_acc"], test_event["test_loss"])  # the same weights, evaluated again
    assert result["epoch"] == test_event["epoch"]
    probs, targets = split_predictions.load_or_compute(trained_run, "test", "best")
    assert probs.shape == (len(mnist.test_labels), 10) and torch.equal(targets, mnist.test_labels)


def test_saved_predictions_are_used_only_on_the_data_they_were_made_on(trained_run, mnist, tmp_path):
    run = runs.Run(shutil.copytree(trained_run.path, tmp_path / "copy"))
    relabelled = dataclasses.replace(mnist, labels=(mnist.labels + 1) % 10, md5={name: "0" * 32 for name in mnist.md5})
    own = evaluate.evaluate(run, "test", "best", mnist)["accuracy"]
    other = evaluate.evaluate(run, "test", "best", relabelled)["accuracy"]
    assert other < 0.2 < own
    assert evaluate.evaluate(run, "test", "best")["accuracy"] == own
    probs, targets = split_predictions.load_or_compute(run, "test", "best", relabelled)
    assert torch.equal(targets, relabelled.test_labels)


def test_eval_command_writes_reports_and_predictions(trained_run):
    result = CliRunner().invoke(app, ["eval", str(trained_run.path), "--split", "val", "--checkpoint", "last"])
    assert result.exit_code == 0, result.output
    assert "Per-class report" in result.output and "Most confused pairs" in result.output
    json_path, text_path = evaluate.report_paths(trained_run, "val", "last")
    report = json.loads(json_path.read_text())
    assert report["split"] == "val" and report["checkpoint"] == "last" and report["n"] == VAL_SPLIT
    assert sum(map(sum, report["confusion_matrix"])) == VAL_SPLIT
    assert sum(r["support"] for r in report["per_class"]) == VAL_SPLIT
    assert "macro avg" in text_path.read_text() and "\x1b[" not in text_path.read_text()
    val_epoch = [e for e in trained_run.epochs() if e["epoch"] == report["epoch"]][0]
    assert report["accuracy"] == pytest.approx(val_epoch["val_acc"], abs=3 / VAL_SPLIT)  # the last checkpoint's own validation
    assert split_predictions.path(trained_run, "val").is_file()


def test_a_run_name_that_looks_like_markup_titles_the_report_as_it_is(trained_run, tmp_path):
    copy = shutil.copytree(trained_run.path, tmp_path / "[red]r[bold]")
    result = CliRunner().invoke(app, ["eval", str(copy), "--split", "val"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Evaluation of [red]r[bold]" in result.output and "Evaluation of [red]r[bold]" in evaluate.report_paths(runs.Run(copy), "val")[1].read_text()


def test_eval_accepts_a_checkpoint_file_and_prints_json(trained_run):
    weights = trained_run.path / "weights" / "best.safetensors"
    result = CliRunner().invoke(app, ["eval", str(weights), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["checkpoint"] == "best" and report["run"] == trained_run.name and report["split"] == "test"


def test_resolve_checkpoint(trained_run, tmp_path):
    run, which = runs.resolve_checkpoint(str(trained_run.path))
    assert run.path == trained_run.path and which == "best"
    run, which = runs.resolve_checkpoint(str(trained_run.path / "weights" / "initial.safetensors"))
    assert run.path == trained_run.path and which == "initial"
    with pytest.raises(UsageError, match="contradicts"):
        runs.resolve_checkpoint(str(trained_run.path / "weights" / "last.safetensors"), "best")
    with pytest.raises(NotFoundError, match="no checkpoint file"):
        runs.resolve_checkpoint(str(tmp_path / "weights" / "best.safetensors"))
    stray = tmp_path / "model.safetensors"
    stray.write_bytes(b"")
    with pytest.raises(UsageError, match="not a run checkpoint"):
        runs.resolve_checkpoint(str(stray))
    with pytest.raises(UsageError, match="the run's name is empty"):
        runs.resolve("")
    with pytest.raises(UsageError, match="--weights is empty"):
        runs.resolve_checkpoint(str(trained_run.path), "")
    with pytest.raises(UsageError, match="is a file, not a run's folder"):
        runs.resolve(str(stray))


@pytest.mark.parametrize("command", ["eval", "visualize", "compare"])
def test_an_onnx_export_given_as_a_run_points_at_predict(tmp_path, command):
    onnx = tmp_path / "digits.onnx"
    onnx.write_bytes(b"onnx")
    result = CliRunner().invoke(app, [command, str(onnx), "--runs-dir", str(tmp_path / "runs")])
    assert isinstance(result.exception, UsageError)
    assert result.exception.message == f"{onnx} is an ONNX export, not a run's folder"
    assert f"mnistctl predict IMAGE --run {onnx}" in result.exception.hint


@pytest.mark.parametrize("command", ["eval", "visualize", "export"])
def test_weights_of_no_known_name_are_refused_naming_weights_and_its_choices(short_run, command):
    result = CliRunner().invoke(app, [command, str(short_run.path), "--weights", "worst"])
    assert isinstance(result.exception, UsageError) and result.exception.message == "--weights 'worst' is not one of a run's weights"
    assert result.exception.hint == "use --weights best, last or initial"


def test_train_resume_of_an_empty_name_is_refused_not_a_new_run(tmp_path):
    result = run_mnistctl("train", "--resume", "", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and result.stderr.startswith("error: the run's name is empty")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args, error, message",
    [
        (["eval", "no-such-run"], NotFoundError, "no run 'no-such-run'"),
        (["eval", "RUN", "--split", "train"], UsageError, "unknown split 'train'"),
        (["eval", "RUN", "--checkpoint", "worst"], UsageError, "--weights 'worst' is not one of a run's weights"),
        (["eval", "NOWEIGHTS"], RunError, "has no best weights"),
    ],
)
def test_bad_input_fails_with_a_project_error(trained_run, tmp_path, args, error, message):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(trained_run.path / "config.json", bare / "config.json")
    args = [{"RUN": str(trained_run.path), "NOWEIGHTS": str(bare)}.get(a, a) for a in args]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, error), result.output
    assert message in result.exception.message and result.exception.hint



def test_a_trained_run_whose_weights_are_gone_is_not_said_to_be_unfinished(trained_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run.path, copy)
    shutil.rmtree(copy / "weights")
    refused = CliRunner().invoke(app, ["eval", str(copy)])
    assert isinstance(refused.exception, RunError) and "has no best weights" in refused.exception.message
    assert refused.exception.hint == "its weights were deleted or moved"

def test_a_run_stopped_in_its_first_epoch_is_pointed_to_its_last_weights(trained_run, tmp_path):
    stopped = tmp_path / "stopped"
    (stopped / "weights").mkdir(parents=True)
    shutil.copy(trained_run.path / "config.json", stopped / "config.json")
    tensors, _ = checkpoint.load(trained_run.path / "weights" / "last.safetensors")
    checkpoint.save(stopped / "weights" / "last.safetensors", tensors, {"epoch": 0, "step_in_epoch": 37})  # as the trainer saves it when stopped
    refused = CliRunner().invoke(app, ["eval", str(stopped)])
    assert isinstance(refused.exception, RunError) and "has no best weights" in refused.exception.message
    assert "pass --weights last" in refused.exception.hint
    result = CliRunner().invoke(app, ["eval", str(stopped), "--weights", "last", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == "last"
    assert (json.loads(result.stdout)["epoch"], json.loads(result.stdout)["step_in_epoch"]) == (0, 37)
    shown = CliRunner().invoke(app, ["eval", str(stopped), "--weights", "last"], env={"COLUMNS": "120"}).stdout
    assert "last (37 steps into epoch 1)" in shown and "epoch 0" not in shown


def test_a_run_moved_from_another_machine_finds_the_data_through_the_usual_lookup(trained_run, tmp_path, data_dir, monkeypatch):
    moved = tmp_path / "moved"
    shutil.copytree(trained_run.path, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["dir"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    shutil.rmtree(moved / "reports", ignore_errors=True)
    monkeypatch.setenv("MNISTCTL_DATA_DIR", str(data_dir))
    result = evaluate.evaluate(runs.Run(moved))
    assert result["accuracy"] == pytest.approx(trained_run.summary["test_acc"], abs=1e-6)


def test_the_report_path_is_printed_whole_in_a_narrow_terminal(short_run):
    result = run_mnistctl("eval", str(short_run.path), COLUMNS="30")
    assert result.returncode == 0, result.stderr
    assert f"wrote {short_run.path / 'reports' / 'eval-test.json'} and eval-test.txt\n" in result.stdout


def test_the_hint_to_draw_a_confusion_too_wide_names_the_run_by_its_path(short_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(short_run.path, "kept runs/a run")
    result = run_mnistctl("eval", "kept runs/a run", COLUMNS="30")
    assert result.returncode == 0, result.stderr
    hint = " ".join(result.stdout.split()).split("draw it: ", 1)[1]
    assert hint.startswith("mnistctl visualize 'kept runs/a run' --what confusion")


def test_evaluating_other_weights_keeps_the_best_weights_report(short_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(short_run.path, copy)
    run = runs.Run(copy)
    best = evaluate.save(run, evaluate.evaluate(run, "test", "best"))
    kept = best[0].read_text()
    initial = evaluate.save(run, evaluate.evaluate(run, "test", "initial"))
    assert initial[0].name == "eval-test-initial.json" and initial[1].name == "eval-test-initial.txt"
    assert best[0].read_text() == kept and json.loads(initial[0].read_text())["checkpoint"] == "initial"


def test_a_run_without_weights_whose_config_is_corrupt_is_called_corrupt(tmp_path):
    bad = tmp_path / "runs" / "bad"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{\n")
    result = CliRunner().invoke(app, ["eval", "bad", "--runs-dir", str(tmp_path / "runs")])
    assert isinstance(result.exception, RunError) and result.exception.message.startswith(f"{bad / 'config.json'} is corrupt: ")


def test_an_empty_runs_folder_hints_the_readmes_first_command_into_the_folder_given(tmp_path, monkeypatch):
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    first = re.search(r"^(mnistctl [^#\n]*?)\s*(#|$)", readme, re.MULTILINE).group(1)
    empty = tmp_path / "no runs"
    empty.mkdir()
    for args in (["eval"], ["eval", "nope"], ["visualize"], ["export"]):
        result = CliRunner().invoke(app, [*args, "--runs-dir", str(empty)])
        assert isinstance(result.exception, NotFoundError), result.output
        assert result.exception.hint == f"train one with: {first} --runs-dir {shlex.quote(str(empty))}"
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(empty))
    assert CliRunner().invoke(app, ["eval"]).exception.hint == f"train one with: {first}"
