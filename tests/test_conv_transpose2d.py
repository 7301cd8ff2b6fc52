"""ConvTranspose2d: numerical gradients, frozen upsampling, PyTorch, and the bilinear initialisation."""
import numpy
import pytest

from fcnlite import backend
from fcnlite.layers import ConvTranspose2d, bilinear_kernel, winograd
from fcnlite.layers import conv2d as conv2d_module
from gradcheck import backends_agree, host_pass, layer_gradient_errors, torch_agrees
from test_host_threads import both_ways

# (input shape, out channels, kernel, stride, bias)
CASES = [
    ((1, 2, 3, 4), 3, 3, 1, False),   # stride 1
    ((2, 3, 3, 2), 2, 4, 2, False),   # FCN's upscore2 / upscore_pool4: kernel 4, stride 2
    ((1, 2, 4, 3), 2, 4, 2, True),    # with a bias
    ((1, 2, 3, 2), 2, 4, 3, False),   # stride 3: stamps do not overlap evenly (kernel padded to 6 taps)
    ((1, 2, 3, 4), 2, 3, 2, True),    # kernel 3, stride 2 (padded to 4 taps)
    ((2, 2, 3, 3), 3, 2, 3, False),   # stride larger than the kernel: gaps between the stamps
    ((1, 2, 2, 3), 2, 16, 8, False),  # FCN-8s's upscore8: kernel 16, stride 8
    ((1, 1, 2, 2), 2, 5, 1, False),   # odd kernel
]
CASE_IDS = [f"x{'x'.join(map(str, s))}-o{o}-k{k}-s{st}{'-bias' if b else ''}" for s, o, k, st, b in CASES]


def make_transpose(in_channels, out_channels, kernel, stride, bias=False, seed=0, dtype=numpy.float64):
    layer = ConvTranspose2d(in_channels, out_channels, kernel, stride=stride, bias=bias, dtype=dtype)
    generator = numpy.random.default_rng(seed)
    for key, value in layer.params.items():
        value[...] = backend.to_device(generator.standard_normal(value.shape), dtype=dtype)
    return layer


def conv_transpose2d_direct(x, weights, bias, stride):
    """Every input pixel stamps its channel's kernel, scaled by its value, at (iy*s, ix*s)."""
    n, in_c, h, w = x.shape
    _, out_c, kernel, _ = weights.shape
    y = numpy.zeros((n, out_c, (h - 1) * stride + kernel, (w - 1) * stride + kernel))
    for image in range(n):
        for c in range(in_c):
            for iy in range(h):
                for ix in range(w):
                    y[image, :, iy * stride:iy * stride + kernel, ix * stride:ix * stride + kernel] += \
                        x[image, c, iy, ix] * weights[c]
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


@pytest.mark.parametrize("shape, out_channels, kernel, stride, bias", CASES, ids=CASE_IDS)
def test_conv_transpose_forward_matches_direct_stamping(xp, shape, out_channels, kernel, stride, bias):
    layer = make_transpose(shape[1], out_channels, kernel, stride, bias)
    x = numpy.random.default_rng(1).standard_normal(shape)
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    host_bias = backend.to_numpy(layer.params["b"]) if bias else None
    expected = conv_transpose2d_direct(x, backend.to_numpy(layer.params["W"]), host_bias, stride)
    assert y.shape == layer.output_shape(shape)
    numpy.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, out_channels, kernel, stride, bias", CASES, ids=CASE_IDS)
def test_conv_transpose_backward_matches_numerical_gradient(xp, shape, out_channels, kernel, stride, bias):
    layer = make_transpose(shape[1], out_channels, kernel, stride, bias)
    x = backend.to_device(numpy.random.default_rng(1).standard_normal(shape))
    # kernel 16 has 512+ weights, each costing two passes: a random 150 of them are enough
    errors = layer_gradient_errors(layer, [x], max_entries=150)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("kernel, stride", [(4, 2), (16, 8)])
