"""ConvTranspose2d ("deconvolution"): the adjoint of Conv2d, used to upsample score maps.

    x    (N, Cin, H, W)
    W    (Cin, Cout, k, k)              (Caffe's and PyTorch's layout)
    y    (N, Cout, (H-1)*s + k, (W-1)*s + k)

Every input pixel x[n, c, iy, ix] stamps the kernel W[c] scaled by its value
onto the output window that starts at (iy*s, ix*s); overlapping stamps add.
With Wm = W.reshape(Cin, Cout*k*k), that is Conv2d's backward to its input. These
are the definitions; the code reaches the same numbers another way (below):

    forward     y[n]  = col2im(Wm.T @ x[n])  (+ b[o] on channel o, when the layer has a bias)
    backward    dx[n] = Wm @ im2col(dy[n])         (as a formula, Conv2d's forward with the same W)
                dW   += sum_n x[n] @ im2col(dy[n]).T
                db   += sum_{n, y, x} dy[n, o, y, x]

So <conv(z), x> == <z, conv_transpose(x)> for the same weights, where conv has stride
s, no padding, and z is (H-1)*s + k high and (W-1)*s + k wide: the test suite checks
exactly this identity (tests/test_conv2d.py, which also covers sizes conv does not
read to the end).

How it is computed: as a convolution. Output pixel (s*I + a, s*J + b), the phase
(a, b) of block (I, J), receives x[:, I - q, J - r] through the kernel tap
(a + s*q, b + s*r), for q, r = 0 .. m-1 with m = ceil(k / s). Each of the s*s
phases is therefore an ordinary m x m convolution of x padded by m - 1, and all of
them together are one convolution with Cout*s*s output channels, whose output is
interleaved into y (the "sub-pixel convolution" of Shi et al., 2016):

    phases = convolve(x, V, m x m, padding m-1)             (N, Cout*s*s, H+m-1, W+m-1)
    y[n, o, s*I + a, s*J + b] = phases[n, (o, a, b), I, J]
    V[(o, a, b), (c, q, r)] = W[c, o, a + s*(m-1-q), b + s*(m-1-r)]   (W zero-padded to m*s taps)

Backward is that convolution's backward, after the inverse interleaving of dy.
When s divides k, the multiply-adds are those of col2im(Wm.T @ x) but for the
m - 1 extra rows and columns of the phases' grid (about 3% more for upscore8 at VOC
size: a 55x71 grid for its 54x70 input), and the (Cout*k*k, H*W) matrix that col2im
scatters is never made: for FCN-8s's upscore8 (k 16, stride 8) that matrix is four
times the size of the output. When s does not divide k, the zero taps cost more
(k 3, s 2: 16 taps for 9).

The FCN heads initialise these layers to bilinear interpolation and keep them
fixed (frozen=True skips dW); see bilinear_kernel.
"""
import numpy

from ..backend import array_module, split_channels
from .base import Layer, grad_enabled
from .conv2d import convolve, convolve_backward


