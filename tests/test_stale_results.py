"""Results tied to the exact weights they come from: saved predictions, the epoch eval names, the digest an
ONNX export records; an interrupted export; predictions that cannot be kept in a read-only run."""

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mnistctl import runs
from mnistctl.cli import app
from mnistctl.models import load_model, loss_and_accuracy, predict_proba
from mnistctl.reading import evaluate, split_predictions
from mnistctl.runs import checkpoint


@pytest.fixture
def run(short_run, tmp_path):
    return runs.Run(fresh_copy(short_run, tmp_path / "runs" / "copy"))


def fresh_copy(source, target: Path) -> Path:
    """A copy of a run without what earlier tests may have saved into it (predictions, exports)."""
    return shutil.copytree(source.path, target, ignore=shutil.ignore_patterns("reports", "exports"))


def replace_best(run, tensors, meta, older_than):
    """best.safetensors replaced the way the trainer does it (a new file renamed over it), its mtime set
    before ``older_than``'s: a time stamp cannot tell the new weights from the old."""
    best = run.weights_path("best")
    fresh = best.with_name(".best.new.safetensors")
    checkpoint.save(fresh, tensors, meta)
    os.replace(fresh, best)
    stamp = older_than.stat().st_mtime - 60
    os.utime(best, (stamp, stamp))


def accuracy_of(run, mnist):
    probs = predict_proba(load_model(run, "best"), mnist.test_images, *run.normalization)
    return loss_and_accuracy(probs, mnist.test_labels)[1]


def other_epoch(run):
    recorded = evaluate.checkpoint_epoch(run, "best")
    return 1 if recorded != 1 else 2


def test_predictions_of_weights_replaced_since_are_computed_again(run, mnist):
    first = evaluate.evaluate(run, "test", "best")
    saved = split_predictions.path(run, "test")
    assert saved.is_file() and first["accuracy"] > 0.5
    initial, _ = checkpoint.load(run.weights("initial"))
    epoch = other_epoch(run)
    replace_best(run, initial, {"epoch": epoch, "val_acc": 0.1}, older_than=saved)

    again = evaluate.evaluate(run, "test", "best")
    assert again["accuracy"] == accuracy_of(run, mnist) != first["accuracy"]
    assert again["epoch"] == epoch  # named by the weights that were evaluated, not by metrics.jsonl
    probs, _ = split_predictions.load_or_compute(run)  # compare, the ensemble and visualize read the same file
    assert loss_and_accuracy(probs, mnist.test_labels)[1] == again["accuracy"]


def test_predictions_saved_without_the_weights_digest_are_not_trusted(run, mnist):
    right = evaluate.evaluate(run, "test", "best")["accuracy"]
    saved = split_predictions.path(run, "test")
    tensors, meta = checkpoint.load(saved)
    meta.pop("weights_sha256", None)  # as an older mnistctl wrote them
    wrong = torch.roll(tensors["probs"], 1, dims=1)  # every prediction off by one digit
    checkpoint.save(saved, {"probs": wrong, "targets": tensors["targets"]}, meta)
    assert saved.stat().st_mtime >= run.weights("best").stat().st_mtime
    assert evaluate.evaluate(run, "test", "best")["accuracy"] == right


def test_saved_predictions_of_the_same_weights_are_used(run, monkeypatch):
    first = evaluate.evaluate(run, "test", "best")
    monkeypatch.setattr(split_predictions, "compute", lambda *a, **k: pytest.fail("computed again"))
    assert evaluate.evaluate(run, "test", "best")["accuracy"] == first["accuracy"]


def test_export_records_the_digest_of_the_weights_it_holds_though_they_are_replaced_meanwhile(run, mnist, monkeypatch):
    from onnx import load as load_onnx
    from onnx import numpy_helper

    from mnistctl.reading import export, members

    pytest.importorskip("onnxruntime")
    old_bytes = run.weights("best").read_bytes()
    old, _ = checkpoint.load(run.weights("best"))
    new = {name: tensor + 0.5 if tensor.is_floating_point() else tensor for name, tensor in old.items()}
    write = export._write

    def trainer_saves_meanwhile(*args):
        write(*args)
        replace_best(run, new, {"epoch": 9}, older_than=run.path / "config.json")

    monkeypatch.setattr(export, "_write", trainer_saves_meanwhile)
    path, parity = export.export(run, "onnx", "best", dataset=mnist)
    assert parity.ok
    proto = load_onnx(str(path))
    recorded = {p.key: p.value for p in proto.metadata_props}[members.WEIGHTS_DIGEST]
    assert recorded == hashlib.sha256(old_bytes).hexdigest() != members.weights_digest(run.weights("best"))
    held = [numpy_helper.to_array(i) for i in proto.graph.initializer]
    biggest = max(old, key=lambda name: old[name].numel())
    assert any(a.shape == tuple(old[biggest].shape) and np.array_equal(a, old[biggest].numpy()) for a in held)
    assert members.current_session(run, "best") is None  # predict does not take the old model for the new weights


def test_an_interrupt_while_tracing_is_an_interrupt_and_leaves_no_file(run, mnist, monkeypatch, tmp_path):
    import torch.onnx

    from mnistctl.reading import export

    pytest.importorskip("onnxruntime")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def interrupted(*args, **kwargs):  # as torch.onnx reports a Ctrl-C that came while torch._dynamo was imported
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise AttributeError("module 'torch._dynamo' has no attribute 'exc'")  # noqa: B904
        except AttributeError as exc:
            raise RuntimeError("Failed to export the model with torch.export.") from exc

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    target = tmp_path / "out.onnx"
    with pytest.raises(KeyboardInterrupt):
        export.export(run, "onnx", "best", target, dataset=mnist)
    assert not target.exists() and not export.default_path(run, "best").exists()
    assert list(scratch.iterdir()) == []


def test_predictions_that_cannot_be_kept_are_used_from_memory_with_one_warning(short_run, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    for name in ("a", "b"):
        fresh_copy(short_run, root / name)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(root / "a" / "reports" / "predictions-test.safetensors"))

    monkeypatch.setattr(split_predictions, "save", read_only)
    monkeypatch.setattr(split_predictions, "_unkept_warned", False, raising=False)
    result = CliRunner().invoke(app, ["compare", "a", "b", "--runs-dir", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.count("could not be kept") == 1
    assert '"ensemble"' in result.stdout and "left out" not in result.output
    assert not split_predictions.path(runs.Run(root / "a"), "test").exists()

    result = evaluate.evaluate(runs.Run(root / "a"), "test", "best")
    assert result["accuracy"] == list(short_run.events("test"))[-1]["test_acc"]


def test_eval_of_a_run_whose_reports_cannot_be_written_shows_the_result_with_a_warning(short_run, tmp_path, monkeypatch):
    from mnistctl import fsutil

    real_atomic_path = fsutil.atomic_path

    run_dir = tmp_path / "runs" / "a"
    fresh_copy(short_run, run_dir)

    def read_only(path, *args, **kwargs):
        if Path(path).parent.name == "reports":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_atomic_path(path, *args, **kwargs)

    monkeypatch.setattr(fsutil, "atomic_path", read_only)
    monkeypatch.setattr(split_predictions, "_unkept_warned", False, raising=False)
    result = CliRunner().invoke(app, ["eval", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "the report could not be kept" in result.output and "Read-only file system" in result.output
    assert "accuracy" in result.output and "wrote" not in result.output
    assert not list((run_dir / "reports").glob("eval-*"))