def test_frozen_conv_transpose_gives_zero_weight_gradient_and_correct_input_gradient(xp, kernel, stride):
    layer = make_transpose(2, 2, kernel, stride)
    layer.frozen = True
    x = backend.to_device(numpy.random.default_rng(1).standard_normal((1, 2, 3, 2)))
    errors = layer_gradient_errors(layer, [x], params_to_check=[])
    assert errors["x0"] < 1e-6, errors
    assert not backend.to_numpy(layer.grads["W"]).any()


def test_conv_transpose_gradients_accumulate_until_zero_grad(xp):
    layer = make_transpose(2, 3, 4, 2, bias=True)
    generator = numpy.random.default_rng(1)
    x = backend.to_device(generator.standard_normal((2, 2, 3, 4)))
    dy = backend.to_device(generator.standard_normal(layer.output_shape(x.shape)))
    layer.forward(x)
    layer.zero_grad()
    dx_first = backend.to_numpy(layer.backward(dy))
    once = {key: backend.to_numpy(grad).copy() for key, grad in layer.grads.items()}
    numpy.testing.assert_array_equal(backend.to_numpy(layer.backward(dy)), dx_first)
    for key, grad in layer.grads.items():
        numpy.testing.assert_allclose(backend.to_numpy(grad), 2 * once[key], rtol=1e-12, err_msg=key)
    layer.zero_grad()
    assert not any(backend.to_numpy(grad).any() for grad in layer.grads.values())


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("shape, kernel, stride", [((2, 3, 6, 5), 4, 2), ((1, 2, 5, 3), 16, 8), ((1, 2, 7, 4), 3, 1)])
def test_conv_transpose_row_bands_agree_with_one_band(xp, monkeypatch, shape, kernel, stride, frozen):
    layer = make_transpose(shape[1], 3, kernel, stride)
    layer.frozen = frozen   # frozen: the phases' convolution computes dx alone (col2im without the patch matrix)
    generator = numpy.random.default_rng(2)
    x = backend.to_device(generator.standard_normal(shape))
    dy = backend.to_device(generator.standard_normal(layer.output_shape(shape)))

    def run():
        return host_pass(layer, x, dy)   # y, dx, dW

    whole = run()
    band_counts = []

    def one_row_per_band(out_h, *args, **kwargs):
        band_counts.append(out_h)
        return [(row, 1) for row in range(out_h)]
    monkeypatch.setattr(conv2d_module, "row_bands", one_row_per_band)
    banded = run()
    assert band_counts and min(band_counts) > 1   # the phases' convolution really ran in several bands
    for name, a, b in zip(["y", "dx", "dW"], banded, whole):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("frozen", [False, True])
def test_conv_transpose_with_stride_1_through_winograd_matches_direct_stamping(monkeypatch, frozen):
    # stride 1, kernel 3: the phases' convolution is one 3x3, stride-1 convolution padded by 2
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    calls = []
    real = winograd.convolve3x3
    monkeypatch.setattr(winograd, "convolve3x3", lambda *args: calls.append(args[2]) or real(*args))
    layer = make_transpose(3, 2, 3, 1, bias=True)
    layer.frozen = frozen
    x = numpy.random.default_rng(1).standard_normal((2, 3, 4, 5))
    expected = conv_transpose2d_direct(x, layer.params["W"], layer.params["b"], 1)
    numpy.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    assert calls == [2]   # y: padding 2
    errors = layer_gradient_errors(layer, [x], eps=1.0, params_to_check=["b"] if frozen else None)  # linear
    assert max(errors.values()) < 1e-6, errors
    assert 0 in calls     # dx: padding 2 - 2


def test_conv_transpose_split_over_threads_agrees_with_one_thread(finest_split):
    layer = make_transpose(3, 4, 16, 8, dtype=numpy.float32)
    generator = numpy.random.default_rng(3)
    x = generator.standard_normal((2, 3, 3, 4)).astype(numpy.float32)
    dy = generator.standard_normal(layer.output_shape(x.shape)).astype(numpy.float32)

    def run():
        layer.zero_grad()
        return layer.forward(x), layer.backward(dy), layer.grads["W"].copy()
    whole, split = both_ways(finest_split, run)
    for name, a, b in zip(["y", "dx", "dW"], split, whole):
        numpy.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("shape, out_channels, kernel, stride, bias", CASES, ids=CASE_IDS)
