"""ReLU, Dropout, Crop, Sum and Scale: forward rules and numerically checked gradients."""
import re

import numpy
import pytest

from fcnlite import backend, rng
from fcnlite.layers import Conv2d, ConvTranspose2d, Crop, Dropout, MaxPool2d, ReLU, Scale, SoftmaxCrossEntropy, Sum
from gradcheck import backends_agree, layer_gradient_errors


def away_from_zero(shape, seed=0):
    """Random values with |x| in [0.1, 2]: no entry within eps of ReLU's kink."""
    generator = numpy.random.default_rng(seed)
    return generator.choice([-1.0, 1.0], size=shape) * generator.uniform(0.1, 2.0, size=shape)


# ReLU

def test_relu_forward_is_max_with_zero(xp):
    x = away_from_zero((2, 3, 4, 5))
    y = ReLU().forward(backend.to_device(x))
    assert y.dtype == x.dtype
    numpy.testing.assert_array_equal(backend.to_numpy(y), numpy.maximum(x, 0))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 7, 3)])
def test_relu_backward_matches_numerical_gradient(xp, shape):
    x = backend.to_device(away_from_zero(shape))
    errors = layer_gradient_errors(ReLU(dtype=numpy.float64), [x])
    assert errors["x0"] < 1e-6, errors


def test_relu_gradient_is_zero_at_zero(xp):
    layer = ReLU()
    layer.forward(xp.zeros((1, 1, 1, 2)))
    assert not backend.to_numpy(layer.backward(xp.ones((1, 1, 1, 2)))).any()


# Dropout

@pytest.mark.parametrize("p", [0.5, 0.2])
def test_dropout_backward_matches_numerical_gradient_with_a_fixed_mask(xp, p):
    layer = Dropout(p, dtype=numpy.float64).train()
    x = backend.to_device(numpy.random.default_rng(1).standard_normal((2, 3, 4, 5)))

    def forward():
        rng.seed(5)             # the same mask on every pass, analytic and numerical alike
        return layer.forward(x)

    errors = layer_gradient_errors(layer, [x], forward=forward)
    assert errors["x0"] < 1e-6, errors


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_dropout_in_training_zeroes_and_rescales_with_one_mask(xp, p):
    layer = Dropout(p, dtype=numpy.float64).train()
    x = numpy.random.default_rng(1).uniform(1.0, 2.0, size=(4, 8, 16, 16))
    y = backend.to_numpy(layer.forward(backend.to_device(x)))
    mask = backend.to_numpy(layer._mask)
    kept = y != 0
    numpy.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)   # survivors scaled by 1/(1-p)
    assert numpy.mean(kept) == pytest.approx(1 - p, abs=0.02)
    numpy.testing.assert_array_equal(mask != 0, kept)
    dy = numpy.random.default_rng(2).standard_normal(x.shape)
    dx = backend.to_numpy(layer.backward(backend.to_device(dy)))
    numpy.testing.assert_allclose(dx, dy * mask, rtol=1e-15)                # backward uses the stored mask


def test_dropout_masks_are_reproducible_from_the_seed(xp):
    layer = Dropout(0.5)
    x = xp.ones((2, 3, 8, 8), dtype=numpy.float32)
    rng.seed(11)
    first = backend.to_numpy(layer.forward(x))
    state = rng.get_state()
    second = backend.to_numpy(layer.forward(x))
    rng.seed(11)
    numpy.testing.assert_array_equal(backend.to_numpy(layer.forward(x)), first)
    assert (first != second).any()                                           # a new mask each step
    rng.set_state(state)
    numpy.testing.assert_array_equal(backend.to_numpy(layer.forward(x)), second)


def test_dropout_in_eval_mode_is_the_identity_forward_and_backward(xp):
    layer = Dropout(0.5, dtype=numpy.float64)
    x = backend.to_device(numpy.random.default_rng(1).standard_normal((2, 3, 4, 5)))
    dy = backend.to_device(numpy.random.default_rng(2).standard_normal((2, 3, 4, 5)))
    layer.train().forward(x)                  # leaves a training mask behind ...
    layer.eval()
    assert layer.forward(x) is x
    # ... which the backward after an eval forward must not use: dy passes through, not even copied
    assert layer.backward(dy) is dy
    errors = layer_gradient_errors(layer, [x])
    assert errors["x0"] < 1e-6, errors


