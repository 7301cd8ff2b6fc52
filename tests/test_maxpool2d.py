"""MaxPool2d in Caffe's ceil mode: windows that hang over the edge, gradients, PyTorch."""
import numpy
import pytest

from fcnlite import backend
from fcnlite.layers import MaxPool2d
from fcnlite.layers.im2col import conv_output_size
from gradcheck import backends_agree, distinct_values, layer_gradient_errors

# (input shape, kernel, stride, ceil mode)
CASES = [
    ((1, 2, 5, 5), 2, 2, True),     # 5 -> 3: the last window hangs one pixel over
    ((2, 1, 7, 7), 2, 2, True),
    ((1, 2, 5, 7), 2, 2, True),     # non-square
    ((2, 2, 1, 1), 2, 2, True),     # a single pixel: one window, mostly outside
    ((1, 2, 1, 4), 2, 2, True),
    ((1, 2, 6, 4), 2, 2, True),     # even sizes: no overhang
    ((1, 2, 5, 7), 3, 2, True),     # overlapping windows, kernel 3 stride 2
    ((1, 1, 8, 6), 3, 2, True),     # 8 -> 4 with the last window hanging over
    ((1, 2, 5, 7), 2, 2, False),    # floor mode drops the partial window
    ((1, 2, 7, 8), 3, 2, False),
    ((1, 2, 5, 7), 1, 2, True),     # stride larger than the kernel
    ((1, 1, 9, 5), 2, 3, True),
]
CASE_IDS = [f"x{'x'.join(map(str, s))}-k{k}-s{st}-{'ceil' if c else 'floor'}" for s, k, st, c in CASES]


def maxpool_direct(x, kernel, stride, out_h, out_w):
    """The maximum of each window's pixels that lie inside the image, one window at a time."""
    n, c, h, w = x.shape
    y = numpy.full((n, c, out_h, out_w), numpy.nan)
    for oy in range(out_h):
        for ox in range(out_w):
            window = x[:, :, oy * stride:min(oy * stride + kernel, h), ox * stride:min(ox * stride + kernel, w)]
            y[:, :, oy, ox] = window.max(axis=(2, 3))
    return y


def torch_output_size(size, kernel, stride, ceil_mode):
    """PyTorch's pooling output length (padding 0)."""
    if ceil_mode:
        out = -(-(size - kernel) // stride) + 1
        if (out - 1) * stride >= size:
            out -= 1
        return out
    return (size - kernel) // stride + 1


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (5, 2, 2, 3), (7, 2, 2, 4), (1, 2, 2, 1), (2, 2, 2, 1), (6, 2, 2, 3), (5, 3, 2, 2), (8, 3, 2, 4),
    (698, 2, 2, 349), (349, 2, 2, 175), (175, 2, 2, 88), (88, 2, 2, 44), (44, 2, 2, 22),  # the docstring's chain
    (5, 1, 2, 3), (4, 1, 2, 2), (5, 2, 3, 2),
])
def test_ceil_mode_output_size(size, kernel, stride, expected):
    assert conv_output_size(size, kernel, stride, 0, ceil_mode=True) == expected


@pytest.mark.parametrize("size", range(1, 20))
@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), (3, 3), (1, 2), (2, 3)])
def test_ceil_mode_output_size_matches_torch_rule(size, kernel, stride):
    assert conv_output_size(size, kernel, stride, 0, ceil_mode=True) == max(1, torch_output_size(size, kernel, stride, True))


@pytest.mark.parametrize("shape, kernel, stride, ceil_mode", CASES, ids=CASE_IDS)
def test_maxpool_forward_matches_direct_loop(xp, shape, kernel, stride, ceil_mode):
    layer = MaxPool2d(kernel, stride, ceil_mode=ceil_mode, dtype=numpy.float64)
    x = numpy.random.default_rng(1).standard_normal(shape)
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    assert y.shape == layer.output_shape(shape)
    numpy.testing.assert_array_equal(y, maxpool_direct(x, kernel, stride, *y.shape[2:]))
    assert numpy.isfinite(y).all()


