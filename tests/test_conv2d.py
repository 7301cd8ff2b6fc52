"""Conv2d: forward against a direct loop and PyTorch, backward against numerical gradients."""
import numpy
import pytest

from fcnlite import backend
from fcnlite.layers import Conv2d, ConvTranspose2d
from fcnlite.layers import conv2d as conv2d_module
from fcnlite.layers import im2col as im2col_module
from gradcheck import backends_agree, host_pass, layer_gradient_errors, torch_agrees

# (input shape (N, C, H, W), out channels, kernel, stride, padding)
CASES = [
    ((1, 2, 5, 6), 3, 3, 2, 1),      # odd sizes, stride 2
    ((2, 3, 7, 5), 2, 3, 1, 0),      # batch of two, non-square, unpadded
    ((1, 2, 8, 7), 3, 3, 3, 2),      # stride 3, padding 2
    ((1, 2, 6, 7), 2, 3, 2, 2),
    ((1, 3, 5, 4), 2, 2, 2, 0),      # even kernel
    ((2, 3, 4, 5), 4, 1, 1, 0),      # 1x1, stride 1, unpadded: the pointwise (no im2col) path
    ((1, 2, 5, 6), 3, 1, 2, 1),      # 1x1 with stride and padding: the im2col path
    ((1, 2, 9, 8), 2, 7, 1, 1),      # 7x7 as fc6
    ((1, 1, 11, 9), 2, 7, 3, 2),
]
CASE_IDS = [f"x{'x'.join(map(str, s))}-o{o}-k{k}-s{st}-p{p}" for s, o, k, st, p in CASES]


def make_conv(in_channels, out_channels, kernel, stride, padding, seed=0, dtype=numpy.float64):
    """A Conv2d with random weights and a random (non-zero) bias."""
    layer = Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, dtype=dtype)
    generator = numpy.random.default_rng(seed)
    layer.params["W"][...] = backend.to_device(generator.standard_normal(layer.params["W"].shape), dtype=dtype)
    layer.params["b"][...] = backend.to_device(generator.standard_normal(layer.params["b"].shape), dtype=dtype)
    return layer


def conv2d_direct(x, weights, bias, stride, padding):
    """y[n, o, oy, ox] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, oy*s + i, ox*s + j], one pixel at a time."""
    n, channels, h, w = x.shape
    out_c, _, kernel_h, kernel_w = weights.shape
    xpad = numpy.zeros((n, channels, h + 2 * padding, w + 2 * padding))
    xpad[:, :, padding:padding + h, padding:padding + w] = x
    out_h = (h + 2 * padding - kernel_h) // stride + 1
    out_w = (w + 2 * padding - kernel_w) // stride + 1
    y = numpy.zeros((n, out_c, out_h, out_w))
    for image in range(n):
        for o in range(out_c):
            for oy in range(out_h):
                for ox in range(out_w):
                    total = bias[o]
                    for c in range(channels):
                        for i in range(kernel_h):
                            for j in range(kernel_w):
                                total += weights[o, c, i, j] * xpad[image, c, oy * stride + i, ox * stride + j]
                    y[image, o, oy, ox] = total
    return y


@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding", CASES, ids=CASE_IDS)
def test_conv_forward_matches_direct_loop(xp, shape, out_channels, kernel, stride, padding):
    layer = make_conv(shape[1], out_channels, kernel, stride, padding)
    x = numpy.random.default_rng(1).standard_normal(shape)
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    expected = conv2d_direct(x, backend.to_numpy(layer.params["W"]), backend.to_numpy(layer.params["b"]), stride, padding)
    assert y.shape == layer.output_shape(shape)
    numpy.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding", CASES, ids=CASE_IDS)
def test_conv_backward_matches_numerical_gradient(xp, shape, out_channels, kernel, stride, padding):
    layer = make_conv(shape[1], out_channels, kernel, stride, padding)
    x = backend.to_device(numpy.random.default_rng(1).standard_normal(shape))
    errors = layer_gradient_errors(layer, [x])
    assert max(errors.values()) < 1e-6, errors