def test_conv_transpose_matches_torch(shape, out_channels, kernel, stride, bias):
    torch = pytest.importorskip("torch")
    layer = make_transpose(shape[1], out_channels, kernel, stride, bias)
    generator = numpy.random.default_rng(1)
    x = generator.standard_normal(shape)
    dy = generator.standard_normal(layer.output_shape(shape))
    torch_agrees(torch, layer, x, dy, lambda x_t, params: torch.nn.functional.conv_transpose2d(
        x_t, params["W"], params.get("b"), stride=stride))


def upsample_filt(size):
    """The reference FCN's surgery.upsample_filt, transcribed."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = numpy.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


def test_bilinear_kernel_of_size_4_is_the_outer_product_of_the_tent():
    tent = numpy.array([0.25, 0.75, 0.75, 0.25])
    numpy.testing.assert_allclose(bilinear_kernel(4), numpy.outer(tent, tent), rtol=0, atol=1e-15)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 16, 32, 64])
def test_bilinear_kernel_matches_reference_formula(size):
    numpy.testing.assert_allclose(bilinear_kernel(size), upsample_filt(size), rtol=0, atol=1e-15)


def test_bilinear_kernel_of_size_16_has_the_reference_values():
    tent = (numpy.array([1, 3, 5, 7, 9, 11, 13, 15, 15, 13, 11, 9, 7, 5, 3, 1]) / 16)
    numpy.testing.assert_allclose(bilinear_kernel(16), numpy.outer(tent, tent), rtol=0, atol=1e-15)


@pytest.mark.parametrize("kernel, stride", [(4, 2), (16, 8), (64, 32)])
def test_bilinear_upsampling_maps_a_linear_ramp_to_a_linear_ramp(xp, kernel, stride):
    """Away from the borders, each output pixel j sits at input position (j - (kernel - 1) / 2) / stride
    and gets exactly the linear interpolation there; channels are not mixed."""
    channels, h, w = 2, 4, 5
    layer = ConvTranspose2d(channels, channels, kernel, stride=stride, dtype=numpy.float64).init_bilinear()
    rows, cols = numpy.meshgrid(numpy.arange(h), numpy.arange(w), indexing="ij")
    slopes = [(0.5, -1.25, 3.0), (-2.0, 0.75, -1.0)]     # (row slope, column slope, offset) per channel
    x = numpy.stack([a * rows + b * cols + c for a, b, c in slopes])[None]
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    assert y.shape == (1, channels, (h - 1) * stride + kernel, (w - 1) * stride + kernel)
    center = (kernel - 1) / 2
    out_rows, out_cols = numpy.meshgrid(numpy.arange(y.shape[2]), numpy.arange(y.shape[3]), indexing="ij")
    interior = (slice(stride, h * stride), slice(stride, w * stride))
    for channel, (a, b, c) in enumerate(slopes):
        expected = a * (out_rows - center) / stride + b * (out_cols - center) / stride + c
        numpy.testing.assert_allclose(y[0, channel][interior], expected[interior], rtol=1e-12, atol=1e-12)


def test_init_bilinear_does_not_mix_channels(xp):
    layer = ConvTranspose2d(3, 3, 4, stride=2, dtype=numpy.float64).init_bilinear()
    weights = backend.to_numpy(layer.params["W"])
    for c_in in range(3):
        for c_out in range(3):
            expected = bilinear_kernel(4) if c_in == c_out else numpy.zeros((4, 4))
            numpy.testing.assert_array_equal(weights[c_in, c_out], expected)


@pytest.mark.parametrize("dtype, tolerance", [(numpy.float32, 1e-4), (numpy.float64, 1e-12)])
@pytest.mark.parametrize("shape, out_channels, kernel, stride, bias", CASES, ids=CASE_IDS)
def test_conv_transpose_cupy_agrees_with_numpy(cupy_only, dtype, tolerance, shape, out_channels, kernel, stride, bias):
    x = numpy.random.default_rng(1).standard_normal(shape).astype(dtype)
    backends_agree(lambda: make_transpose(shape[1], out_channels, kernel, stride, bias, dtype=dtype), [x],
                   rtol=tolerance, atol=tolerance)
