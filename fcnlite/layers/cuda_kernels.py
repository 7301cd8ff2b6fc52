"""CuPy kernels for the GPU hot paths, beside the NumPy code they replace.

The NumPy versions (im2col.py, maxpool2d.py) loop over the kh*kw kernel offsets
with strided slices: on a GPU each slice is a kernel launch (9 per band for a 3x3
layer, 49 for fc6's 7x7; with TF32 on, the host's launches already set the step's
pace: BENCHMARKS.md). These kernels do one
launch per call, a thread per output element (im2col: per channel and output pixel), and
read the same layouts, so the NumPy code stays the readable reference;
tests/test_cuda_kernels.py checks that both agree (on a machine with a GPU).

    im2col          cols[c, i, j, r, ox] = xpad[c, (row0 + r)*s + i, ox*s + j]   (a thread per (c, r, ox);
                    xpad is x with `padding` zeros around, read as zeros, never made)
    col2im_add      dx[c, y, x] += sum of the cols entries read from (c, y, x)   (a gather: no atomics)
    maxpool_forward y = window max, argmax = its offset i*k + j (first one on ties)
    maxpool_backward dx[argmax position] += dy   (atomicAdd: windows may overlap)
    sgd_update      v = momentum*v - lr*(decay*w + g); w += v   (one pass instead of six, see optim.py)
    splitmix_uniform  u[k] = splitmix64(seed, k) / 2**64, 24 bits   (dropout masks; see rng.py)
    spin            one thread busy for a number of clock cycles: not a layer, but the way the tests and
                    .ci/gpu_variants.py see whether the host waits for the GPU

Index arithmetic is in 32-bit int, and as little of it as can be: a GPU does an
integer division in dozens of instructions. With a thread per im2col entry (five
divisions each) conv1_2 ran at the same 10-14 TFLOP/s with TF32 on and off on an
H200: the patch matrix, not the product, set the pace (BENCHMARKS.md). The
wrappers check that every index fits.
"""
import functools

from ..rng import GOLDEN_GAMMA, MIX_1, MIX_2


# The pooling kernels' thread for output pixel (plane, oy, ox) of a (N*C, out_h, out_w) grid
POOL_OUTPUT_PIXEL = """
            int index = i;
            int ox = index % out_w;
            int rest = index / out_w;
            int oy = rest % out_h;
            int plane = rest / out_h;"""


@functools.lru_cache(maxsize=None)
def _kernel(name):
    import cupy
    sources = {
        "im2col": (
            "raw T image, int32 height, int32 width, int32 kernel_h, int32 kernel_w, int32 stride, "
            "int32 padding, int32 row0, int32 rows, int32 out_w",
            "raw T cols",
            """
            // one thread per (c, r, ox): it copies that output pixel's kh*kw patch entries,
            // so the index arithmetic is shared by kh*kw copies; outside the image it writes
            // the padding's zeros
            int index = i;
            int ox = index % out_w;
            int rest = index / out_w;
            int r = rest % rows;
            int c = rest / rows;
            int plane = rows * out_w;
            int top = (row0 + r) * stride - padding, left = ox * stride - padding;
            const T* channel = &image[c * height * width];
            int target = c * kernel_h * kernel_w * plane + r * out_w + ox;
            for (int ki = 0; ki < kernel_h; ++ki) {
                int y = top + ki;
                bool row_inside = y >= 0 && y < height;
                for (int kj = 0; kj < kernel_w; ++kj) {
                    int x = left + kj;
                    cols[target] = (row_inside && x >= 0 && x < width) ? channel[y * width + x] : (T)0;
                    target += plane;
                }
            }
            """),
        "col2im_add": (
            "raw T cols, int32 height, int32 width, int32 kernel_h, int32 kernel_w, int32 stride, "
            "int32 padding, int32 row0, int32 rows, int32 out_w, int32 band_top, int32 band_h",
            "raw T dx",
            """
            // a thread per image pixel (c, y, x) of the band's rows; (yp, xp) is where it sits in
            // the padded image that im2col read
            int index = i;
            int x = index % width;
            int rest = index / width;
            int y = band_top + rest % band_h;
            int c = rest / band_h;
            int yp = y + padding, xp = x + padding;
            // only offsets with (yp - ki) and (xp - kj) multiples of the stride read this pixel: start
            // at the first, then each stride step of ki (kj) is one output row (column) further up (left)
            int ki0 = yp % stride, kj0 = xp % stride;
            int r0 = (yp - ki0) / stride - row0, ox0 = (xp - kj0) / stride;
            T total = 0;
            for (int ki = ki0, r = r0; ki < kernel_h && r >= 0; ki += stride, --r) {
                if (r >= rows) continue;
                for (int kj = kj0, ox = ox0; kj < kernel_w && ox >= 0; kj += stride, --ox) {
                    if (ox >= out_w) continue;
                    total += cols[(((c * kernel_h + ki) * kernel_w + kj) * rows + r) * out_w + ox];
                }
            }
            dx[(c * height + y) * width + x] += total;
            """),
        "maxpool_forward": (
            "raw T x, int32 height, int32 width, int32 out_h, int32 out_w, int32 kernel, int32 stride",
            "T y, uint8 argmax",
            POOL_OUTPUT_PIXEL + """
            T best = 0;
            int best_offset = -1;
            for (int ki = 0; ki < kernel; ++ki) {
                int row = oy * stride + ki;
                if (row >= height) break;
                for (int kj = 0; kj < kernel; ++kj) {
                    int col = ox * stride + kj;
                    if (col >= width) break;
                    T value = x[(plane * height + row) * width + col];
                    if (best_offset < 0 || value > best) { best = value; best_offset = ki * kernel + kj; }
                    else if (value != value) { best = value; }   // NaN: y becomes NaN and argmax stays, as numpy.maximum / '>' do
                }
            }
            y = best;
            argmax = best_offset;
            """),
        "maxpool_backward": (
            "T dy, uint8 argmax, int32 height, int32 width, int32 out_h, int32 out_w, int32 kernel, int32 stride",
            "raw T dx",
            POOL_OUTPUT_PIXEL + """
            int row = oy * stride + argmax / kernel;
            int col = ox * stride + argmax % kernel;
            atomicAdd(&dx[(plane * height + row) * width + col], dy);
            """),
        "sgd_update": (
            "T grad, T lr, T momentum, T decay",
            "T value, T velocity",
            """
            velocity = momentum * velocity - lr * (decay * value + grad);
            value += velocity;
            """),
        "splitmix_uniform": (
            "uint64 seed",
            "float32 u",
            f"""
            unsigned long long z = seed + (unsigned long long)(i + 1) * {GOLDEN_GAMMA:#x}ULL;
            z = (z ^ (z >> 30)) * {MIX_1:#x}ULL;
            z = (z ^ (z >> 27)) * {MIX_2:#x}ULL;
            z ^= z >> 31;
            u = (float)(z >> 40) * (1.0f / 16777216.0f);
            """),
    }
    inputs, outputs, body = sources[name]
    return cupy.ElementwiseKernel(inputs, outputs, body, f"fcnlite_{name}")


