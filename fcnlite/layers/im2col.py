"""im2col / col2im: the patch matrices behind convolution and its adjoint.

For one image x of shape (C, H, W), padded with p zeros on each side into xpad,
and a kernel kh x kw moved with stride s, output position (oy, ox) sees the patch
xpad[:, oy*s : oy*s+kh, ox*s : ox*s+kw]. im2col lays these patches out as the
columns of a matrix

    cols[(c, i, j), (oy, ox)] = xpad[c, oy*s + i, ox*s + j]   shape (C*kh*kw, out_h*out_w)

so that a convolution with O output channels is one matrix product
W.reshape(O, C*kh*kw) @ cols.
col2im is its adjoint: it adds every column back onto the pixels it was read
from (pixels under several windows receive the sum).

Both work on a band of output rows [row0, row0 + rows): a large layer (conv1 on
a VOC image after the reference's 100-pixel padding) is processed a band at a
time so that its patch matrix never has to exist whole. The bands are smaller on
the CPU (BAND_BYTES) than on the GPU (GPU_BAND_BYTES), where a band costs several
launches: there, at VOC size, only conv1_2's 921 MB matrix is split.

The loops run over the kh*kw kernel offsets, each a strided slice of the whole
band: never over pixels. xpad is never made: each offset copies only the part of
the band that lies on the image (`inside`), writes zeros for the rest, and col2im
drops what falls on the padding. On the CPU the channels are shared among the
host's threads (backend.split_over_threads): NumPy copies on one core, and these
copies are most of what a CPU convolution spends besides its matrix product.
With a CuPy array one kernel (cuda_kernels.py) does the same on the GPU.
"""
import numpy

from ..backend import array_module, split_over_threads


