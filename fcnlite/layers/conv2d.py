"""Conv2d: cross-correlation with a learned kernel, by im2col + a matrix product (one per band of rows).

    x    (N, C, H, W)
    W    (O, C, kh, kw),  b (O,)
    y    (N, O, H', W'),  H' = (H + 2p - kh) // s + 1,  W' likewise

    y[n, o, oy, ox] = b[o] + sum_{c,i,j} W[o, c, i, j] * xpad[n, c, oy*s + i, ox*s + j]

With cols[n] = im2col(xpad[n]) of shape (C*kh*kw, H'*W'), Wm = W.reshape(O, C*kh*kw)
and dy[n] seen as (O, H'*W'):

    forward     y[n]  = Wm @ cols[n] + b
    backward    dW   += sum_n dy[n] @ cols[n].T        (O, C*kh*kw)
                db   += sum_{n, oy, ox} dy[n, :, oy, ox]
                dx[n] = col2im(Wm.T @ dy[n])           (the transposed convolution of dy)

xpad (x with p zeros on each side) is never made: im2col writes the zeros that
fall on the padding itself, and col2im drops what falls there.

The patch matrix is rebuilt in backward rather than kept from forward: it is
about kh*kw times larger than the input (stride 1, same padding; conv1_1's 100-pixel
padding makes it 19x), and rebuilding it costs one copy.

Setting layer.input_grad = False skips dx (backward returns None; VGG16.set_input_grad,
which the Trainer calls, does it for conv1_1): the first layer of a network needs no
gradient for the image, and at conv1_1 (3 input channels, the reference's
100-pixel padding) that is a large share of the layer's work.

The products themselves are two functions, convolve and convolve_backward, which
ConvTranspose2d shares: it computes a transposed convolution as a convolution.
On the CPU, 3x3 stride-1 layers with many channels compute y, dx and dW in
Winograd's form instead (winograd.py): the same sums with 2.25x fewer multiplications.
"""
import numpy

from ..backend import array_module
from .base import Layer, grad_enabled
from . import winograd
from .im2col import col2im_add, conv_output_size, im2col, row_bands, workspace


def msra_std(fan_in):
    """He et al. (2015): std = sqrt(2 / fan_in) keeps activations' scale through ReLU layers."""
    return float(numpy.sqrt(2.0 / fan_in))


# On the CPU dW's product is made in blocks of output channels whose temporary is at most this
# large: fc6's whole (4096, 25088) product is a 392 MiB temporary, made while the step's memory
# is near its peak. The blocks take the step's peak from 2.40 to 2.20 GiB and cost under 1% of
# its time (BENCHMARKS.md). The GPU makes the product whole: each block would cost two more
# launches, and its memory is within the target.
WEIGHT_GRAD_BLOCK_BYTES = 32 * 2**20


