"""Winograd F(2x2, 3x3): the same convolution as im2col's, in float64 to rounding and in float32 to its
precision, for y, dx and dW through Conv2d, in bands and over threads."""
import numpy
import pytest

from fcnlite.layers import Conv2d, winograd
from fcnlite.layers.conv2d import convolve, convolve_backward
from gradcheck import layer_gradient_errors
from test_conv2d import conv2d_direct, make_conv
from test_host_threads import both_ways

# (input shape (N, C, H, W), out channels, padding): odd and even sizes, outputs of one row or column
CASES = [
    ((2, 3, 7, 9), 4, 1),
    ((1, 2, 6, 5), 3, 0),
    ((1, 3, 5, 8), 2, 2),
    ((1, 2, 3, 3), 3, 1),
    ((1, 1, 4, 3), 2, 0),      # a 2x1 output: one tile, half of it outside
    ((1, 2, 1, 6), 2, 1),      # a single input row
]
CASE_IDS = [f"x{'x'.join(map(str, s))}-o{o}-p{p}" for s, o, p in CASES]


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Conv2d takes Winograd's form for every 3x3, stride-1 layer, however few its channels; calls are
    counted as (function name, shape of its first argument)."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    calls = []
    for name in ("convolve3x3", "weight_grad3x3"):
        def counted(*args, real=getattr(winograd, name), name=name):
            calls.append((name, args[0].shape))
            return real(*args)
        monkeypatch.setattr(winograd, name, counted)
    return calls


def im2col_convolve(x, weights, padding, monkeypatch):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)
    out_c = weights.shape[0]
    return convolve(x, weights.reshape(out_c, -1), 3, 3, 1, padding)


@pytest.mark.parametrize("shape, out_channels, padding", CASES, ids=CASE_IDS)
def test_winograd_matches_im2col_in_float64(monkeypatch, shape, out_channels, padding):
    generator = numpy.random.default_rng(0)
    x = generator.standard_normal(shape)
    weights = generator.standard_normal((out_channels, shape[1], 3, 3))
    expected = im2col_convolve(x, weights, padding, monkeypatch)
    numpy.testing.assert_allclose(winograd.convolve3x3(x, weights, padding), expected, rtol=1e-12, atol=1e-12)


def test_winograd_in_float32_is_as_close_to_float64_as_im2col(monkeypatch):
    # conv3_2's channel count: 256 products summed per output, where rounding errors accumulate
    generator = numpy.random.default_rng(1)
    x = generator.standard_normal((1, 256, 9, 11))
    weights = generator.standard_normal((8, 256, 3, 3)) / 48
    exact = im2col_convolve(x, weights, 1, monkeypatch)
    x32, weights32 = x.astype(numpy.float32), weights.astype(numpy.float32)
    direct_error = numpy.abs(im2col_convolve(x32, weights32, 1, monkeypatch) - exact).max()
    winograd_error = numpy.abs(winograd.convolve3x3(x32, weights32, 1) - exact).max()
    assert winograd_error < 4 * direct_error and winograd_error < 1e-5 * numpy.abs(exact).max()


@pytest.mark.parametrize("shape, out_channels, padding", CASES, ids=CASE_IDS)
def test_conv2d_by_winograd_matches_direct_loop_and_numerical_gradient(winograd_everywhere, shape, out_channels,
                                                                       padding):
    layer = make_conv(shape[1], out_channels, 3, 1, padding)
    x = numpy.random.default_rng(1).standard_normal(shape)
    expected = conv2d_direct(x, layer.params["W"], layer.params["b"], 1, padding)
    numpy.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    # a step of 1: the layer is linear in x and in W, so central differences are exact for any step
    # but for rounding, and a weight that multiplies only padding (true gradient 0) needs a large
    # one: Winograd's transforms cancel its contribution to within rounding (1e-16), not exactly
    errors = layer_gradient_errors(layer, [x], eps=1.0)
    assert max(errors.values()) < 1e-6, errors
    # y in forward, dx in backward (dy convolved with the flipped kernel, padded by 2 - padding), and dW
    assert {("convolve3x3", shape), ("convolve3x3", layer.output_shape(shape)),
            ("weight_grad3x3", shape)} <= set(winograd_everywhere)


@pytest.mark.parametrize("shape, out_channels, padding", CASES, ids=CASE_IDS)
def test_winograd_weight_gradient_matches_im2col_in_float64(monkeypatch, shape, out_channels, padding):
    generator = numpy.random.default_rng(0)
    x = generator.standard_normal(shape)
    out_h, out_w = shape[2] + 2 * padding - 2, shape[3] + 2 * padding - 2
    dy = generator.standard_normal((shape[0], out_channels, out_h, out_w))
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)
    expected = numpy.zeros((out_channels, shape[1] * 9))
    convolve_backward(x, dy, numpy.zeros_like(expected), expected, 3, 3, 1, padding, input_grad=False)
    grad = winograd.weight_grad3x3(x, dy, padding)
    assert grad.shape == (out_channels, shape[1], 3, 3)
    numpy.testing.assert_allclose(grad.reshape(out_channels, -1), expected, rtol=1e-12, atol=1e-12)