def test_conv_without_bias_has_only_weights(xp):
    layer = Conv2d(2, 3, 3, padding=1, bias=False, dtype=numpy.float64)
    assert list(layer.params) == ["W"] and list(layer.grads) == ["W"]
    x = backend.to_device(numpy.random.default_rng(1).standard_normal((1, 2, 4, 5)))
    errors = layer_gradient_errors(layer, [x])
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (1, 1, 0)], ids=["im2col", "pointwise"])
def test_conv_gradients_accumulate_until_zero_grad(xp, kernel, stride, padding):
    layer = make_conv(2, 3, kernel, stride, padding)
    generator = numpy.random.default_rng(1)
    x = backend.to_device(generator.standard_normal((2, 2, 5, 6)))
    y = layer.forward(x)
    dy = backend.to_device(generator.standard_normal(y.shape))
    layer.zero_grad()
    dx_first = backend.to_numpy(layer.backward(dy))
    once = {key: backend.to_numpy(grad).copy() for key, grad in layer.grads.items()}
    dx_second = backend.to_numpy(layer.backward(dy))
    numpy.testing.assert_array_equal(dx_second, dx_first)  # the input gradient does not accumulate
    for key, grad in layer.grads.items():
        numpy.testing.assert_allclose(backend.to_numpy(grad), 2 * once[key], rtol=1e-12, err_msg=key)
    layer.zero_grad()
    for key, grad in layer.grads.items():
        assert not backend.to_numpy(grad).any(), key


@pytest.mark.parametrize("shape, kernel, stride, padding",
                         [((2, 3, 9, 7), 3, 1, 1), ((1, 2, 11, 8), 3, 2, 2), ((1, 2, 12, 9), 7, 1, 0)])
def test_conv_row_bands_agree_with_one_band(xp, monkeypatch, shape, kernel, stride, padding):
    layer = make_conv(shape[1], 4, kernel, stride, padding)
    generator = numpy.random.default_rng(2)
    x = backend.to_device(generator.standard_normal(shape))
    dy = backend.to_device(generator.standard_normal(layer.output_shape(shape)))

    def run():
        return host_pass(layer, x, dy)   # y, dx, dW, db

    whole = run()
    band_counts = []
    real_row_bands = conv2d_module.row_bands

    def counting_row_bands(*args, **kwargs):
        bands = real_row_bands(*args, **kwargs)
        band_counts.append(len(bands))
        return bands

    monkeypatch.setattr(im2col_module, "BAND_BYTES", 1)  # one output row per band
    monkeypatch.setattr(im2col_module, "GPU_BAND_BYTES", 1)
    monkeypatch.setattr(conv2d_module, "row_bands", counting_row_bands)
    banded = run()
    assert band_counts and min(band_counts) == layer.output_shape(shape)[2] > 1
    for name, a, b in zip(["y", "dx", "dW", "db"], banded, whole):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("patch_rows, pixels", [(70, 90), (12, 5)], ids=["cols-wide", "cols-narrow"])
def test_weight_gradient_in_blocks_of_output_channels_adds_the_same_product(monkeypatch, patch_rows, pixels):
    # the CPU's dW in blocks of output channels (fc6's whole product is a 392 MiB temporary):
    # blocks of 3 rows of 7, the last one short, against the one product; both branches of the
    # product's orientation
    generator = numpy.random.default_rng(3)
    dy = generator.standard_normal((7, pixels))
    cols = generator.standard_normal((patch_rows, pixels))
    start = generator.standard_normal((7, patch_rows))   # dW adds to what is there
    monkeypatch.setattr(conv2d_module, "WEIGHT_GRAD_BLOCK_BYTES", 3 * patch_rows * 8)
    block_rows = []

    class SlicesCounted(numpy.ndarray):   # records the blocks of dy's rows that the products take
        def __getitem__(self, key):
            if isinstance(key, slice):
                block_rows.append(len(range(*key.indices(self.shape[0]))))
            return super().__getitem__(key)

    grad = start.copy()
    conv2d_module.add_weight_grad(grad, dy.view(SlicesCounted), cols)
    numpy.testing.assert_allclose(grad, start + dy @ cols.T, rtol=1e-13, atol=1e-13)
    assert block_rows == [3, 3, 1]


def test_conv_bands_are_never_smaller_than_the_weights(monkeypatch):
    # each band's products read all of W: fc6's 411 MB of weights must not be read once per small band
    monkeypatch.setattr(im2col_module, "BAND_BYTES", 1)
    layer = Conv2d(2, 64, 3, dtype=numpy.float64)      # W: 64*2*3*3 float64 = 9216 bytes
    row_bytes = 2 * 3 * 3 * 8 * 8                      # a patch-matrix row for 8 output columns: 1152 bytes
    # 9216 // 1152 = 8 rows per band
    bands, buffer = conv2d_module.patch_bands(numpy.zeros((1, 2, 12, 10)), 3, 3, 10, 8, layer.params["W"])
    assert bands == [(0, 8), (8, 2)]
    assert buffer.size >= 2 * 3 * 3 * 8 * 8 and buffer.dtype == numpy.float64   # one 8-row band's patches
    assert im2col_module.row_bands(10, row_bytes) == [(row, 1) for row in range(10)]