def conv_output_size(size, kernel, stride, padding=0, ceil_mode=False):
    """Output length of a window of `kernel` moved by `stride` over `size` + 2*padding."""
    span = size + 2 * padding - kernel
    if ceil_mode:
        out = -(-span // stride) + 1
        # the last window must start inside the (left-padded) input (Caffe checks this only
        # when padded; unpadded, a stride larger than the kernel would otherwise add a
        # window that lies wholly outside the image and pools to -inf; PyTorch drops it)
        if (out - 1) * stride >= size + padding:
            out -= 1
        return max(out, 1)
    return span // stride + 1


def inside(offset, stride, padding, size, first, count):
    """Which of the output positions first .. first+count-1 read, at kernel offset `offset`, a pixel
    inside the image rather than the padding: position o reads pixel o*stride + offset - padding,
    inside when in [0, size). Returns (lo, hi, pixel of lo), lo:hi relative to first (maybe empty)."""
    lo = max(first, -(-(padding - offset) // stride))
    hi = max(lo, min(first + count, (size - 1 + padding - offset) // stride + 1))
    return lo - first, hi - first, lo * stride + offset - padding


def im2col(x, kernel_h, kernel_w, stride, row0, rows, out_w, out=None, padding=0):
    """Patch matrix (C*kh*kw, rows*out_w) of output rows row0..row0+rows of one image x (C, H, W)
    padded by `padding` zeros on each side.

    out: None (a new array), or a flat scratch buffer of at least C*kh*kw*rows*out_w entries
    (the shared `workspace`): the result is then a view of it, valid until the buffer's next use."""
    xp = array_module(x)
    channels, height, width = x.shape
    if out is None:
        cols = xp.empty((channels, kernel_h, kernel_w, rows, out_w), dtype=x.dtype)
    else:
        cols = out[: channels * kernel_h * kernel_w * rows * out_w].reshape(channels, kernel_h, kernel_w, rows, out_w)
    if xp is not numpy:   # one CuPy kernel launch instead of kh*kw strided copies
        from . import cuda_kernels
        cuda_kernels.im2col(xp.ascontiguousarray(x), kernel_h, kernel_w, stride, row0, rows, out_w, cols,
                            padding=padding)
        return cols.reshape(channels * kernel_h * kernel_w, rows * out_w)

    def fill(c0, c1):
        for i in range(kernel_h):
            r0, r1, y0 = inside(i, stride, padding, height, row0, rows)
            for j in range(kernel_w):
                q0, q1, x0 = inside(j, stride, padding, width, 0, out_w)
                patch = cols[c0:c1, i, j]
                # cols may be the shared workspace, still holding the last layer's patches: every
                # entry is written, the padding's zeros included (rows above and below the image,
                # then columns left and right of it; empty slices where there are none)
                patch[:, :r0] = patch[:, r1:] = 0
                patch[:, r0:r1, :q0] = patch[:, r0:r1, q1:] = 0
                if r1 > r0 and q1 > q0:
                    patch[:, r0:r1, q0:q1] = x[c0:c1, y0: y0 + stride * (r1 - r0): stride,
                                               x0: x0 + stride * (q1 - q0): stride]
    split_over_threads(fill, channels, cols.nbytes)
    return cols.reshape(channels * kernel_h * kernel_w, rows * out_w)


def col2im_add(cols, dx, kernel_h, kernel_w, stride, row0, rows, out_w, padding=0):
    """Adjoint of im2col: add cols (C*kh*kw, rows*out_w) onto the image gradient dx (C, H, W) in place
    (entries that im2col read from the padding are dropped)."""
    channels, height, width = dx.shape
    if array_module(dx) is not numpy and dx.flags.c_contiguous:
        from . import cuda_kernels
        return cuda_kernels.col2im_add(array_module(dx).ascontiguousarray(cols), dx, kernel_h, kernel_w, stride,
                                       row0, rows, out_w, padding=padding)
    cols = cols.reshape(channels, kernel_h, kernel_w, rows, out_w)

    def add(c0, c1):
        for i in range(kernel_h):
            r0, r1, y0 = inside(i, stride, padding, height, row0, rows)
            for j in range(kernel_w):
                q0, q1, x0 = inside(j, stride, padding, width, 0, out_w)
                if r1 > r0 and q1 > q0:
                    dx[c0:c1, y0: y0 + stride * (r1 - r0): stride,
                       x0: x0 + stride * (q1 - q0): stride] += cols[c0:c1, i, j, r0:r1, q0:q1]
    if array_module(dx) is numpy:
        split_over_threads(add, channels, cols.nbytes)
    else:   # a CuPy dx the kernel cannot take (not contiguous): the same loop; CuPy calls stay on this thread
        add(0, channels)
    return dx


# Patch matrices larger than this are built a band of rows at a time. On the CPU, 16 MiB
# bands ran conv1_2..conv3_2's forward + backward 7-16% faster than 64 MiB ones (the band is
# still in cache when the product reads it; BENCHMARKS.md), and Conv2d never cuts a band
# smaller than its weights. On a GPU every band costs several kernel launches and a copy of
# its output rows, and memory is the GPU's to spare: larger bands there (256 MiB; measured on
# an H200 in BENCHMARKS.md).
BAND_BYTES = 16 * 2**20
GPU_BAND_BYTES = 256 * 2**20


def row_bands(out_h, bytes_per_row, xp=numpy, *, limit=None, at_least=0):
    """Split out_h output rows into bands whose patch matrix stays under `limit` bytes (by default
    BAND_BYTES for NumPy arrays, GPU_BAND_BYTES for CuPy's), or under `at_least` if that is larger."""
    if limit is None:
        limit = BAND_BYTES if xp is numpy else GPU_BAND_BYTES
    limit = max(limit, at_least)
    rows = max(1, min(out_h, limit // max(bytes_per_row, 1)))
    return [(row0, min(rows, out_h - row0)) for row0 in range(0, out_h, rows)]


class Workspace:
    """One flat scratch buffer per (module, dtype, slot), grown when needed and reused by every layer.

    Layers run one after another, so they can share it: the patch matrix is not
    allocated anew for every layer and every step. What a buffer holds lasts until the
    next get() of the same slot (im2col's patches and Winograd's tiles share slot 0).
    """

    def __init__(self):
        self._buffers = {}

    def get(self, xp, size, dtype, slot=0):
        key = (xp.__name__, numpy.dtype(dtype), slot)   # not str(dtype): slow Python, 15 us a call in a GPU profile
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = xp.empty(size, dtype=dtype)
            self._buffers[key] = buffer
        return buffer

    def clear(self):
        self._buffers.clear()


workspace = Workspace()