def add_weight_grad(grad_w, dy, cols):
    """grad_w (O, K) += dy (O, P) @ cols (K, P).T

    When P (output pixels) is long and K is not tiny, OpenBLAS runs cols @ dy.T
    (then transposed) 3-10x faster than dy @ cols.T, measured on this project's
    CPU machines; the two are the same product.
    """
    out_c, patch_rows = grad_w.shape
    block = out_c
    if array_module(grad_w) is numpy:
        block = max(1, WEIGHT_GRAD_BLOCK_BYTES // (patch_rows * grad_w.itemsize))
    for o0 in range(0, out_c, block):
        dy_block = dy[o0:o0 + block]
        if cols.shape[1] > cols.shape[0] >= 64:
            grad_w[o0:o0 + block] += (cols @ dy_block.T).T
        else:
            grad_w[o0:o0 + block] += dy_block @ cols.T


def patch_bands(x, kernel_h, kernel_w, out_h, out_w, weights):
    """The bands of output rows (row_bands) that a convolution of x (N, C, H, W) builds its patch
    matrix in, and the shared workspace buffer that holds one band's patch matrix."""
    # every band's products read all of W and update all of dW: bands smaller than W would
    # cost more passes over it than they save (fc6 at VOC size: 411 MB of weights, 19 MB of patches)
    xp = array_module(x)
    patch_rows = x.shape[1] * kernel_h * kernel_w
    bands = row_bands(out_h, patch_rows * out_w * x.dtype.itemsize, xp, at_least=weights.nbytes)
    return bands, workspace.get(xp, patch_rows * bands[0][1] * out_w, x.dtype)


def is_pointwise(kernel_h, kernel_w, stride, padding):
    # a 1x1, stride-1, unpadded convolution is a plain matrix product: no patches needed
    return kernel_h == kernel_w == 1 and stride == 1 and padding == 0


def convolve(x, weights, kernel_h, kernel_w, stride=1, padding=0):
    """y (N, O, H', W'): x (N, C, H, W) convolved with weights (O, C*kh*kw), without a bias."""
    xp = array_module(x)
    n, channels, h, w = x.shape
    out_c = weights.shape[0]
    out_h, out_w = conv_output_size(h, kernel_h, stride, padding), conv_output_size(w, kernel_w, stride, padding)
    if is_pointwise(kernel_h, kernel_w, stride, padding):
        return xp.matmul(weights, x.reshape(n, channels, h * w)).reshape(n, out_c, h, w)
    if winograd.applies(x, kernel_h, kernel_w, stride, padding, out_c):
        return winograd.convolve3x3(x, weights.reshape(out_c, channels, 3, 3), padding)
    y = xp.empty((n, out_c, out_h, out_w), dtype=x.dtype)
    bands, buffer = patch_bands(x, kernel_h, kernel_w, out_h, out_w, weights)
    for image in range(n):
        for row0, rows in bands:
            cols = im2col(x[image], kernel_h, kernel_w, stride, row0, rows, out_w, buffer, padding)
            if rows == out_h:   # one band: the product can land in y without a temporary
                xp.matmul(weights, cols, out=y[image].reshape(out_c, out_h * out_w))
            else:
                y[image, :, row0:row0 + rows] = (weights @ cols).reshape(out_c, rows, out_w)
    return y


def convolve_backward(x, dy, weights, grad_w, kernel_h, kernel_w, stride=1, padding=0, input_grad=True):
    """For y = convolve(x, weights, ...): add dL/dweights into grad_w (O, C*kh*kw), unless grad_w is
    None, and return dL/dx (None when input_grad is False)."""
    xp = array_module(dy)
    n, channels, h, w = x.shape
    _, out_c, out_h, out_w = dy.shape
    if is_pointwise(kernel_h, kernel_w, stride, padding):
        x = x.reshape(n, channels, h * w)
        dy = dy.reshape(n, out_c, h * w)
        if grad_w is not None:
            for image in range(n):
                add_weight_grad(grad_w, dy[image], x[image])
        return xp.matmul(weights.T, dy).reshape(n, channels, h, w) if input_grad else None
    winograd_dx = input_grad and winograd.applies(dy, kernel_h, kernel_w, stride, kernel_h - 1 - padding, channels)
    if winograd_dx:
        # dx is dy convolved with the kernel flipped and its channel axes swapped, padded by
        # 2 - padding: a 3x3, stride-1 convolution again
        flipped = weights.reshape(out_c, channels, 3, 3)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        dx = winograd.convolve3x3(dy, flipped, 2 - padding)
    else:
        dx = xp.zeros_like(x) if input_grad else None   # col2im adds into it, band by band
    patches_dw = grad_w is not None
    if patches_dw and winograd.applies(x, kernel_h, kernel_w, stride, padding, out_c):
        grad_w += winograd.weight_grad3x3(x, dy, padding).reshape(out_c, -1)
        patches_dw = False
    col2im_dx = input_grad and not winograd_dx
    if not (patches_dw or col2im_dx):
        return dx
    bands, buffer = patch_bands(x, kernel_h, kernel_w, out_h, out_w, weights)
    for image in range(n):
        for row0, rows in bands:
            dy_band = dy[image, :, row0:row0 + rows].reshape(out_c, rows * out_w)
            size = channels * kernel_h * kernel_w * rows * out_w
            if patches_dw:
                cols = im2col(x[image], kernel_h, kernel_w, stride, row0, rows, out_w, buffer, padding)
                add_weight_grad(grad_w, dy_band, cols)
            if col2im_dx:   # the patch matrix's gradient, in the patch matrix's memory (no longer needed)
                dcols = xp.matmul(weights.T, dy_band, out=buffer[:size].reshape(-1, rows * out_w))
                col2im_add(dcols, dx[image], kernel_h, kernel_w, stride, row0, rows, out_w, padding)
    return dx


class Conv2d(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, dtype=numpy.float32):
        super().__init__(dtype)
        kernel_h, kernel_w = (kernel_size, kernel_size) if numpy.isscalar(kernel_size) else kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_h, self.kernel_w = kernel_h, kernel_w
        self.stride, self.padding = stride, padding
        self.input_grad = True
        self._x = None   # forward's input, kept for backward
        fan_in = in_channels * kernel_h * kernel_w
        from .. import rng
        weights = rng.normal(numpy, (out_channels, in_channels, kernel_h, kernel_w), msra_std(fan_in), self.dtype)
        self.add_param("W", weights)
        if bias:
            self.add_param("b", numpy.zeros(out_channels, dtype=self.dtype))

    def output_shape(self, input_shape):
        n, _, h, w = input_shape
        return (n, self.out_channels,
                conv_output_size(h, self.kernel_h, self.stride, self.padding),
                conv_output_size(w, self.kernel_w, self.stride, self.padding))

    def forward(self, x):
        self.check_channels(x, self.in_channels)
        _, _, out_h, out_w = self.output_shape(x.shape)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"Conv2d: input {x.shape[2]}x{x.shape[3]} is smaller than the "
                             f"{self.kernel_h}x{self.kernel_w} kernel")
        self._x = x if grad_enabled() else None
        y = convolve(x, self.params["W"].reshape(self.out_channels, -1), self.kernel_h, self.kernel_w,
                     self.stride, self.padding)
        if "b" in self.params:
            y += self.params["b"].reshape(1, self.out_channels, 1, 1)
        return y

    def backward(self, dy):
        x = self.kept(self._x)
        self.check_gradient(dy, self.output_shape(x.shape))
        if "b" in self.params:
            self.grads["b"] += dy.sum(axis=(0, 2, 3))
        return convolve_backward(x, dy, self.params["W"].reshape(self.out_channels, -1),
                                 self.grads["W"].reshape(self.out_channels, -1), self.kernel_h, self.kernel_w,
                                 self.stride, self.padding, self.input_grad)
