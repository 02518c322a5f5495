"""mnistctl export --format onnx: a self-contained ONNX model that onnxruntime runs exactly like PyTorch."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.errors import RunError, UsageError
from mnistctl.models import load_model, predict_proba
from mnistctl.reading import export


@pytest.fixture(scope="module")
def run(short_run):
    return short_run


def test_export_writes_an_onnx_model_that_agrees_with_pytorch_on_the_test_set(run, mnist, tmp_path):
    target = tmp_path / "digits.onnx"
    result = CliRunner().invoke(app, ["export", str(run.path), "--format", "onnx", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert "10,000 test images: 0 different predictions" in result.stdout
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert meta["mnistctl.run"] == run.name and float(meta["mnistctl.mean"]) == run.normalization[0]

    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 300):  # the batch axis is dynamic
        images = mnist.test_images[:batch]
        probs = session.run(["probs"], {"images": images.numpy()})[0]
        expected = predict_proba(load_model(run), images, *run.normalization).numpy()
        assert probs.shape == (batch, 10)
        assert np.abs(probs - expected).max() < export.TOLERANCE
        assert (probs.argmax(1) == expected.argmax(1)).all()


def test_the_file_and_the_readme_tell_a_deployer_how_to_feed_it_and_read_it(run, mnist, tmp_path, monkeypatch, capsys):
    export.export(run, "onnx", "best", tmp_path / "digits.onnx", dataset=mnist)
    proto = onnx.load(str(tmp_path / "digits.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 20)]
    assert meta["mnistctl.input"].startswith("images: uint8 (N, 28, 28), pixels 0-255") and "normalised inside the model" in meta["mnistctl.input"]
    assert meta["mnistctl.output"] == "probs: float32 (N, 10), the probability of each digit, 0 to 9 in order"
    assert proto.doc_string.startswith(f"MNIST digit classifier from mnistctl run {run.name} (best weights, from epoch ")
    readme = (Path(__file__).parents[1] / "README.md").read_text().split("## Export to ONNX")[1]
    snippet = readme.split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    exec(snippet, {})
    assert capsys.readouterr().out.startswith("[")


def test_a_control_character_in_the_output_path_is_printed_escaped(run, tmp_path):
    result = CliRunner().invoke(app, ["export", str(run.path), "--output", str(tmp_path / "new\nline.onnx")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path}/new\\nline.onnx\n" in result.stdout


def test_export_defaults_to_the_run_folder(run, mnist):
    path, parity = export.export(run, "onnx", "last", dataset=mnist)
    assert path == run.path / "exports" / "last.onnx" and path.is_file()
    assert parity.ok and parity.images == 10_000 and parity.max_difference < export.TOLERANCE


def test_parity_check_catches_a_different_model(run, mnist, tmp_path):
    path, _ = export.export(run, "onnx", "best", tmp_path / "best.onnx", dataset=mnist)
    other = load_model(run, "initial")
    parity = export.check(path, other, mnist.test_images[:500], *run.normalization)
    assert not parity.ok and parity.mismatches > 0


def test_unknown_format_is_refused(run):
    with pytest.raises(UsageError, match="unknown export format 'tflite'"):
        export.export(run, "tflite")


def test_an_output_that_is_not_an_onnx_path_is_refused_before_any_work(run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "export", lambda *a, **k: pytest.fail("the export started"))
    result = CliRunner().invoke(app, ["export", str(run.path), "--output", str(tmp_path / "model.pt")])
    assert isinstance(result.exception, UsageError) and "model.pt is not a .onnx path" in result.exception.message
    assert not (tmp_path / "model.pt").exists()


def test_a_model_that_cannot_be_traced_fails_in_one_line(monkeypatch, tmp_path):
    import torch

    def untraceable(*args, **kwargs):
        try:
            raise RuntimeError(".numpy() is not supported for tensor subclasses.")
        except RuntimeError as exc:
            raise ValueError("Failed to export the model.\nMany lines of advice") from exc

    monkeypatch.setattr(torch.onnx, "export", untraceable)
    with pytest.raises(RunError) as info:
        export._write(export._pipeline(torch.nn.Flatten(), 0.1, 0.3), tmp_path / "m.onnx", torch.zeros(2, 28, 28))
    assert info.value.message == "Flatten cannot be traced for ONNX: RuntimeError: .numpy() is not supported for tensor subclasses."
    assert not (tmp_path / "m.onnx").exists()


def test_a_named_file_that_appears_during_the_export_is_kept_but_the_runs_own_export_is_replaced(run, mnist, tmp_path, monkeypatch):
    target = tmp_path / "digits.onnx"
    check = export.check

    def meanwhile(*args):
        target.write_text("mine")
        return check(*args)

    monkeypatch.setattr(export, "check", meanwhile)
    with pytest.raises(UsageError, match="appeared while it was being written"):
        export.export(run, "onnx", "best", target, dataset=mnist)
    assert target.read_text() == "mine" and list(tmp_path.iterdir()) == [target]
    monkeypatch.setattr(export, "check", check)
    default = export.default_path(run, "best")
    default.parent.mkdir(exist_ok=True)
    default.write_text("an older export")
    assert export.export(run, "onnx", "best", dataset=mnist)[0] == default and onnx.load(str(default))


def test_a_failed_export_leaves_no_folder_behind(run, mnist, tmp_path, monkeypatch):
    def untraceable(*args):
        raise RunError("ScratchCNN cannot be traced for ONNX")

    monkeypatch.setattr(export, "_write", untraceable)
    with pytest.raises(RunError):
        export.export(run, "onnx", "best", tmp_path / "exports" / "best.onnx", dataset=mnist)
    assert not (tmp_path / "exports").exists()


def test_export_says_which_epoch_it_wrote_and_the_file_records_it(run, tmp_path):
    best = max((e for e in run.epochs()), key=lambda e: e["val_acc"])["epoch"]
    result = CliRunner().invoke(app, ["export", str(run.path), "-o", str(tmp_path / "best.onnx")])
    assert result.exit_code == 0, result.output
    assert f"\nweights: best, from epoch {best} of 2\n" in result.stdout
    meta = export.recorded(tmp_path / "best.onnx")
    assert (meta["mnistctl.weights"], meta["mnistctl.epoch"], meta["mnistctl.epochs"]) == ("best", str(best), "2")
    assert "mnistctl.step_in_epoch" not in meta


def test_export_of_a_run_still_training_says_its_weights_are_from_partway_through_an_epoch(run, tmp_path):
    import json
    import shutil

    from mnistctl.runs import Run, checkpoint

    training = Run(shutil.copytree(run.path, tmp_path / "training"))
    (training.path / "summary.json").unlink()
    events = training.metrics_path.read_text().splitlines()
    training.metrics_path.write_text("".join(line + "\n" for line in events if json.loads(line)["event"] != "end"))
    tensors, _ = checkpoint.load(training.weights("last"))
    checkpoint.save(training.weights("last"), tensors, {"epoch": 1, "step_in_epoch": 3})  # stopped at step 3 of epoch 2
    result = CliRunner().invoke(app, ["export", str(training.path), "--weights", "last", "-o", str(tmp_path / "last.onnx")])
    assert result.exit_code == 0, result.output
    assert "\nweights: last, from partway through epoch 2 of 2, at step 3; the run is still training\n" in result.stdout
    meta = export.recorded(tmp_path / "last.onnx")
    assert (meta["mnistctl.weights"], meta["mnistctl.epoch"], meta["mnistctl.step_in_epoch"]) == ("last", "2", "3")
    assert "(last weights, from partway through epoch 2 of 2, at step 3)" in onnx.load(str(tmp_path / "last.onnx")).doc_string