def test_dropout_with_p_zero_is_the_identity_in_training(xp):
    x = xp.ones((1, 2, 3, 3))
    numpy.testing.assert_array_equal(backend.to_numpy(Dropout(0.0).train().forward(x)), 1.0)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_dropout_rejects_p_outside_zero_to_one(p):
    with pytest.raises(ValueError, match="p must be in"):
        Dropout(p)


# Crop

@pytest.mark.parametrize("shape, reference, offset", [
    ((2, 3, 7, 9), (1, 5, 4, 3), 2),
    ((1, 2, 5, 5), (1, 2, 5, 5), 0),          # nothing to cut
    ((1, 2, 6, 4), (1, 1, 1, 1), 3),          # down to a single pixel at the far corner
])
def test_crop_forward_cuts_the_reference_size_at_the_offset(xp, shape, reference, offset):
    x = numpy.random.default_rng(1).standard_normal(shape)
    layer = Crop(offset)
    h, w = reference[2:]
    expected = x[:, :, offset:offset + h, offset:offset + w]
    numpy.testing.assert_array_equal(backend.to_numpy(layer.forward(backend.to_device(x), reference)), expected)
    # a reference array does the same as its shape
    reference_array = xp.zeros(reference)
    numpy.testing.assert_array_equal(backend.to_numpy(layer.forward(backend.to_device(x), reference_array)), expected)


@pytest.mark.parametrize("shape, reference, offset", [((2, 3, 7, 9), (1, 5, 4, 3), 2), ((1, 2, 6, 4), (1, 1, 1, 1), 3)])
def test_crop_backward_matches_numerical_gradient(xp, shape, reference, offset):
    x = backend.to_device(numpy.random.default_rng(1).standard_normal(shape))
    errors = layer_gradient_errors(Crop(offset, dtype=numpy.float64), [x, reference], inputs_to_check=[0])
    assert errors["x0"] < 1e-6, errors


def test_crop_larger_than_the_input_raises_value_error(xp):
    with pytest.raises(ValueError, match="cannot cut 5x3 at offset 3 from 7x9"):
        Crop(3).forward(xp.zeros((1, 1, 7, 9)), (1, 1, 5, 3))


@pytest.mark.parametrize("offset", [-1, 2.5, True])
def test_a_crop_offset_that_is_not_a_count_of_pixels_is_refused(offset):
    # -1 sliced from the far end: Crop(-1) cut an empty window from a 7x9 map without a word
    with pytest.raises(ValueError, match=rf"^Crop: offset is {offset!r}: give the window's offset in pixels"):
        Crop(offset)


# Sum and Scale

def test_sum_forward_and_backward_match_numerical_gradient(xp):
    generator = numpy.random.default_rng(1)
    a = backend.to_device(generator.standard_normal((2, 3, 4, 5)))
    b = backend.to_device(generator.standard_normal((2, 3, 4, 5)))
    layer = Sum(dtype=numpy.float64)
    numpy.testing.assert_array_equal(backend.to_numpy(layer.forward(a, b)), backend.to_numpy(a) + backend.to_numpy(b))
    errors = layer_gradient_errors(layer, [a, b])
    assert max(errors.values()) < 1e-6, errors


def test_sum_of_different_shapes_raises_value_error(xp):
    with pytest.raises(ValueError, match="shapes differ"):
        Sum().forward(xp.zeros((1, 2, 3, 3)), xp.zeros((1, 2, 3, 4)))


@pytest.mark.parametrize("factor", [0.01, 0.0001, -3.0])
def test_scale_forward_and_backward_match_numerical_gradient(xp, factor):
    x = backend.to_device(numpy.random.default_rng(1).standard_normal((2, 3, 4, 5)))
    layer = Scale(factor, dtype=numpy.float64)
    numpy.testing.assert_allclose(backend.to_numpy(layer.forward(x)), factor * backend.to_numpy(x), rtol=1e-15)
    errors = layer_gradient_errors(layer, [x])
    assert errors["x0"] < 1e-6, errors


def test_scale_keeps_float32(xp):
    assert Scale(0.01).forward(xp.ones((1, 1, 2, 2), dtype=numpy.float32)).dtype == numpy.float32


# CuPy against NumPy

@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("make_layer, inputs", [
    (lambda dtype: ReLU(dtype=dtype), lambda dtype: [away_from_zero((2, 3, 4, 5)).astype(dtype)]),
    (lambda dtype: Dropout(0.5, dtype=dtype).eval(), lambda dtype: [away_from_zero((2, 3, 4, 5)).astype(dtype)]),
    (lambda dtype: Crop(2, dtype=dtype), lambda dtype: [away_from_zero((2, 3, 7, 9)).astype(dtype), (1, 1, 4, 3)]),
    (lambda dtype: Sum(dtype=dtype), lambda dtype: [away_from_zero((2, 3, 4, 5)).astype(dtype),
                                                    away_from_zero((2, 3, 4, 5), seed=1).astype(dtype)]),
    (lambda dtype: Scale(0.01, dtype=dtype), lambda dtype: [away_from_zero((2, 3, 4, 5)).astype(dtype)]),
], ids=["relu", "dropout-eval", "crop", "sum", "scale"])
def test_simple_layer_cupy_agrees_with_numpy(cupy_only, dtype, make_layer, inputs):
    backends_agree(lambda: make_layer(dtype), inputs(dtype), rtol=1e-6, atol=1e-7)


def test_inplace_relu_overwrites_its_input_and_keeps_the_same_gradient():
    from fcnlite.layers import ReLU
    x = numpy.random.default_rng(0).normal(size=(2, 3, 4, 5))
    expected = numpy.maximum(x, 0)
    dy = numpy.random.default_rng(1).normal(size=x.shape)
    plain, inplace = ReLU(dtype=numpy.float64), ReLU(inplace=True, dtype=numpy.float64)
    plain_y = plain.forward(x.copy())
    x_inplace = x.copy()
    y = inplace.forward(x_inplace)
    assert y is x_inplace
    numpy.testing.assert_array_equal(y, expected)
    numpy.testing.assert_array_equal(plain_y, expected)
    numpy.testing.assert_array_equal(inplace.backward(dy), plain.backward(dy))


def test_no_grad_keeps_nothing_for_backward_and_gives_the_same_scores():
    import fcnlite
    from fcnlite.layers import no_grad
    model = fcnlite.FCN8s(n_classes=3, width=1 / 16).eval()
    x = numpy.random.default_rng(0).normal(size=(1, 3, 21, 17)).astype(numpy.float32)
    scores = model.forward(x)
    with no_grad():
        scores_no_grad = model.forward(x)
    numpy.testing.assert_array_equal(scores, scores_no_grad)
    assert model.layers["conv1_2"]._x is None and model.layers["pool1"]._argmax is None
    assert fcnlite.layers.grad_enabled()


@pytest.mark.parametrize("name", ["upscore8", "conv1_2", "relu1_2", "pool1"])
def test_backward_after_a_no_grad_forward_says_why_it_cannot_run(name):
    import fcnlite
    from fcnlite.layers import no_grad
    model = fcnlite.FCN8s(n_classes=3, width=1 / 16)
    x = numpy.random.default_rng(0).normal(size=(1, 3, 21, 17)).astype(numpy.float32)
    with no_grad():
        scores = model.forward(x)
    layer = model.layers[name]
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}\.backward: its forward kept nothing for "
                                           rf"backward \(it has not run, or ran under no_grad\)"):
        if name == "upscore8":
            model.backward(numpy.ones_like(scores))   # the first layer backward meets, through the whole model
        else:
            layer.backward(numpy.ones((1, 4, 8, 8), numpy.float32))


@pytest.mark.parametrize("name", ["conv1_1", "upscore8", "relu1_1", "pool1"])
def test_backward_before_any_forward_says_why_it_cannot_run(name):
    import fcnlite
    layer = fcnlite.FCN8s(n_classes=3, width=1 / 16).layers[name]
    with pytest.raises(RuntimeError, match="its forward kept nothing for backward \\(it has not run"):
        layer.backward(numpy.ones((1, 4, 8, 8), numpy.float32))


@pytest.mark.parametrize("make", [lambda: Dropout(0.5), lambda: Crop(1), lambda: SoftmaxCrossEntropy()],
                         ids=["dropout", "crop", "loss"])
