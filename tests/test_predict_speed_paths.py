"""The fast paths of predict: onnxruntime on a run's export (same predictions as PyTorch, no torch import),
streaming results, and the worker pool giving exactly what one process gives."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.reading import export, predict
from mnistctl.runs import Run


@pytest.fixture(scope="module")
def exported(short_run, mnist, tmp_path_factory):
    """A copy of the short run carrying an ONNX export of its best weights."""
    run = Run(shutil.copytree(short_run.path, tmp_path_factory.mktemp("exported") / short_run.name))
    export.export(run, "onnx", "best", dataset=mnist)
    return run


def test_onnx_member_predicts_like_torch_on_the_whole_test_set(exported, mnist):
    fast = predict.member_from_run(exported)
    slow = predict.member_from_run(exported, onnx=False)
    assert (fast.engine, slow.engine) == ("onnxruntime", "torch") and fast.model is None and slow.model is not None
    images = mnist.test_images.numpy()
    a, b = fast(images), slow(images)
    assert (a.argmax(1) == b.argmax(1)).all()
    assert np.abs(a - b).max() < export.TOLERANCE


def test_onnx_path_never_imports_torch(exported, mnist, tmp_path):
    Image.fromarray(mnist.test_images[0].numpy()).save(tmp_path / "d.png")
    code = "import sys; from mnistctl.cli import _run; _run(); print('torch imported:', 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code, "predict", str(tmp_path / "d.png"), "--run", str(exported.path), "--jsonl"],
                          capture_output=True, text=True, timeout=120, check=False)
    first, last = done.stdout.splitlines()[0], done.stdout.splitlines()[-1]
    assert json.loads(first)["digit"] == int(mnist.test_labels[0]) and last == "torch imported: False", done.stdout + done.stderr


def test_an_export_of_other_weights_is_not_used(exported, tmp_path):
    run = Run(shutil.copytree(exported.path, tmp_path / exported.name))
    shutil.copy(run.weights("initial"), run.weights("best"))  # weights changed after the export
    assert predict.member_from_run(run).engine == "torch"


def test_results_stream_while_sources_are_still_being_listed(exported):
    listed = []

    def sources():
        for i in range(1000):
            listed.append(i)
            yield f"missing-{i}.png"

    results = predict.predict(sources(), [predict.member_from_run(exported)], jobs=1)
    first = next(results)
    assert first.source == "missing-0.png" and len(listed) <= 3 * predict.CHUNK
    assert sum(1 for _ in results) == 999


def test_worker_pool_gives_what_one_process_gives(exported, mnist, tmp_path):
    digits = mnist.test_images[:150].numpy()
    for i, d in enumerate(digits):
        if i % 3 == 0:
            Image.fromarray(d).save(tmp_path / f"{i:03d}-mnist.png")
        elif i % 3 == 1:
            Image.fromarray(255 - d).resize((112, 112)).save(tmp_path / f"{i:03d}-scan.jpg", quality=90)
        else:
            Image.fromarray(255 - d).convert("RGB").save(tmp_path / f"{i:03d}-rgb.png")
    (tmp_path / "075-broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    members = [predict.member_from_run(exported)]
    pooled = list(predict.predict(predict.expand([tmp_path]), members, jobs=2))
    single = list(predict.predict(predict.expand([tmp_path]), members, jobs=1))
    assert len(pooled) == 151 and [r.as_dict() for r in pooled] == [r.as_dict() for r in single]
    broken = next(r for r in pooled if r.source.endswith("075-broken.png"))
    assert "truncated or corrupt (it starts as a PNG file" in broken.error.message
    read = [r.digit for r in pooled if isinstance(r, predict.Prediction)]
    assert (np.array(read) == mnist.test_labels[:150].numpy()).mean() > 0.6  # a weak run: 2 epochs on 1,024 images


def test_jsonl_prints_one_object_per_line_in_order(exported, mnist, tmp_path):
    names = []
    for i in range(3):
        names.append(tmp_path / f"d{i}.png")
        Image.fromarray(mnist.test_images[i].numpy()).save(names[-1])
    result = CliRunner().invoke(app, ["predict", *map(str, names), str(tmp_path / "none.png"), "--run", str(exported.path), "--jsonl"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and [Path(o["image"]).name for o in lines] == ["d0.png", "d1.png", "d2.png", "none.png"]
    assert "does not exist" in lines[3]["error"] and all("digit" in o for o in lines[:3])


def test_the_models_load_while_the_workers_prepare_the_first_images(exported, tmp_path):
    import multiprocessing

    for i in range(3 * predict.CHUNK):
        Image.new("L", (28, 28)).save(tmp_path / f"{i:02d}.png")
    workers_at_load = []

    def load():
        workers_at_load.append(len(multiprocessing.active_children()))
        return [predict.member_from_run(exported)]

    results = list(predict.predict(predict.expand([tmp_path]), load, jobs=2))
    assert workers_at_load == [2] and len(results) == 3 * predict.CHUNK


def test_a_model_that_fails_to_load_leaves_json_output_empty(exported, mnist, tmp_path):
    run = Run(shutil.copytree(exported.path, tmp_path / "damaged"))
    shutil.rmtree(run.path / "exports")
    run.weights("best").write_bytes(run.weights("best").read_bytes()[:500])
    names = []
    for i in range(2 * predict.CHUNK):
        names.append(str(tmp_path / f"d{i}.png"))
        Image.fromarray(mnist.test_images[i].numpy()).save(names[-1])
    for many in (names[:1], names):
        result = CliRunner().invoke(app, ["predict", *many, "--run", str(run.path), "--json"])
        assert result.exit_code == 1 and result.stdout == "" and "unreadable" in str(result.exception), result.stdout


def test_a_worker_killed_mid_folder_is_one_error_not_a_hang(exported, tmp_path, monkeypatch):
    from mnistctl.data import imageprep
    from mnistctl.errors import DataError

    for i in range(6 * predict.CHUNK):
        Image.new("L", (28, 28)).save(tmp_path / f"{i:03d}.png")
    real = imageprep.load_prepared

    def killed_on(source, *args, **kwargs):  # the workers are forked after this patch, so they run it
        if str(source).endswith("040.png"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(imageprep, "load_prepared", killed_on)
    results = predict.predict(predict.expand([tmp_path]), [predict.member_from_run(exported)], jobs=2)
    with pytest.raises(DataError) as info:
        for _ in results:
            pass
    assert info.value.message == "a worker process preparing the images was killed"


def test_the_workers_end_when_the_results_are_no_longer_read(exported, tmp_path):
    import multiprocessing
    import time

    for i in range(8 * predict.CHUNK):
        Image.new("L", (28, 28)).save(tmp_path / f"{i:03d}.png")
    results = predict.predict(predict.expand([tmp_path]), [predict.member_from_run(exported)], jobs=2)
    next(results)
    assert len(multiprocessing.active_children()) == 2
    results.close()  # as the command does on Ctrl-C or SIGTERM
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []
