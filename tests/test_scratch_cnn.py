"""scratch-cnn: every NumPy layer against finite differences and against torch's own layer; the model trains and resumes."""

import pytest
import torch
import torch.nn.functional as F
from mnistctl_scratch_cnn import ops
from mnistctl_scratch_cnn.layers import (
    Conv2dFunction,
    DropoutFunction,
    FlattenFunction,
    LinearFunction,
    MaxPool2dFunction,
    NumpyConv2d,
    NumpyDropout,
    NumpyLinear,
    NumpyMaxPool2d,
    NumpyReLU,
    ReLUFunction,
)
from test_train import StopAt
from torch.autograd.gradcheck import GradcheckError, gradcheck

from mnistctl import runs
from mnistctl.models import build_model, load_model, predict_proba
from mnistctl.reading.visualize import conv_layers
from mnistctl.runs import checkpoint
from mnistctl.training import config as trainconfig
from mnistctl.training.trainer import Trainer

CONV_SHAPES = [((1, 1), (0, 0)), ((1, 1), (1, 1)), ((2, 2), (1, 1)), ((2, 1), (0, 2))]
POOLS = [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (1, 2))]


def double(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64, requires_grad=True)


def grads(out, inputs, seed=1):
    """Gradients of a fixed random projection of ``out`` with respect to ``inputs``."""
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad((out * weights).sum(), inputs)


def assert_same_forward_and_backward(ours, theirs, inputs, atol=1e-5):
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, atol=atol, rtol=1e-4)
    for a, b in zip(grads(ours, inputs), grads(theirs, inputs)):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-4)


# Gradients against central finite differences, in float64.


@pytest.mark.parametrize("stride,padding", CONV_SHAPES)
def test_conv_gradients_match_finite_differences(stride, padding):
    x, w, b = double(2, 3, 7, 6), double(4, 3, 3, 2, seed=1), double(4, seed=2)
    assert gradcheck(lambda x, w, b: Conv2dFunction.apply(x, w, b, stride, padding), (x, w, b))


def test_conv_without_bias_gradients():
    assert gradcheck(lambda x, w: Conv2dFunction.apply(x, w, None, (1, 1), (1, 1)), (double(1, 2, 5, 5), double(3, 2, 3, 3, seed=1)))


@pytest.mark.parametrize("kernel,stride", POOLS)
def test_max_pool_gradients_match_finite_differences(kernel, stride):
    assert gradcheck(lambda x: MaxPool2dFunction.apply(x, kernel, stride), (double(2, 3, 7, 8),))


def test_relu_flatten_linear_dropout_gradients_match_finite_differences():
    x = double(4, 2, 3, 3)
    keep = torch.rand(4, 2, 3, 3, generator=torch.Generator().manual_seed(3)) >= 0.4
    assert gradcheck(ReLUFunction.apply, (x,))
    assert gradcheck(FlattenFunction.apply, (x,))
    assert gradcheck(lambda x: DropoutFunction.apply(x, keep, 0.4), (x,))
    assert gradcheck(LinearFunction.apply, (double(5, 6), double(3, 6, seed=1), double(3, seed=2)))


def test_a_broken_backward_fails_the_gradient_check(monkeypatch):
    """The finite-difference checks above can fail: drop the last kernel offset from col2im."""
    real_offsets = ops._offsets
    monkeypatch.setattr(ops, "_offsets", lambda *a: list(real_offsets(*a))[:-1])
    x, w = double(1, 2, 5, 5), double(3, 2, 3, 3, seed=1)
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: Conv2dFunction.apply(x, w, None, (1, 1), (1, 1)), (x,))


# Forward and backward against torch's own layers, same weights, float32.


@pytest.mark.parametrize("stride,padding", CONV_SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_matches_torch(stride, padding, channels_last):
    torch.manual_seed(0)
    ours = NumpyConv2d(3, 5, 3, stride=stride, padding=padding)
    x = torch.randn(4, 3, 12, 11, requires_grad=True)
    inputs = (x, ours.weight, ours.bias)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    out = ours(xin)
    assert isinstance(ours, torch.nn.Conv2d) and ours.weight.grad is None
    assert_same_forward_and_backward(out, F.conv2d(xin, ours.weight, ours.bias, stride, padding), inputs)


def test_conv_on_images_without_grad_still_trains_its_weights():
    torch.manual_seed(0)
    ours = NumpyConv2d(1, 4, 3, padding=1)
    x = torch.randn(2, 1, 8, 8)
    assert_same_forward_and_backward(ours(x), F.conv2d(x, ours.weight, ours.bias, padding=1), (ours.weight, ours.bias))


@pytest.mark.parametrize("kernel,stride", POOLS)
def test_max_pool_matches_torch(kernel, stride):
    x = torch.randn(3, 4, 9, 10, requires_grad=True)
    assert_same_forward_and_backward(NumpyMaxPool2d(kernel, stride)(x), F.max_pool2d(x, kernel, stride), (x,))


def test_relu_linear_flatten_match_torch():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3, 4, requires_grad=True)
    assert_same_forward_and_backward(NumpyReLU()(x), F.relu(x), (x,))
    flat = FlattenFunction.apply(x.transpose(2, 3))
    assert_same_forward_and_backward(flat, x.transpose(2, 3).flatten(1), (x,))
    linear = NumpyLinear(24, 7)
    h = torch.randn(6, 24, requires_grad=True)
    assert_same_forward_and_backward(linear(h), F.linear(h, linear.weight, linear.bias), (h, linear.weight, linear.bias))


