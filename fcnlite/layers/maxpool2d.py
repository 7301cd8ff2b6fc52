"""MaxPool2d with Caffe's ceil-mode output size, as the reference FCN uses.

    x    (N, C, H, W)
    y    (N, C, H', W'),  H' = ceil((H - k) / s) + 1   (ceil_mode=True; floor with ceil_mode=False)
                          less 1 where that last window would start at or past H, which only a
                          stride larger than the kernel can do (PyTorch drops that window too;
                          unpadded Caffe keeps it, all -inf): im2col.conv_output_size

    y[n, c, oy, ox] = max over the k x k window starting at (oy*s, ox*s)

In ceil mode the last window may hang over the bottom/right edge; the part
outside the image is ignored (as if padded with -inf). With conv1's 100-pixel
padding, a 500-pixel side goes 698 -> 349 -> 175 -> 88 -> 44 -> 22.

    backward    dx[window's argmax] += dy[n, c, oy, ox]     (all other pixels get 0)

Forward remembers, per output pixel, which of the k*k window offsets won
(self._argmax, uint8); ties go to the first offset in row-major order.

On the CPU both passes take a block of channels at a time (its k*k strided passes
then read it from cache), the blocks shared among the host's threads.
"""
import numpy

from ..backend import array_module, split_over_threads
from .base import Layer, grad_enabled
from .im2col import conv_output_size


class MaxPool2d(Layer):
    def __init__(self, kernel_size=2, stride=2, ceil_mode=True, dtype=numpy.float32):
        super().__init__(dtype)
        self.kernel, self.stride, self.ceil_mode = kernel_size, stride, ceil_mode
        self._argmax = None        # forward's winning offsets, kept for backward
        self._input_shape = None   # and x's shape

    def output_shape(self, input_shape):
        n, c, h, w = input_shape
        k, s = self.kernel, self.stride
        return (n, c, conv_output_size(h, k, s, 0, self.ceil_mode), conv_output_size(w, k, s, 0, self.ceil_mode))

    def _windows(self, x, out_h, out_w):
        """Yield (offset index, view) for each of the k*k window offsets (i, j): the view holds pixel
        (oy*s + i, ox*s + j) at [..., oy, ox]. In ceil mode the last windows may hang over the edge;
        an offset's view then stops at the edge, short of (out_h, out_w), and the missing pixels
        simply take no part in the max."""
        k, s = self.kernel, self.stride
        for i in range(k):
            for j in range(k):
                yield i * k + j, x[:, :, i::s, j::s][:, :, :out_h, :out_w]

    def forward(self, x):
        self.check_batch(x)
        xp = array_module(x)
        n, c, _, _ = x.shape
        _, _, out_h, out_w = self.output_shape(x.shape)
        self._input_shape = x.shape
        if xp is not numpy:   # one CuPy kernel instead of k*k strided passes
            from . import cuda_kernels
            y, argmax = cuda_kernels.maxpool_forward(xp.ascontiguousarray(x), out_h, out_w, self.kernel, self.stride)
            self._argmax = argmax if grad_enabled() else None
            return y
        y = numpy.empty((n, c, out_h, out_w), dtype=x.dtype)
        argmax = numpy.zeros((n, c, out_h, out_w), dtype=numpy.uint8) if grad_enabled() else None

        def pool(c0, c1):
            for offset, window in self._windows(x[:, c0:c1], out_h, out_w):
                rows, cols = window.shape[2:]
                best = y[:, c0:c1, :rows, :cols]
                if offset == 0:   # the first offset's view is whole: every window starts inside the image
                    best[...] = window
                    continue
                if argmax is not None:   # strict: ties keep the earlier offset
                    numpy.copyto(argmax[:, c0:c1, :rows, :cols], numpy.uint8(offset), where=window > best)
                numpy.maximum(best, window, out=best)
        # a block of channels at a time, so that its k*k passes read it from cache
        split_over_threads(pool, c, x.nbytes, blocked=True)
        self._argmax = argmax
        return y

    def backward(self, dy):
        self.kept(self._argmax)
        self.check_gradient(dy, self.output_shape(self._input_shape))
        xp = array_module(dy)
        n, c, h, w = self._input_shape
        out_h, out_w = dy.shape[2:]
        if xp is not numpy:
            from . import cuda_kernels
            return cuda_kernels.maxpool_backward(dy, self._argmax, self._input_shape, self.kernel, self.stride)
        dx = numpy.empty((n, c, h, w), dtype=dy.dtype)

        def route(c0, c1):
            dx[:, c0:c1] = 0
            for offset, window in self._windows(dx[:, c0:c1], out_h, out_w):
                rows, cols = window.shape[2:]
                hit = self._argmax[:, c0:c1, :rows, :cols] == offset
                if self.stride >= self.kernel:   # windows do not overlap: each pixel is written once
                    numpy.copyto(window, dy[:, c0:c1, :rows, :cols], where=hit)
                else:
                    window += dy[:, c0:c1, :rows, :cols] * hit
        split_over_threads(route, c, dx.nbytes, blocked=True)
        return dx