def test_winograd_bands_of_one_tile_row_agree_with_one_band(monkeypatch):
    generator = numpy.random.default_rng(2)
    x = generator.standard_normal((2, 3, 9, 7))
    weights = generator.standard_normal((4, 3, 3, 3))
    dy = generator.standard_normal((2, 4, 9, 7))
    whole = winograd.convolve3x3(x, weights, 1), winograd.weight_grad3x3(x, dy, 1)
    monkeypatch.setattr(winograd, "BAND_BYTES", 1)
    banded = winograd.convolve3x3(x, weights, 1), winograd.weight_grad3x3(x, dy, 1)
    for name, a, b in zip(["y", "dW"], banded, whole):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


def test_winograd_split_over_threads_agrees_with_one_thread(finest_split):
    generator = numpy.random.default_rng(3)
    x = generator.standard_normal((1, 7, 9, 10)).astype(numpy.float32)
    weights = generator.standard_normal((5, 7, 3, 3)).astype(numpy.float32)
    dy = generator.standard_normal((1, 5, 9, 10)).astype(numpy.float32)
    whole, split = both_ways(finest_split, lambda: (winograd.convolve3x3(x, weights, 1),
                                                     winograd.weight_grad3x3(x, dy, 1)))
    for name, a, b in zip(["y", "dW"], split, whole):
        numpy.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("kernel, stride, padding, channels, out_channels, takes", [
    (3, 1, 1, 128, 128, True),
    (3, 1, 0, 512, 256, True),
    (3, 1, 1, 64, 128, False),     # few channels in: im2col's one product (K = 9C) is faster
    (3, 1, 1, 128, 64, False),     # few out (conv2_1's dx): col2im's product and scatter are faster
    (3, 2, 1, 128, 128, False),
    (7, 1, 0, 512, 4096, False),   # fc6
    (3, 1, 3, 128, 128, False),    # dx would need a negative padding
])
def test_winograd_applies_to_wide_3x3_stride_1_convolutions_on_the_cpu(kernel, stride, padding, channels,
                                                                       out_channels, takes):
    x = numpy.zeros((1, channels, 8, 8), dtype=numpy.float32)
    assert winograd.applies(x, kernel, kernel, stride, padding, out_channels) is takes


def test_winograd_is_not_used_for_gpu_arrays(cupy_only):
    x = cupy_only.zeros((1, 256, 8, 8), dtype=numpy.float32)
    assert not winograd.applies(x, 3, 3, 1, 1, 256)


@pytest.mark.parametrize("in_channels, out_channels, forms", [
    (64, 64, set()),                    # conv1_2: im2col throughout
    (64, 128, set()),                   # conv2_1: dx's convolution would make only 64 channels
    (128, 128, {"y", "dx", "dW"}),      # conv2_2 on
    (128, 4, set()),                    # a score layer's width
])
def test_vgg_width_convs_take_winograd_with_enough_channels_on_both_sides(winograd_everywhere, monkeypatch,
                                                                          in_channels, out_channels, forms):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 128)
    layer = Conv2d(in_channels, out_channels, 3, padding=1, dtype=numpy.float32)
    y = layer.forward(numpy.ones((1, in_channels, 5, 6), dtype=numpy.float32))
    layer.backward(numpy.ones_like(y))
    expected = {"y": ("convolve3x3", (1, in_channels, 5, 6)), "dx": ("convolve3x3", (1, out_channels, 5, 6)),
                "dW": ("weight_grad3x3", (1, in_channels, 5, 6))}
    assert sorted(winograd_everywhere) == sorted(expected[form] for form in forms)


def test_fcn8s_scores_and_gradients_are_the_same_with_winograd_and_with_im2col(monkeypatch):
    from fcnlite.models import build_model
    from test_models import randomize_scores
    model = build_model("fcn8s", n_classes=3, width=1 / 16, dtype=numpy.float64).eval()   # no dropout
    randomize_scores(model, numpy.random.default_rng(0))
    x = numpy.random.default_rng(1).standard_normal((1, 3, 21, 26))

    def run(min_channels):
        monkeypatch.setattr(winograd, "MIN_CHANNELS", min_channels)
        model.zero_grad()
        scores = model.forward(x)
        model.backward(numpy.random.default_rng(2).standard_normal(scores.shape))
        return [scores] + [grad.copy() for _, _, grad in model.named_parameters()]
    for with_im2col, with_winograd in zip(run(10**9), run(1)):
        numpy.testing.assert_allclose(with_winograd, with_im2col, rtol=1e-9, atol=1e-12)
