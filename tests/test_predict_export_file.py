"""mnistctl predict --run model.onnx: an ONNX file mnistctl export wrote predicts alone, wherever it was copied, as its run does."""

import json
import shutil
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.errors import MnistctlError
from mnistctl.reading import export
from mnistctl.runs import Run


@pytest.fixture(scope="module")
def exported(short_run, mnist, tmp_path_factory):
    """A copy of the short run carrying its ONNX export, and a copy of that file away from any run."""
    run = Run(shutil.copytree(short_run.path, tmp_path_factory.mktemp("exported") / short_run.name))
    path, _ = export.export(run, "onnx", "best", dataset=mnist)
    away = tmp_path_factory.mktemp("elsewhere") / "digits.onnx"
    shutil.copy(path, away)
    return run, away


@pytest.fixture(scope="module")
def images(mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for i in range(5):
        Image.fromarray(255 - mnist.test_images[i].numpy()).resize((84, 84)).save(folder / f"{i}.png")  # a scan: dark on light
    return folder


def predict(*args):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


def test_an_export_given_by_its_path_predicts_what_its_run_predicts(exported, images):
    run, away = exported
    by_file, by_run = predict(images, "--run", away, "--jsonl"), predict(images, "--run", run.path, "--jsonl")
    assert by_file.exit_code == 0 and by_run.exit_code == 0, by_file.output + by_run.output
    assert by_file.stdout == by_run.stdout and len(by_file.stdout.splitlines()) == 5
    table = predict(images / "0.png", "--run", away)
    best = export.recorded(away)["mnistctl.epoch"]
    assert table.stdout.splitlines()[0] == f"model: {away} ({run.name}, best, from epoch {best} of 2)"


def test_an_export_mixes_with_runs_in_an_ensemble_but_not_with_its_own_weights(exported, images):
    run, away = exported
    other = run.weights_path("initial")
    mixed = predict(images / "0.png", "--run", other, "--run", away, "--jsonl")
    assert mixed.exit_code == 0, mixed.output
    alone = [json.loads(predict(images / "0.png", "--run", ref, "--jsonl").stdout) for ref in (other, away)]
    probs = {t["digit"]: t["probability"] for t in json.loads(mixed.stdout)["top_k"]}
    for digit, chance in probs.items():  # the average of the two
        each = [next((t["probability"] for t in one["top_k"] if t["digit"] == digit), None) for one in alone]
        if None not in each:
            assert chance == pytest.approx(sum(each) / 2, abs=1e-6)
    same = predict(images / "0.png", "--run", run.path, "--run", away)
    assert same.exception.exit_code == 2 and same.exception.message == f"--run {run.path} and --run {away} are the same weights"


def test_an_export_predicts_without_importing_torch(exported, images):
    code = "import sys; from mnistctl.cli import _run; done = _run(); print('torch imported:', 'torch' in sys.modules); sys.exit(done)"
    done = subprocess.run([sys.executable, "-c", code, "predict", str(images / "0.png"), "--run", str(exported[1]), "--jsonl"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "digit" in json.loads(done.stdout.splitlines()[0]), done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "torch imported: False"


def _without_metadata(source, target):
    model = onnx.load(str(source))
    del model.metadata_props[:]
    onnx.save(model, str(target))


def _foreign(_, target):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 224, 224])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(target))


@pytest.mark.parametrize("name, make, said", [
    ("missing.onnx", None, "no ONNX file {path}"),
    ("junk.onnx", lambda _, target: target.write_text("not a model"), "{path} is not an ONNX model, or it is damaged"),
    ("notes.txt", lambda _, target: target.write_text("not a model"), "{path} is not an ONNX model, or it is damaged"),
    ("bare.onnx", _without_metadata, "{path} is not a model mnistctl export wrote: it has no mnistctl metadata"),
    ("resnet.onnx", _foreign, "{path} is not a model mnistctl export wrote: it takes x: float32 (1, 3, 224, 224) and gives y: float32 (1, 3, 224, 224), "
                              "not images: uint8 (N, 28, 28) and probs: float32 (N, 10)"),
])
def test_a_file_that_is_not_an_export_is_refused_in_one_line_before_any_image(exported, images, tmp_path, name, make, said):
    path = tmp_path / name
    if make is not None:
        make(exported[1], path)
    result = predict(images, "--run", path, "--jsonl")
    error = result.exception
    assert isinstance(error, MnistctlError) and error.exit_code == 2 and result.stdout == "", result.output
    assert error.message.startswith(said.format(path=path)) and "\n" not in error.message and error.hint


def test_a_bad_file_is_one_line_without_a_traceback(tmp_path, images):
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01junk")
    done = subprocess.run([sys.executable, "-m", "mnistctl", "predict", str(images / "0.png"), "--run", str(tmp_path / "junk.onnx")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"error: {tmp_path}/junk.onnx is not an ONNX model, or it is damaged (pass a .onnx file written by mnistctl export, or the run itself)"]


@pytest.mark.parametrize("option, said", [
    (["--weights", "last"], "--weights last contradicts {path}, an export of the best weights"),
    (["--device", "cuda"], "--device cuda does not apply to {path}: onnxruntime runs it on the CPU"),
    (["--explain", "why.png"], "--explain needs a run's PyTorch model, and {path} is an ONNX file"),
])
def test_what_an_export_cannot_do_is_refused(exported, images, option, said):
    result = predict(images / "0.png", "--run", exported[1], *option)
    assert result.exception.exit_code == 2 and result.exception.message == said.format(path=exported[1])


def test_the_same_export_twice_is_refused(exported, images, tmp_path):
    copy = tmp_path / "copy.onnx"
    shutil.copy(exported[1], copy)
    result = predict(images / "0.png", "--run", exported[1], "--run", copy)
    assert result.exception.exit_code == 2 and result.exception.message == f"--run {exported[1]} and --run {copy} are the same weights"
