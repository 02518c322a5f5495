"""The NumPy layers as torch autograd Functions, and the nn.Modules that hold their weights.

A Function's forward turns tensors into NumPy arrays (float32, or float64 when given float64),
runs ``ops``, and returns tensors on the input's device; its backward does the same with the
gradients. The modules subclass torch's own layers, so they keep their parameters, initialisation
and attributes, and code that looks for ``nn.Conv2d`` finds the convolutions. While torch traces the
model (ONNX export, torch.export, torch.compile), which NumPy code cannot pass, torch's own layer
computes the same function in its place; export then checks the traced model against the NumPy one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import _pair

from mnistctl_scratch_cnn import ops


def compute_dtype(*tensors) -> torch.dtype:
    """float64 when any input is float64 (gradient checks), else float32 (bf16 autocast inputs too)."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def to_numpy(t, dtype):
    return None if t is None else t.detach().to("cpu", dtype).numpy()


def to_torch(a, device):
    return torch.from_numpy(np.asarray(a)).to(device)


def grads_like(arrays, inputs):
    """Gradient tensors on the device and in the dtype of the inputs they belong to (None stays None)."""
    return tuple(None if a is None or t is None else torch.from_numpy(np.asarray(a)).to(t.device, t.dtype) for a, t in zip(arrays, inputs))


def meta(*tensors):
    """What a backward needs to know of its inputs: an empty tensor of each one's dtype and device."""
    return tuple(None if t is None else t.new_empty(0) for t in tensors)


class Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        dtype = compute_dtype(x, weight, bias)
        ctx.dtype, ctx.w = dtype, to_numpy(weight, dtype)
        out, ctx.saved = ops.conv2d_forward(to_numpy(x, dtype), ctx.w, to_numpy(bias, dtype), stride, padding)
        ctx.inputs, ctx.stride, ctx.padding = meta(x, weight, bias), stride, padding
        return to_torch(out, x.device)

    @staticmethod
    def backward(ctx, grad):
        grads = ops.conv2d_backward(to_numpy(grad, ctx.dtype), ctx.w, ctx.saved, ctx.stride, ctx.padding, ctx.needs_input_grad[0])
        return *grads_like(grads, ctx.inputs), None, None


class MaxPool2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, stride):
        dtype = compute_dtype(x)
        out, ctx.saved = ops.max_pool2d_forward(to_numpy(x, dtype), kernel, stride)
        ctx.dtype, ctx.inputs, ctx.kernel, ctx.stride = dtype, meta(x), kernel, stride
        return to_torch(out, x.device)

    @staticmethod
    def backward(ctx, grad):
        dx = ops.max_pool2d_backward(to_numpy(grad, ctx.dtype), ctx.saved, ctx.kernel, ctx.stride)
        return *grads_like([dx], ctx.inputs), None, None


class ReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        dtype = compute_dtype(x)
        out, ctx.positive = ops.relu_forward(to_numpy(x, dtype))
        ctx.dtype, ctx.inputs = dtype, meta(x)
        return to_torch(out, x.device)

    @staticmethod
    def backward(ctx, grad):
        return grads_like([ops.relu_backward(to_numpy(grad, ctx.dtype), ctx.positive)], ctx.inputs)


class DropoutFunction(torch.autograd.Function):
    """``keep`` is a boolean mask drawn with torch's generator, so seeds and resumed runs repeat it."""

    @staticmethod
    def forward(ctx, x, keep, p):
        dtype = compute_dtype(x)
        out, ctx.scale = ops.dropout_forward(to_numpy(x, dtype), keep.cpu().numpy(), p)
        ctx.dtype, ctx.inputs = dtype, meta(x)
        return to_torch(out, x.device)

    @staticmethod
    def backward(ctx, grad):
        return *grads_like([ops.dropout_backward(to_numpy(grad, ctx.dtype), ctx.scale)], ctx.inputs), None, None


class FlattenFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        dtype = compute_dtype(x)
        ctx.dtype, ctx.shape, ctx.inputs = dtype, tuple(x.shape), meta(x)
        return to_torch(to_numpy(x, dtype).reshape(x.shape[0], -1), x.device)

    @staticmethod
    def backward(ctx, grad):
        return grads_like([to_numpy(grad, ctx.dtype).reshape(ctx.shape)], ctx.inputs)


class LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        dtype = compute_dtype(x, weight, bias)
        ctx.dtype, ctx.inputs = dtype, meta(x, weight, bias)
        ctx.x, ctx.w = to_numpy(x, dtype), to_numpy(weight, dtype)
        return to_torch(ops.linear_forward(ctx.x, ctx.w, to_numpy(bias, dtype)), x.device)

    @staticmethod
    def backward(ctx, grad):
        return grads_like(ops.linear_backward(to_numpy(grad, ctx.dtype), ctx.x, ctx.w), ctx.inputs)


def traced() -> bool:
    return torch.compiler.is_compiling()


class NumpyConv2d(nn.Conv2d):
    """nn.Conv2d (weights, init, attributes) whose forward is the NumPy im2col convolution."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("NumpyConv2d supports only groups=1, dilation=1 and numeric zero padding")

    def forward(self, x):
        if traced():
            return super().forward(x)
        return Conv2dFunction.apply(x, self.weight, self.bias, self.stride, self.padding)


class NumpyMaxPool2d(nn.MaxPool2d):
    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)

    def forward(self, x):
        if traced():
            return super().forward(x)
        return MaxPool2dFunction.apply(x, _pair(self.kernel_size), _pair(self.stride))


class NumpyReLU(nn.ReLU):
    def forward(self, x):
        if traced():
            return super().forward(x)
        return ReLUFunction.apply(x)


class NumpyDropout(nn.Dropout):
    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if traced():
            return super().forward(x)
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return DropoutFunction.apply(x, keep, self.p)


class NumpyFlatten(nn.Flatten):
    def forward(self, x):
        if traced():
            return super().forward(x)
        return FlattenFunction.apply(x)


class NumpyLinear(nn.Linear):
    def forward(self, x):
        if traced():
            return super().forward(x)
        return LinearFunction.apply(x, self.weight, self.bias)