def test_layers_that_keep_under_no_grad_say_before_any_forward_that_it_has_not_run(make):
    layer = make()
    with pytest.raises(RuntimeError, match=rf"^{type(layer).__name__}\.backward: its forward kept nothing for "
                                           rf"backward \(it has not run\): run forward first$"):
        layer.backward() if isinstance(layer, SoftmaxCrossEntropy) else layer.backward(numpy.ones((1, 4, 8, 8), numpy.float32))


@pytest.mark.parametrize("layer", [Conv2d(4, 8, 3), ConvTranspose2d(4, 8, 4, stride=2)])
def test_an_input_with_another_channel_count_is_refused_naming_both(layer):
    with pytest.raises(ValueError, match=r"input \(1, 5, 9, 9\) should be \(N, 4, H, W\): the layer takes 4 channels"):
        layer.forward(numpy.zeros((1, 5, 9, 9), numpy.float32))


def test_labels_that_are_not_integers_are_refused():
    from fcnlite.layers import SoftmaxCrossEntropy
    scores = numpy.zeros((1, 3, 2, 2))
    with pytest.raises(ValueError, match="labels must be integers \\(class indices\\), not float64"):
        SoftmaxCrossEntropy(dtype=numpy.float64).forward(scores, numpy.full((1, 2, 2), 1.7))


@pytest.mark.parametrize("make, x_shape, dy_shape", [
    (lambda: Conv2d(2, 3, 3, dtype=numpy.float64), (1, 2, 5, 5), (1, 3, 4, 4)),   # another size: wrong dW, no error
    (lambda: Conv2d(2, 3, 3, dtype=numpy.float64), (1, 2, 5, 5), (2, 3, 3, 3)),   # another batch
    (lambda: ConvTranspose2d(2, 2, 4, stride=2, dtype=numpy.float64), (1, 2, 3, 3), (1, 2, 5, 5)),
    (lambda: MaxPool2d(2, 2, dtype=numpy.float64), (1, 1, 5, 7), (1, 1, 2, 2)),
    (lambda: ReLU(dtype=numpy.float64), (1, 2, 3, 3), (2, 2, 3, 3)),               # broadcast into a batch of 2
    (lambda: Dropout(0.5, dtype=numpy.float64), (1, 2, 3, 3), (2, 2, 3, 3)),
], ids=["conv-size", "conv-batch", "conv-transpose", "maxpool", "relu", "dropout"])
def test_backward_refuses_a_gradient_of_another_shape_than_forward_gave(make, x_shape, dy_shape):
    layer = make()
    y = layer.forward(numpy.ones(x_shape))
    with pytest.raises(ValueError, match=rf"^{type(layer).__name__}\.backward: the gradient has shape "
                                         rf"{re.escape(str(dy_shape))}, the output of the last forward "
                                         rf"{re.escape(str(tuple(y.shape)))}"):
        layer.backward(numpy.ones(dy_shape))


@pytest.mark.parametrize("run, name, shape", [
    (lambda: MaxPool2d().forward(numpy.ones((3, 5, 5))), "MaxPool2d", (3, 5, 5)),   # an image without its batch axis
    (lambda: Crop(1).forward(numpy.ones((3, 5, 5)), (1, 1, 2, 2)), "Crop", (3, 5, 5)),
    (lambda: SoftmaxCrossEntropy().forward(numpy.ones((3, 2, 2)), numpy.zeros((2, 2), int)), "SoftmaxCrossEntropy",
     (3, 2, 2)),
], ids=["maxpool", "crop", "loss"])
def test_an_input_without_four_axes_is_refused_naming_its_shape(run, name, shape):
    with pytest.raises(ValueError, match=rf"^{name}: .*{re.escape(str(shape))} should be \(N, C, H, W\)"):
        run()


@pytest.mark.parametrize("layer", [Conv2d(2, 3, 3), Conv2d(2, 3, 1), ConvTranspose2d(2, 2, 4, stride=2)],
                         ids=["conv", "conv-1x1", "conv-transpose"])
def test_a_convolution_of_integers_is_refused_saying_it_takes_floats(layer):
    # an image of 0..255 integers fed to a layer: NumPy failed in the matrix product ("Cannot cast ufunc 'matmul'
    # output"), or a 1x1 convolution answered in another dtype
    with pytest.raises(TypeError, match=rf"^{type(layer).__name__}: input is int64: the layer takes floats"):
        layer.forward(numpy.ones((1, 2, 5, 5), numpy.int64))