def test_conv_rejects_input_smaller_than_kernel(xp):
    layer = Conv2d(1, 1, 7, dtype=numpy.float64)
    with pytest.raises(ValueError, match="7x7"):
        layer.forward(xp.zeros((1, 1, 5, 9)))


# The adjoint identity: with W of shape (O, C, k, k), Conv2d(C -> O) maps x (N, C, H, W) to
# y (N, O, H', W'), and ConvTranspose2d(O -> C) with the same array W, in its (in, out, k, k)
# layout, maps y back to (N, C, (H'-1)s + k, ...). Each is the other's adjoint:
#     <conv(x), y> == <x, conv_transpose(y)>
# exactly when (H - k) % s == 0; otherwise conv never reads the last rows of x, and the
# transposed convolution's output stops short of them.
@pytest.mark.parametrize("shape, kernel, stride", [
    ((2, 3, 7, 9), 3, 2),     # sizes match exactly
    ((1, 2, 10, 7), 4, 3),    # stride 3, sizes match exactly
    ((1, 2, 8, 8), 3, 2),     # 8 - 3 is odd: x's last row is never read
    ((1, 3, 9, 11), 3, 3),
    ((2, 2, 6, 5), 1, 1),     # pointwise
])
def test_conv_and_conv_transpose_are_adjoint(xp, shape, kernel, stride):
    n, channels, h, w = shape
    out_channels = 4
    conv = Conv2d(channels, out_channels, kernel, stride=stride, bias=False, dtype=numpy.float64)
    transpose = ConvTranspose2d(out_channels, channels, kernel, stride=stride, dtype=numpy.float64)
    generator = numpy.random.default_rng(3)
    weights = generator.standard_normal((out_channels, channels, kernel, kernel))
    conv.params["W"][...] = backend.to_device(weights)
    transpose.params["W"][...] = backend.to_device(weights)
    x = generator.standard_normal(shape)
    y = generator.standard_normal(conv.output_shape(shape))
    conv_x = backend.to_numpy(conv.forward(backend.to_device(x)))
    transpose_y = backend.to_numpy(transpose.forward(backend.to_device(y)))
    out_h, out_w = transpose_y.shape[2:]
    assert (out_h == h) == ((h - kernel) % stride == 0)
    assert out_h <= h and out_w <= w
    numpy.testing.assert_allclose(numpy.sum(conv_x * y), numpy.sum(x[:, :, :out_h, :out_w] * transpose_y), rtol=1e-12)


@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding", CASES, ids=CASE_IDS)
def test_conv_matches_torch(shape, out_channels, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    layer = make_conv(shape[1], out_channels, kernel, stride, padding)
    generator = numpy.random.default_rng(1)
    x = generator.standard_normal(shape)
    dy = generator.standard_normal(layer.output_shape(shape))
    torch_agrees(torch, layer, x, dy, lambda x_t, params: torch.nn.functional.conv2d(
        x_t, params["W"], params["b"], stride=stride, padding=padding))


@pytest.mark.parametrize("dtype, tolerance", [(numpy.float32, 1e-4), (numpy.float64, 1e-12)])
@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding", CASES, ids=CASE_IDS)
def test_conv_cupy_agrees_with_numpy(cupy_only, dtype, tolerance, shape, out_channels, kernel, stride, padding):
    x = numpy.random.default_rng(1).standard_normal(shape).astype(dtype)
    backends_agree(lambda: make_conv(shape[1], out_channels, kernel, stride, padding, dtype=dtype), [x],
                   rtol=tolerance, atol=tolerance)


def test_conv_without_input_grad_returns_none_and_the_same_parameter_gradients():
    from fcnlite import rng
    rng.seed(3)
    layer = Conv2d(3, 4, 3, padding=2, dtype=numpy.float64)
    x = numpy.random.default_rng(0).normal(size=(2, 3, 7, 6))
    dy = numpy.random.default_rng(1).normal(size=layer.output_shape(x.shape))
    layer.forward(x)
    layer.backward(dy)
    expected = {key: grad.copy() for key, grad in layer.grads.items()}
    layer.zero_grad()
    layer.input_grad = False
    layer.forward(x)
    assert layer.backward(dy) is None
    for key in expected:
        numpy.testing.assert_allclose(layer.grads[key], expected[key], rtol=1e-12)