@pytest.mark.parametrize("shape, kernel, stride, ceil_mode", CASES, ids=CASE_IDS)
def test_maxpool_backward_matches_numerical_gradient(xp, shape, kernel, stride, ceil_mode):
    layer = MaxPool2d(kernel, stride, ceil_mode=ceil_mode, dtype=numpy.float64)
    # distinct values, at least ~1/size apart: no ties, so finite differences never flip a window's winner
    x = backend.to_device(distinct_values(shape, numpy.random.default_rng(1), scale=float(numpy.prod(shape))))
    errors = layer_gradient_errors(layer, [x])
    assert errors["x0"] < 1e-6, errors


def test_maxpool_backward_routes_each_gradient_to_its_window_maximum(xp):
    x = numpy.array([[1.0, 5.0, 2.0],
                     [3.0, 4.0, 9.0],
                     [8.0, 0.0, 7.0]]).reshape(1, 1, 3, 3)
    layer = MaxPool2d(2, 2, dtype=numpy.float64)
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    numpy.testing.assert_array_equal(y[0, 0], [[5.0, 9.0], [8.0, 7.0]])
    dx = backend.to_numpy(layer.backward(backend.to_device(numpy.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 1, 2, 2))))
    numpy.testing.assert_array_equal(dx[0, 0], [[0, 10, 0], [0, 0, 20], [30, 0, 40]])


def test_maxpool_ties_send_the_gradient_to_the_first_pixel_in_row_major_order(xp):
    layer = MaxPool2d(2, 2, dtype=numpy.float64)
    layer.forward(xp.ones((1, 1, 2, 2)))
    dx = backend.to_numpy(layer.backward(xp.ones((1, 1, 1, 1))))
    numpy.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def test_overlapping_windows_add_their_gradients(xp):
    """Kernel 3 stride 2: a pixel shared by two windows and the maximum of both gets both gradients."""
    x = numpy.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 1.0
    layer = MaxPool2d(3, 2, dtype=numpy.float64)
    layer.forward(backend.to_device(x))
    dx = backend.to_numpy(layer.backward(backend.to_device(numpy.array([[[[2.0, 3.0]]]]))))
    assert dx[0, 0, 1, 2] == 5.0 and dx.sum() == 5.0


@pytest.mark.parametrize("shape, kernel, stride, ceil_mode", CASES, ids=CASE_IDS)
def test_maxpool_matches_torch(shape, kernel, stride, ceil_mode):
    torch = pytest.importorskip("torch")
    layer = MaxPool2d(kernel, stride, ceil_mode=ceil_mode, dtype=numpy.float64)
    generator = numpy.random.default_rng(1)
    x = distinct_values(shape, generator, scale=float(numpy.prod(shape)))
    y = layer.forward(x)
    dy = generator.standard_normal(y.shape)
    dx = layer.backward(dy)
    x_t = torch.tensor(x, requires_grad=True)
    y_t = torch.nn.functional.max_pool2d(x_t, kernel, stride, ceil_mode=ceil_mode)
    y_t.backward(torch.tensor(dy))
    numpy.testing.assert_array_equal(y, y_t.detach().numpy())
    numpy.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape, kernel, stride, ceil_mode", CASES, ids=CASE_IDS)
def test_maxpool_cupy_agrees_with_numpy(cupy_only, dtype, shape, kernel, stride, ceil_mode):
    x = distinct_values(shape, numpy.random.default_rng(1), scale=float(numpy.prod(shape))).astype(dtype)
    # exact, but where windows overlap: there the GPU's atomicAdds sum a pixel's gradients in the
    # hardware's order, which may round differently from NumPy's (1 ulp)
    rtol = 0 if stride >= kernel else 4 * numpy.finfo(dtype).eps
    backends_agree(lambda: MaxPool2d(kernel, stride, ceil_mode=ceil_mode, dtype=dtype), [x], rtol=rtol, atol=0)
