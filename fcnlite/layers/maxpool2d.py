"""MaxPool2d with Caffe's ceil-mode output size, as the reference FCN uses.

    x    (N, C, H, W)
    y    (N, C, H', W'),  H' = ceil((H - k) / s) + 1   (ceil_mode=True; floor with ceil_mode=False)

    y[n, c, oy, ox] = max over the k x k window starting at (oy*s, ox*s)

In ceil mode the last window may hang over the bottom/right edge; the part
outside the image is ignored (padded with -inf). With conv1's 100-pixel
padding, a 500-pixel side goes 698 -> 349 -> 175 -> 88 -> 44 -> 22.

    backward    dx[window's argmax] += dy[n, c, oy, ox]     (all other pixels get 0)

Forward remembers, per output pixel, which of the k*k window offsets won
(self._argmax, uint8); ties go to the first offset in row-major order.
"""
import numpy

from ..backend import array_module
from .base import Layer, grad_enabled
from .im2col import conv_output_size


class MaxPool2d(Layer):
    def __init__(self, kernel_size=2, stride=2, ceil_mode=True, dtype=numpy.float32):
        super().__init__(dtype)
        self.kernel, self.stride, self.ceil_mode = kernel_size, stride, ceil_mode

    def output_shape(self, input_shape):
        n, c, h, w = input_shape
        k, s = self.kernel, self.stride
        return (n, c, conv_output_size(h, k, s, 0, self.ceil_mode), conv_output_size(w, k, s, 0, self.ceil_mode))

    def _windows(self, x, out_h, out_w):
        """Yield (offset index, strided view) for each of the k*k window offsets."""
        k, s = self.kernel, self.stride
        for i in range(k):
            for j in range(k):
                yield i * k + j, x[:, :, i: i + s * out_h: s, j: j + s * out_w: s]

    def _pad(self, x, out_h, out_w):
        xp = array_module(x)
        n, c, h, w = x.shape
        need_h, need_w = (out_h - 1) * self.stride + self.kernel, (out_w - 1) * self.stride + self.kernel
        if need_h <= h and need_w <= w:
            return x
        padded = xp.full((n, c, max(h, need_h), max(w, need_w)), -numpy.inf, dtype=x.dtype)
        padded[:, :, :h, :w] = x
        return padded

    def forward(self, x):
        xp = array_module(x)
        _, _, out_h, out_w = self.output_shape(x.shape)
        self._input_shape = x.shape
        if xp is not numpy:   # one CuPy kernel instead of k*k strided passes
            from . import cuda_kernels
            y, argmax = cuda_kernels.maxpool_forward(xp.ascontiguousarray(x), out_h, out_w, self.kernel, self.stride)
            self._argmax = argmax if grad_enabled() else None
            return y
        padded = self._pad(x, out_h, out_w)
        y = None
        argmax = xp.zeros(x.shape[:2] + (out_h, out_w), dtype=numpy.uint8) if grad_enabled() else None
        for offset, window in self._windows(padded, out_h, out_w):
            if y is None:
                y = window.copy()
                continue
            if argmax is not None:
                better = window > y          # strict: ties keep the earlier offset
                xp.copyto(argmax, numpy.uint8(offset), where=better)
            xp.maximum(y, window, out=y)
        self._argmax = argmax
        return y

    def backward(self, dy):
        xp = array_module(dy)
        n, c, h, w = self._input_shape
        out_h, out_w = dy.shape[2:]
        if xp is not numpy:
            from . import cuda_kernels
            return cuda_kernels.maxpool_backward(dy, self._argmax, self._input_shape, self.kernel, self.stride)
        need_h, need_w = (out_h - 1) * self.stride + self.kernel, (out_w - 1) * self.stride + self.kernel
        dx = xp.zeros((n, c, max(h, need_h), max(w, need_w)), dtype=dy.dtype)
        for offset, window in self._windows(dx, out_h, out_w):
            hit = self._argmax == offset
            if self.stride >= self.kernel:   # windows do not overlap: each pixel is written once
                xp.copyto(window, dy, where=hit)
            else:
                window += dy * hit
        return dx[:, :, :h, :w]
