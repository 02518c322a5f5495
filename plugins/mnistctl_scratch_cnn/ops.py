"""The layers' arithmetic in plain NumPy: each forward returns what its backward needs.

Images are (N, C, H, W) arrays of any strides; the work is done in (N, H, W, C) order, so the
results are channels-last views, which torch takes as they are.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(x_nhwc, kernel, stride):
    """Every (kh, kw) window of the (N, H, W, C) images at the stride: a view (N, Ho, Wo, C, kh, kw)."""
    (kh, kw), (sh, sw) = kernel, stride
    return sliding_window_view(x_nhwc, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]


def _offsets(kernel, stride, out_hw):
    """For each kernel offset (i, j): the slices of the input rows and columns that offset touches."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def conv2d_forward(x, w, b, stride, padding):
    """Cross-correlation by im2col: one matrix product of the unrolled windows with the filters.

    A window is unrolled as (kh, kw, C), so each copied run is a pixel's C contiguous channels.
    """
    ph, pw = padding
    x_nhwc = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    out_c = w.shape[0]
    win = _windows(x_nhwc, w.shape[2:], stride).transpose(0, 1, 2, 4, 5, 3)
    n, ho, wo = win.shape[:3]
    cols = win.reshape(n * ho * wo, -1)
    out = cols @ _unrolled(w).T
    if b is not None:
        out += b
    return out.reshape(n, ho, wo, out_c).transpose(0, 3, 1, 2), (cols, x_nhwc.shape)


def conv2d_backward(dout, w, saved, stride, padding, input_grad=True):
    """Gradients of input, weights and bias; the input's by col2im, adding back each kernel offset.

    The input's gradient is None when ``input_grad`` is False (the images of the first layer).
    """
    cols, padded_shape = saved
    out_c, in_c, kh, kw = w.shape
    n, _, ho, wo = dout.shape
    d = dout.transpose(0, 2, 3, 1).reshape(-1, out_c)
    dw = (d.T @ cols).reshape(out_c, kh, kw, in_c).transpose(0, 3, 1, 2)
    db = d.sum(axis=0)
    if not input_grad:
        return None, dw, db
    dcols = (d @ _unrolled(w)).reshape(n, ho, wo, kh, kw, in_c)
    dx = np.zeros(padded_shape, dtype=dout.dtype)
    for i, j, rows, columns in _offsets((kh, kw), stride, (ho, wo)):
        dx[:, rows, columns, :] += dcols[:, :, :, i, j]
    ph, pw = padding
    dx = dx[:, ph : dx.shape[1] - ph, pw : dx.shape[2] - pw, :]
    return dx.transpose(0, 3, 1, 2), dw, db


def _unrolled(w):
    """Filters (O, C, kh, kw) as rows in the windows' (kh, kw, C) order."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def max_pool2d_forward(x, kernel, stride):
    """The largest value of each window, and which window position held it."""
    win = _windows(x.transpose(0, 2, 3, 1), kernel, stride)
    flat = win.reshape(*win.shape[:4], -1)
    where = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, where[..., None], axis=-1)[..., 0]
    return out.transpose(0, 3, 1, 2), (where, x.shape)


def max_pool2d_backward(dout, saved, kernel, stride):
    """Each output's gradient goes to the input position that was the window's maximum."""
    where, (n, c, h, w) = saved
    d = dout.transpose(0, 2, 3, 1)
    dx = np.zeros((n, h, w, c), dtype=dout.dtype)
    for i, j, rows, columns in _offsets(kernel, stride, where.shape[1:3]):
        dx[:, rows, columns, :] += np.where(where == i * kernel[1] + j, d, 0)
    return dx.transpose(0, 3, 1, 2)


def relu_forward(x):
    return np.maximum(x, 0), x > 0


def relu_backward(dout, positive):
    return dout * positive


def dropout_forward(x, keep, p):
    """Zeroes the dropped units (``keep`` is False) and scales the kept ones by 1 / (1 - p)."""
    scale = np.where(keep, 1.0 / (1.0 - p), 0.0).astype(x.dtype) if p < 1 else np.zeros(x.shape, x.dtype)
    return x * scale, scale


def dropout_backward(dout, scale):
    return dout * scale


def linear_forward(x, w, b):
    out = x @ w.T
    if b is not None:
        out += b
    return out


def linear_backward(dout, x, w):
    return dout @ w, dout.T @ x, dout.sum(axis=0)