INT32_LIMIT = 2**31


def _check_int32_indices(*arrays):
    for array in arrays:
        if array.size >= INT32_LIMIT:
            raise ValueError(f"array of shape {tuple(array.shape)} has 2**31 elements or more: too large for these kernels")


def im2col(image, kernel_h, kernel_w, stride, row0, rows, out_w, cols, padding=0):
    """image (C, H, W) contiguous, padded by `padding` zeros -> cols (C, kh, kw, rows, out_w), filled in place
    (the arguments of im2col.im2col, with cols given)."""
    channels, height, width = image.shape
    _check_int32_indices(image, cols)
    _kernel("im2col")(image, height, width, kernel_h, kernel_w, stride, padding, row0, rows, out_w, cols,
                      size=channels * rows * out_w)
    return cols


def col2im_add(cols, dx, kernel_h, kernel_w, stride, row0, rows, out_w, padding=0):
    """dx (C, H, W) contiguous += the adjoint of im2col (image padded by `padding`) for output rows row0..row0+rows
    (the arguments of im2col.col2im_add)."""
    channels, height, width = dx.shape
    _check_int32_indices(cols, dx)
    # the band's rows of the padded image, then those of them that lie in the image
    band_top = row0 * stride
    band_bottom = min(height + 2 * padding, band_top + (rows - 1) * stride + kernel_h)
    first, last = max(band_top - padding, 0), min(band_bottom - padding, height)
    if last <= first:   # the band read only padding
        return dx
    _kernel("col2im_add")(cols, height, width, kernel_h, kernel_w, stride, padding, row0, rows, out_w, first,
                          last - first, dx, size=channels * (last - first) * width)
    return dx


def maxpool_forward(x, out_h, out_w, kernel, stride):
    """x (N, C, H, W) contiguous -> (y, argmax) of shape (N, C, out_h, out_w)."""
    import cupy
    n, c, height, width = x.shape
    _check_int32_indices(x)
    y = cupy.empty((n, c, out_h, out_w), dtype=x.dtype)
    argmax = cupy.empty((n, c, out_h, out_w), dtype=cupy.uint8)
    _kernel("maxpool_forward")(x, height, width, out_h, out_w, kernel, stride, y, argmax)
    return y, argmax


def maxpool_backward(dy, argmax, input_shape, kernel, stride):
    import cupy
    n, c, height, width = input_shape
    dx = cupy.zeros(input_shape, dtype=dy.dtype)
    _check_int32_indices(dx)
    out_h, out_w = dy.shape[2:]
    _kernel("maxpool_backward")(cupy.ascontiguousarray(dy), argmax, height, width, out_h, out_w, kernel, stride, dx)
    return dx


def sgd_update(value, grad, velocity, lr, momentum, decay):
    """In place: velocity = momentum*velocity - lr*(decay*value + grad); value += velocity."""
    scalar = value.dtype.type
    _kernel("sgd_update")(grad, scalar(lr), scalar(momentum), scalar(decay), value, velocity)


def splitmix_uniform(seed, size):
    """float32 uniforms in [0, 1) for flat indices 0..size-1: rng.splitmix_uniform on the GPU."""
    import cupy
    import numpy
    values = cupy.empty(size, dtype=cupy.float32)
    _kernel("splitmix_uniform")(numpy.uint64(seed), values)
    return values


SPIN_SOURCE = r"""
extern "C" __global__ void fcnlite_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) {}
}
"""


@functools.lru_cache(maxsize=None)
def _spin_kernel():
    import cupy
    return cupy.RawKernel(SPIN_SOURCE, "fcnlite_spin")


def spin(cycles):
    """Queue a kernel that keeps one GPU thread busy for `cycles` SM clock cycles (~cycles / 2e9 s)."""
    import numpy
    _spin_kernel()((1,), (1,), (numpy.int64(cycles),))