def bilinear_kernel(size):
    """A (size, size) bilinear interpolation kernel, as `upsample_filt` in the reference FCN's surgery.py.

    With stride f = (size + 1) // 2 the kernel's tent has half-width f, centred so
    that stamping it every f pixels interpolates linearly between input pixels.
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - numpy.abs(numpy.arange(size) - center) / factor
    return numpy.outer(ramp, ramp)


def copy_over_channels(source, target):
    """target[...] = source, two arrays with their channels on axis 1 (on the CPU split over threads:
    the interleaving copies are strided, one output-sized pass each)."""
    def copy(source, target):
        target[...] = source
    split_channels(copy, source, target)


class ConvTranspose2d(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=False, dtype=numpy.float32):
        super().__init__(dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel = kernel_size
        self._x = None   # forward's input, kept for backward
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

    def _taps_per_phase(self):
        """m: the kernel taps, per axis, that reach one output phase."""
        return -(-self.kernel // self.stride)

    def _phase_weights(self):
        """V (Cout*s*s, Cin*m*m), the weights of the phases' convolution (module docstring)."""
        weights = self.params["W"]
        xp = array_module(weights)
        k, s, m = self.kernel, self.stride, self._taps_per_phase()
        if m * s > k:   # taps past the kernel's end reach no phase: zeros
            padded = xp.zeros((self.in_channels, self.out_channels, m * s, m * s), dtype=weights.dtype)
            padded[:, :, :k, :k] = weights
            weights = padded
        # [c, o, q, a, r, b] holds tap (q*s + a, r*s + b); the phases' convolution reads q and r backwards
        taps = weights.reshape(self.in_channels, self.out_channels, m, s, m, s)[:, :, ::-1, :, ::-1, :]
        return xp.ascontiguousarray(taps.transpose(1, 3, 5, 0, 2, 4)).reshape(-1, self.in_channels * m * m)

    def _add_phase_weight_grad(self, grad_phase_weights):
        """dW += the gradient of V (Cout*s*s, Cin*m*m), put back in W's layout (the inverse of _phase_weights)."""
        k, s, m = self.kernel, self.stride, self._taps_per_phase()
        taps = grad_phase_weights.reshape(self.out_channels, s, s, self.in_channels, m, m).transpose(3, 0, 4, 1, 5, 2)
        grad = taps[:, :, ::-1, :, ::-1, :].reshape(self.in_channels, self.out_channels, m * s, m * s)
        self.grads["W"] += grad[:, :, :k, :k]

    def forward(self, x):
        self.check_channels(x, self.in_channels)
        xp = array_module(x)
        n, _, h, w = x.shape
        s, m, out_c = self.stride, self._taps_per_phase(), self.out_channels
        self._x = x if grad_enabled() else None
        phases = convolve(x, self._phase_weights(), m, m, 1, m - 1)
        grid_h, grid_w = h + m - 1, w + m - 1
        y = xp.empty((n, out_c, grid_h * s, grid_w * s), dtype=x.dtype)
        copy_over_channels(phases.reshape(n, out_c, s, s, grid_h, grid_w).transpose(0, 1, 4, 2, 5, 3),
                           y.reshape(n, out_c, grid_h, s, grid_w, s))
        _, _, out_h, out_w = self.output_shape(x.shape)
        if (out_h, out_w) != y.shape[2:]:   # the zero taps' rows and columns past the last stamp
            y = xp.ascontiguousarray(y[:, :, :out_h, :out_w])   # a copy, only when s does not divide k
        if "b" in self.params:
            y += self.params["b"].reshape(1, -1, 1, 1)
        return y

    def backward(self, dy):
        xp = array_module(dy)
        x = self.kept(self._x)
        self.check_gradient(dy, self.output_shape(x.shape))
        n, _, h, w = x.shape
        s, m, out_c = self.stride, self._taps_per_phase(), self.out_channels
        if "b" in self.params:
            self.grads["b"] += dy.sum(axis=(0, 2, 3))
        grid_h, grid_w = h + m - 1, w + m - 1
        if dy.shape[2:] != (grid_h * s, grid_w * s):
            # forward cut the grid's last rows and columns (s does not divide k): they get zero gradient
            whole = xp.zeros((n, out_c, grid_h * s, grid_w * s), dtype=dy.dtype)
            whole[:, :, :dy.shape[2], :dy.shape[3]] = dy
            dy = whole
        dphases = xp.empty((n, out_c * s * s, grid_h, grid_w), dtype=dy.dtype)
        copy_over_channels(dy.reshape(n, out_c, grid_h, s, grid_w, s).transpose(0, 1, 3, 5, 2, 4),
                           dphases.reshape(n, out_c, s, s, grid_h, grid_w))
        phase_weights = self._phase_weights()
        grad_phase_weights = None if self.frozen else xp.zeros_like(phase_weights)
        dx = convolve_backward(x, dphases, phase_weights, grad_phase_weights, m, m, 1, m - 1)
        if grad_phase_weights is not None:
            self._add_phase_weight_grad(grad_phase_weights)
        return dx