def test_dropout_draws_from_torch_rng_and_honours_eval():
    layer = NumpyDropout(0.5)
    x = torch.randn(64, 32, requires_grad=True)
    torch.manual_seed(7)
    a = layer(x)
    torch.manual_seed(7)
    b = layer(x)
    torch.manual_seed(7)
    keep = torch.rand(x.shape) >= 0.5
    torch.testing.assert_close(a, b)
    assert_same_forward_and_backward(a, x * keep * 2.0, (x,))
    assert 0.3 < keep.float().mean() < 0.7
    assert layer.eval()(x) is x


def test_dtypes_bf16_in_float32_out_and_float64_kept():
    layer = NumpyConv2d(1, 2, 3, padding=1)
    x = torch.randn(2, 1, 6, 6)
    assert layer(x.bfloat16()).dtype == torch.float32
    assert layer.double()(x.double()).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer.float()(x).dtype == torch.float32


# The model in the real engine.


def test_conv_layers_are_found_and_options_shape_the_model():
    config = trainconfig.resolve({"arch": "scratch-cnn", "arch_options": {"conv_layers": 3, "channels": 4, "kernel_size": 5}})
    model = build_model(config)
    assert [m.out_channels for m in conv_layers(model).values()] == [4, 8, 16]
    assert all(m.kernel_size == (5, 5) for m in conv_layers(model).values())
    with torch.inference_mode():
        assert model.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)


QUICK = {"arch": "scratch-cnn", "epochs": 2, "limit": 2048, "batch_size": 128, "val_split": 1000, "log_every": 4,
         "optimizer": "adam", "scheduler": "none", "precision": "fp32"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    trainer = Trainer(trainconfig.resolve({**QUICK, "name": "whole"}), None, tmp_path_factory.mktemp("runs"), data_dir)
    return trainer, trainer.run()


def test_short_training_run_learns(trained):
    _, summary = trained
    assert summary["status"] == "finished"
    assert summary["test_acc"] > 0.85, summary


def test_checkpoint_roundtrip_gives_the_same_predictions(trained, mnist):
    trainer, _ = trained
    run = runs.Run(trainer.run_dir)
    tensors, _ = checkpoint.load(run.weights("last"))
    assert set(tensors) == set(trainer.model.state_dict())
    x = (mnist.test_images[:64].float() / 255).unsqueeze(1)
    loaded = load_model(run, "last")
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), trainer.model.eval()(x), rtol=0, atol=0)


def test_resume_after_a_stop_is_bit_exact(trained, tmp_path, data_dir):
    whole, _ = trained
    stop = StopAt(2, 3)
    broken = stop.trainer = Trainer(trainconfig.resolve({**QUICK, "name": "broken"}), stop, tmp_path, data_dir)
    assert broken.run()["status"] == "interrupted"
    assert Trainer.resume(runs.Run(broken.run_dir)).run()["status"] == "finished"
    a, _ = checkpoint.load(whole.run_dir / "weights" / "last.safetensors")
    b, _ = checkpoint.load(broken.run_dir / "weights" / "last.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_scratch_cnn_computes_in_fp32_so_auto_records_fp32_where_the_cpu_has_bf16(monkeypatch, tmp_path, data_dir):
    from mnistctl.plugins import archs

    monkeypatch.setattr(trainconfig, "cpu_has_bf16", lambda: True)
    assert archs().get("scratch-cnn").precisions == ("fp32",)
    trainer = Trainer(trainconfig.resolve({**QUICK, "precision": "auto", "name": "auto"}), None, tmp_path, data_dir)
    trainer.prepare()
    trainer.abandon()
    assert trainer.config["precision"] == "fp32"  # written to config.json, which list, compare and watch read


def test_scratch_cnn_with_bf16_is_one_line_of_error_before_any_work(tmp_path):
    from test_cli import run_mnistctl

    result = run_mnistctl("train", "--arch", "scratch-cnn", "--precision", "bf16", "--epochs", "1", "--limit", "256", MNISTCTL_RUNS_DIR=str(tmp_path / "runs"))
    assert (result.returncode, result.stderr.splitlines()) == (
        2, ["error: the architecture 'scratch-cnn' computes in fp32 only, not bf16 (use --precision fp32 or auto)"])
    assert not (tmp_path / "runs").exists()


def test_a_run_recorded_as_bf16_before_scratch_cnn_said_fp32_resumes_as_recorded(trained, tmp_path, data_dir):
    import json

    whole, _ = trained
    stop = StopAt(2, 3)
    old = stop.trainer = Trainer(trainconfig.resolve({**QUICK, "name": "old"}), stop, tmp_path, data_dir)
    assert old.run()["status"] == "interrupted"
    recorded = json.loads(old.run_dir.joinpath("config.json").read_text())
    old.run_dir.joinpath("config.json").write_text(json.dumps({**recorded, "precision": "bf16"}))
    assert Trainer.resume(runs.Run(old.run_dir)).run()["status"] == "finished"
    assert json.loads(old.run_dir.joinpath("config.json").read_text())["precision"] == "bf16"
    a, _ = checkpoint.load(whole.run_dir / "weights" / "last.safetensors")
    b, _ = checkpoint.load(old.run_dir / "weights" / "last.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)  # autocast leaves NumPy's float32 arithmetic as it is


def test_export_traces_torch_layers_in_place_of_numpy_and_checks_them_against_it(trained, mnist, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from mnistctl.reading import export

    trainer, _ = trained
    run = runs.Run(trainer.run_dir)
    path, parity = export.export(run, "onnx", "best", tmp_path / "scratch.onnx", dataset=mnist)
    assert parity.ok and parity.images == 10_000
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs = session.run(["probs"], {"images": mnist.test_images[:300].numpy()})[0]
    expected = predict_proba(load_model(run), mnist.test_images[:300], *run.normalization).numpy()
    assert (probs.argmax(1) == expected.argmax(1)).all() and abs(probs - expected).max() < export.TOLERANCE
