"""ConvTranspose2d ("deconvolution"): the adjoint of Conv2d, used to upsample score maps.

    x    (N, Cin, H, W)
    W    (Cin, Cout, kh, kw)            (Caffe's and PyTorch's layout)
    y    (N, Cout, (H-1)*s + kh, (W-1)*s + kw)

Every input pixel x[n, c, iy, ix] stamps the kernel W[c] scaled by its value
onto the output window that starts at (iy*s, ix*s); overlapping stamps add.
With Wm = W.reshape(Cin, Cout*kh*kw):

    forward     y[n]  = col2im(Wm.T @ x[n])        (Conv2d's backward to its input)
    backward    dx[n] = Wm @ im2col(dy[n])         (Conv2d's forward, with the same W)
                dW   += sum_n x[n] @ im2col(dy[n]).T

So <conv(z), x> == <z, conv_transpose(x)> for the same weights: the test suite
checks exactly this identity.

The FCN heads initialise these layers to bilinear interpolation and keep them
fixed (frozen=True skips dW); see bilinear_kernel.
"""
import numpy

from ..backend import array_module
from .base import Layer, grad_enabled
from .conv2d import add_weight_grad
from .im2col import col2im_add, im2col, row_bands, workspace


def bilinear_kernel(size):
    """A (size, size) bilinear interpolation kernel, as `upsample_filt` in the reference FCN's surgery.py.

    With stride f = (size + 1) // 2 the kernel's tent has half-width f, centred so
    that stamping it every f pixels interpolates linearly between input pixels.
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - numpy.abs(numpy.arange(size) - center) / factor
    return numpy.outer(ramp, ramp)


class ConvTranspose2d(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=False, dtype=numpy.float32):
        super().__init__(dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel = kernel_size
        self.stride = stride
        self.frozen = False  # True: backward computes dx only (the reference keeps upsampling fixed)
        weights = numpy.zeros((in_channels, out_channels, kernel_size, kernel_size), dtype=self.dtype)
        self.add_param("W", weights)
        if bias:
            self.add_param("b", numpy.zeros(out_channels, dtype=self.dtype))

    def init_bilinear(self):
        """Channel c upsamples channel c by bilinear interpolation; no channel mixing."""
        weights = numpy.zeros((self.in_channels, self.out_channels, self.kernel, self.kernel), dtype=self.dtype)
        channels = numpy.arange(min(self.in_channels, self.out_channels))
        weights[channels, channels] = bilinear_kernel(self.kernel)
        self.params["W"][...] = array_module(self.params["W"]).asarray(weights)
        return self

    def output_shape(self, input_shape):
        n, _, h, w = input_shape
        return (n, self.out_channels, (h - 1) * self.stride + self.kernel, (w - 1) * self.stride + self.kernel)

    def _bands(self, h, w, xp=numpy):
        return row_bands(h, self.out_channels * self.kernel * self.kernel * w * self.dtype.itemsize, xp)

    def forward(self, x):
        xp = array_module(x)
        n, in_c, h, w = x.shape
        self._x = x if grad_enabled() else None
        k, s = self.kernel, self.stride
        y = xp.zeros(self.output_shape(x.shape), dtype=x.dtype)
        weights = self.params["W"].reshape(in_c, -1)
        bands = self._bands(h, w, xp)
        buffer = workspace.get(xp, weights.shape[1] * bands[0][1] * w, x.dtype)
        for image in range(n):
            for row0, rows in bands:
                x_band = x[image, :, row0:row0 + rows].reshape(in_c, rows * w)
                cols = xp.matmul(weights.T, x_band, out=buffer[:weights.shape[1] * rows * w].reshape(-1, rows * w))
                col2im_add(cols, y[image], k, k, s, row0, rows, w)
        if "b" in self.params:
            y += self.params["b"].reshape(1, -1, 1, 1)
        return y

    def backward(self, dy):
        xp = array_module(dy)
        x = self._x
        n, in_c, h, w = x.shape
        k, s = self.kernel, self.stride
        weights = self.params["W"].reshape(in_c, -1)
        grad_w = self.grads["W"].reshape(in_c, -1)
        if "b" in self.params:
            self.grads["b"] += dy.sum(axis=(0, 2, 3))
        dx = xp.empty_like(x)
        bands = self._bands(h, w, xp)
        buffer = workspace.get(xp, weights.shape[1] * bands[0][1] * w, dy.dtype)
        for image in range(n):
            for row0, rows in bands:
                cols = im2col(dy[image], k, k, s, row0, rows, w, buffer)
                dx[image, :, row0:row0 + rows] = (weights @ cols).reshape(in_c, rows, w)
                if not self.frozen:
                    add_weight_grad(grad_w, x[image, :, row0:row0 + rows].reshape(in_c, rows * w), cols)
        return dx
