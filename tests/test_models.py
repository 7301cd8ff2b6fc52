"""VGG16 and the FCN heads: shapes, reference names, the training API, and gradients through a whole net."""
import contextlib

import numpy
import pytest

from fcnlite import backend, rng
from fcnlite.layers import ConvTranspose2d, Dropout, SoftmaxCrossEntropy, bilinear_kernel
from fcnlite.layers.base import Layer
from fcnlite.models import FCN8s, FCN16s, FCN32s, VGG16, build_model
from fcnlite.models.base import channels
from gradcheck import numerical_gradient, random_entries, rel_error

ARCHITECTURES = ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"]
SMALL = 1 / 16          # channel counts 4 .. 256

ENCODER_LAYERS = [
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "pool5",
    "fc6", "relu6", "drop6", "fc7", "relu7", "drop7",
]
# the reference prototxts' layer order after drop7 (shelhamer/fcn.berkeleyvision.org voc-fcn*/net.py)
HEAD_LAYERS = {
    "fcn32s": ["score_fr", "upscore", "score"],
    "fcn16s": ["score_fr", "upscore2", "score_pool4", "score_pool4c", "fuse_pool4", "upscore16", "score"],
    "fcn8s": ["score_fr", "upscore2", "score_pool4", "score_pool4c", "fuse_pool4", "upscore_pool4",
              "score_pool3", "score_pool3c", "fuse_pool3", "upscore8", "score"],
    "fcn8s-atonce": ["score_fr", "upscore2", "scale_pool4", "score_pool4", "score_pool4c", "fuse_pool4",
                     "upscore_pool4", "scale_pool3", "score_pool3", "score_pool3c", "fuse_pool3", "upscore8", "score"],
}
CONV_LAYERS = [name for name in ENCODER_LAYERS if name.startswith(("conv", "fc"))]
UPSCORE_LAYERS = {"fcn32s": ["upscore"], "fcn16s": ["upscore2", "upscore16"],
                  "fcn8s": ["upscore2", "upscore_pool4", "upscore8"], "fcn8s-atonce": ["upscore2", "upscore_pool4", "upscore8"]}
SCORE_LAYERS = {"fcn32s": ["score_fr"], "fcn16s": ["score_fr", "score_pool4"],
                "fcn8s": ["score_fr", "score_pool4", "score_pool3"], "fcn8s-atonce": ["score_fr", "score_pool4", "score_pool3"]}

# VGG16 and FCN parameter shapes at width 1 with the 21 PASCAL VOC classes (the reference caffemodels)
VGG16_SHAPES = {
    "conv1_1": (64, 3), "conv1_2": (64, 64), "conv2_1": (128, 64), "conv2_2": (128, 128),
    "conv3_1": (256, 128), "conv3_2": (256, 256), "conv3_3": (256, 256),
    "conv4_1": (512, 256), "conv4_2": (512, 512), "conv4_3": (512, 512),
    "conv5_1": (512, 512), "conv5_2": (512, 512), "conv5_3": (512, 512),
}
REFERENCE_SHAPES = {f"{name}/W": (out, inp, 3, 3) for name, (out, inp) in VGG16_SHAPES.items()}
REFERENCE_SHAPES.update({f"{name}/b": (out,) for name, (out, _) in VGG16_SHAPES.items()})
REFERENCE_SHAPES.update({"fc6/W": (4096, 512, 7, 7), "fc6/b": (4096,), "fc7/W": (4096, 4096, 1, 1), "fc7/b": (4096,),
                         "score_fr/W": (21, 4096, 1, 1), "score_fr/b": (21,),
                         "score_pool4/W": (21, 512, 1, 1), "score_pool4/b": (21,),
                         "score_pool3/W": (21, 256, 1, 1), "score_pool3/b": (21,),
                         "upscore/W": (21, 21, 64, 64), "upscore16/W": (21, 21, 32, 32),
                         "upscore2/W": (21, 21, 4, 4), "upscore_pool4/W": (21, 21, 4, 4), "upscore8/W": (21, 21, 16, 16)})


def parameter_names(architecture):
    names = [f"{layer}/{key}" for layer in CONV_LAYERS for key in ("W", "b")]
    for layer in HEAD_LAYERS[architecture]:
        if layer in UPSCORE_LAYERS[architecture]:
            names.append(f"{layer}/W")            # the upsampling layers have no bias
        elif layer in SCORE_LAYERS[architecture]:
            names += [f"{layer}/W", f"{layer}/b"]
    return names


def small_model(architecture, n_classes=3, **kwargs):
    return build_model(architecture, n_classes=n_classes, width=SMALL, **kwargs)


def randomize_scores(model, generator, std=0.1):
    """Give the score layers (zero in the reference initialisation) random values, so outputs depend on the encoder."""
    for name, value, _ in model.named_parameters():
        if name.startswith("score"):
            value[...] = backend.to_device(std * generator.standard_normal(value.shape), dtype=value.dtype)


# Shapes

SIZES = [(1, 1), (2, 3), (3, 2), (5, 7), (13, 31), (32, 32), (33, 17), (47, 64), (70, 69)]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_fcn_output_has_the_input_size(xp, architecture):
    model = small_model(architecture).eval()
    for h, w in SIZES:
        x = xp.asarray(numpy.random.default_rng(h * 100 + w).standard_normal((1, 3, h, w)), dtype=numpy.float32)
        scores = model.forward(x)
        assert scores.shape == (1, 3, h, w), (h, w)
        assert scores.dtype == numpy.float32


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("shape", [(2, 3, 1, 1), (1, 3, 7, 5), (2, 3, 35, 18)])
def test_fcn_backward_returns_an_input_shaped_gradient(xp, architecture, shape):
    model = small_model(architecture, n_classes=4).train()
    randomize_scores(model, numpy.random.default_rng(0))
    x = xp.asarray(numpy.random.default_rng(1).standard_normal(shape), dtype=numpy.float32)
    scores = model.forward(x)
    assert scores.shape == (shape[0], 4) + shape[2:]
    model.zero_grad()
    dx = model.backward(xp.ones_like(scores))
    assert dx.shape == shape
    assert backend.to_numpy(dx).any() and numpy.isfinite(backend.to_numpy(dx)).all()


@pytest.mark.parametrize("size, expected", [(1, 1), (100, 4), (224, 8), (500, 16)])
def test_vgg16_encoder_keeps_every_input_size_alive(size, expected):
    """fc7's size for an input side (padding 100 makes even a 1-pixel input survive pool5 and fc6's 7x7)."""
    model = VGG16(width=SMALL)
    shape = (1, 3, size, size)
    for name in ENCODER_LAYERS:
        layer = model.layers[name]
        if hasattr(layer, "output_shape"):
            shape = layer.output_shape(shape)
    assert shape[2:] == (expected, expected) and shape[1] == 256


def test_vgg16_classifier_on_its_own_input_size():
    model = VGG16(width=SMALL, conv1_padding=1, n_classes=10).eval()
    assert list(model.layers)[-1] == "fc8"
    y = model.forward(numpy.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(numpy.float32))
    assert y.shape == (1, 10, 1, 1)
    assert model.config() == {"architecture": "vgg16", "width": SMALL, "n_classes": 10, "conv1_padding": 1}


# Names

@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_layer_names_follow_the_reference(architecture):
    model = small_model(architecture)
    assert list(model.layers) == ENCODER_LAYERS + HEAD_LAYERS[architecture]
    assert model.encoder_names == ENCODER_LAYERS


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_parameter_names_follow_the_reference(architecture):
    model = small_model(architecture)
    assert [name for name, _, _ in model.named_parameters()] == parameter_names(architecture)
    for layer in UPSCORE_LAYERS[architecture]:
        assert list(model.layers[layer].params) == ["W"]


@pytest.mark.parametrize("architecture, cls, at_once", [("fcn32s", FCN32s, False), ("fcn16s", FCN16s, False),
                                                        ("fcn8s", FCN8s, False), ("fcn8s-atonce", FCN8s, True),
                                                        ("FCN8s", FCN8s, False)])
def test_build_model_by_name(architecture, cls, at_once):
    model = build_model(architecture, n_classes=5, width=SMALL)
    assert type(model) is cls and getattr(model, "at_once", False) == at_once
    assert model.architecture == architecture.lower()
    assert model.config() == {"architecture": architecture.lower(), "width": SMALL, "n_classes": 5}


def test_build_model_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="unknown architecture 'fcn4s'"):
        build_model("fcn4s")


@pytest.mark.parametrize("n_classes", [1, 0, -3, 2.5, True, "21"])
def test_an_fcn_of_fewer_than_two_classes_or_of_no_whole_number_is_refused(n_classes):
    # one class scores a loss of 0 at every pixel (the softmax of one score is 1): nothing would train
    with pytest.raises(ValueError, match=r"an FCN scores a whole number of classes, at least 2 \(one class against "
                                         r"the rest is 2: background and it; masks of only 0 and 255 count 1, as "
                                         r"255 means 'ignore' unless a class map names it\)"):
        FCN8s(n_classes=n_classes, width=SMALL)


@pytest.mark.parametrize("width", [0, -1, float("nan"), float("inf"), "1"])
def test_a_width_that_is_no_positive_number_is_refused(width):
    # width 0 built a network of one channel a layer, whose weight file load_weights then refused
    for make in (lambda: FCN32s(width=width), lambda: VGG16(width=width)):
        with pytest.raises(ValueError, match=r"^width is .*: it must be a number above 0 \(1\.0: VGG16's channels\)$"):
            make()


@pytest.mark.parametrize("given, error, message", [
    (numpy.zeros((1, 3, 8, 8), numpy.uint8), TypeError, "input is uint8: the network takes floats, an image as "
                                                          "model.preprocessing prepares it"),
    (numpy.zeros((1, 3, 8, 8), numpy.int64), TypeError, "input is int64: the network takes floats"),
    ([[[[0.0]]]], TypeError, "input is a list: give a NumPy or CuPy array (N, 3, H, W)"),
])
def test_an_input_that_is_no_float_array_is_refused_saying_what_the_network_takes(given, error, message):
    with pytest.raises(error) as raised:
        small_model("fcn8s").forward(given)
    assert str(raised.value).startswith(message)


def test_a_float64_input_runs_at_the_models_precision(xp):
    model = small_model("fcn8s").eval()
    x = numpy.random.default_rng(0).standard_normal((1, 3, 9, 11))
    scores = model.forward(xp.asarray(x))
    assert scores.dtype == numpy.float32
    numpy.testing.assert_array_equal(backend.to_numpy(scores),
                                     backend.to_numpy(model.forward(xp.asarray(x, dtype=numpy.float32))))


def test_backward_with_a_gradient_of_another_shape_than_the_last_output_is_refused(xp):
    # a forward on validation images between a training forward and its backward: the backward
    # ran on what the last forward kept, and returned wrong gradients without a word
    model = small_model("fcn8s", n_classes=3).train()
    generator = numpy.random.default_rng(0)
    train = xp.asarray(generator.standard_normal((1, 3, 12, 12)), dtype=numpy.float32)
    validation = xp.asarray(generator.standard_normal((1, 3, 16, 20)), dtype=numpy.float32)
    scores = model.forward(train)
    model.forward(validation)
    with pytest.raises(ValueError, match=r"^Crop.backward: the gradient has shape \(1, 3, 12, 12\), the output of "
                                         r"the last forward \(1, 3, 16, 20\): backward takes the gradient of that "
                                         r"output"):
        model.backward(xp.ones_like(scores))


# Initialisation and channel counts

@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_fcn_head_starts_as_the_reference(architecture):
    """Score layers at zero; upsampling layers bilinear, channel by channel, and frozen."""
    model = small_model(architecture, n_classes=3)
    for layer in SCORE_LAYERS[architecture]:
        assert not any(backend.to_numpy(value).any() for value in model.layers[layer].params.values()), layer
    for layer in UPSCORE_LAYERS[architecture]:
        upscore = model.layers[layer]
        assert isinstance(upscore, ConvTranspose2d) and upscore.frozen
        weights = backend.to_numpy(upscore.params["W"])
        for c in range(3):
            numpy.testing.assert_array_equal(weights[c, c], bilinear_kernel(upscore.kernel))
        assert not (weights.sum(axis=(2, 3)) * (1 - numpy.eye(3))).any()


@pytest.mark.parametrize("count, width, expected", [(64, 1.0, 64), (4096, 1.0, 4096), (64, 1 / 16, 4), (4096, 1 / 16, 256),
                                                    (512, 0.25, 128), (3, 0.01, 1), (64, 0.001, 1)])
def test_channels_scale_with_width(count, width, expected):
    assert channels(count, width) == expected


@contextlib.contextmanager
def parameters_without_memory(monkeypatch):
    """Build models whose parameters are zero-stride arrays: the shapes are real, the memory is not.

    A width-1 FCN-8s holds 134 million parameters (and as many gradients); this lets a test
    check all their shapes without allocating them.
    """
    def no_memory(shape, dtype):
        return numpy.lib.stride_tricks.as_strided(numpy.zeros(1, dtype=dtype), shape, (0,) * len(shape))

    monkeypatch.setattr(rng, "normal", lambda xp, shape, std, dtype: no_memory(shape, dtype))

    def add_param(self, key, value):
        self.params[key] = no_memory(numpy.shape(value), self.dtype)
        self.grads[key] = no_memory(numpy.shape(value), self.dtype)

    monkeypatch.setattr(Layer, "add_param", add_param)
    yield


@pytest.mark.parametrize("architecture", ["fcn32s", "fcn16s", "fcn8s"])
def test_width_one_parameter_shapes_are_the_reference_shapes(monkeypatch, architecture):
    with parameters_without_memory(monkeypatch):
        model = build_model(architecture, n_classes=21, width=1.0)
    shapes = {name: tuple(value.shape) for name, value, _ in model.named_parameters()}
    assert list(shapes) == parameter_names(architecture)
    for name, shape in shapes.items():
        assert shape == REFERENCE_SHAPES[name], name


def test_quarter_width_model_has_a_quarter_of_the_channels():
    model = FCN8s(n_classes=21, width=0.25)
    shapes = {name: tuple(value.shape) for name, value, _ in model.named_parameters()}
    for name, reference in REFERENCE_SHAPES.items():
        if name not in shapes:
            continue
        layer = name.split("/")[0]
        if layer.startswith("upscore"):
            expected = reference
        elif name.endswith("/b"):
            expected = (reference[0] // 4 if not layer.startswith("score") else reference[0],)
        else:
            out_channels = reference[0] if layer.startswith("score") else reference[0] // 4
            in_channels = 3 if layer == "conv1_1" else reference[1] // 4
            expected = (out_channels, in_channels) + reference[2:]
        assert shapes[name] == expected, name


# The training API

def test_named_parameters_yields_the_live_arrays(xp):
    model = small_model("fcn8s").eval()
    randomize_scores(model, numpy.random.default_rng(0))
    x = xp.asarray(numpy.random.default_rng(1).standard_normal((1, 3, 9, 11)), dtype=numpy.float32)
    before = backend.to_numpy(model.forward(x)).copy()
    for name, value, grad in model.named_parameters():
        layer, key = name.split("/")
        assert value is model.layers[layer].params[key] and grad is model.layers[layer].grads[key]
        if name == "score_fr/b":
            value[...] = xp.asarray([0.0, 100.0, 0.0], dtype=numpy.float32)   # class 1 everywhere
    after = backend.to_numpy(model.forward(x))
    assert not numpy.allclose(after, before)
    assert (after.argmax(axis=1) == 1).mean() > 0.9


@pytest.mark.parametrize("packed", [False, True], ids=["arrays", "packed"])
def test_gradients_reach_named_parameters_and_accumulate_until_zero_grad(xp, packed):
    model = small_model("fcn16s").eval()
    randomize_scores(model, numpy.random.default_rng(0))
    if packed:   # as the optimizer leaves it: the layers' gradients are views of one flat array
        model.pack_parameters()
        model.flat_grads.fill(1)
        assert all(backend.to_numpy(grad).all() for _, _, grad in model.named_parameters())
    x = xp.asarray(numpy.random.default_rng(1).standard_normal((1, 3, 6, 5)), dtype=numpy.float32)
    dscores = xp.asarray(numpy.random.default_rng(2).standard_normal((1, 3, 6, 5)), dtype=numpy.float32)
    model.zero_grad()
    model.forward(x)
    model.backward(dscores)
    once = {name: backend.to_numpy(grad).copy() for name, _, grad in model.named_parameters()}
    assert all(once[f"{layer}/W"].any() for layer in CONV_LAYERS + ["score_fr", "score_pool4"])
    model.forward(x)
    model.backward(dscores)
    for name, _, grad in model.named_parameters():
        numpy.testing.assert_allclose(backend.to_numpy(grad), 2 * once[name], rtol=1e-5, atol=1e-7, err_msg=name)
    model.zero_grad()
    assert not any(backend.to_numpy(grad).any() for _, _, grad in model.named_parameters())
    if packed:   # the padding between parameters too
        assert not backend.to_numpy(model.flat_grads).any()


def test_predict_returns_integer_labels_of_the_input_size_and_keeps_the_mode(xp):
    model = small_model("fcn8s", n_classes=5).train()
    randomize_scores(model, numpy.random.default_rng(0))
    x = xp.asarray(numpy.random.default_rng(1).standard_normal((2, 3, 13, 8)), dtype=numpy.float32)
    labels = model.predict(x)
    assert labels.shape == (2, 13, 8)
    assert numpy.issubdtype(labels.dtype, numpy.integer)
    assert model.training and all(layer.training for layer in model.layers.values())
    expected = backend.to_numpy(model.eval().forward(x)).argmax(axis=1)
    numpy.testing.assert_array_equal(backend.to_numpy(labels), expected)
    model.eval().predict(x)
    assert not model.training                                              # and eval stays eval



@pytest.mark.parametrize("n_classes, dtype", [(2, numpy.uint8), (256, numpy.uint8), (300, numpy.uint16)])
def test_predict_image_labels_are_uint8_up_to_256_classes_and_wider_past_that(xp, n_classes, dtype):
    from fcnlite.evaluate import predict_image
    model = small_model("fcn32s", n_classes=n_classes)
    model.layers["score_fr"].params["b"][n_classes - 1] = 10.0   # the last class wins everywhere
    labels = predict_image(model, numpy.zeros((16, 16, 3), dtype=numpy.uint8))
    assert labels.dtype == dtype
    assert (labels == n_classes - 1).all()   # in uint8, class 299 came back as 43

@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_parameter_multipliers_are_the_reference_ones(architecture):
    multipliers = small_model(architecture).parameter_multipliers()
    assert list(multipliers) == parameter_names(architecture)
    for name, multiplier in multipliers.items():
        layer, key = name.split("/")
        if layer in UPSCORE_LAYERS[architecture]:
            assert multiplier == (0, 0), name          # fixed bilinear upsampling
        elif key == "b":
            assert multiplier == (2, 0), name          # biases: twice the learning rate, no decay
        else:
            assert multiplier == (1, 1), name


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_learnable_upsampling_trains_the_upscore_layers(architecture):
    model = small_model(architecture, learnable_upsampling=True)
    multipliers = model.parameter_multipliers()
    for layer in UPSCORE_LAYERS[architecture]:
        assert not model.layers[layer].frozen
        assert multipliers[f"{layer}/W"] == (1, 1)


def test_train_and_eval_toggle_dropout(xp):
    model = small_model("fcn32s").train()
    randomize_scores(model, numpy.random.default_rng(0))
    x = xp.asarray(numpy.random.default_rng(1).standard_normal((1, 3, 8, 8)), dtype=numpy.float32)
    assert model.training and model.layers["drop6"].training and model.layers["drop7"].training
    first, second = backend.to_numpy(model.forward(x)), backend.to_numpy(model.forward(x))
    assert not numpy.allclose(first, second)                # a new dropout mask each pass
    assert model.eval() is model and not model.training
    assert not any(layer.training for layer in model.layers.values())
    numpy.testing.assert_array_equal(backend.to_numpy(model.forward(x)), backend.to_numpy(model.forward(x)))
    assert model.train() is model and all(layer.training for layer in model.layers.values())
    assert sum(isinstance(layer, Dropout) for layer in model.layers.values()) == 2


# Gradients through a whole FCN
#
# Each numerical derivative is a centred difference of the float64 loss with eps = 1e-6.
# The loss is a sum of a few hundred terms of size ~1, so its round-off (~1e-16 relative)
# divided by 2 eps leaves ~1e-10 of noise on every finite difference, whatever the
# entry: an entry whose gradient is 1e-6 can only be checked to ~1e-4 relative. So
# entries are held to relative error < 1e-6 against max(|a| + |n|, 1e-3): gradients above
# 1e-3 to 1e-6 relative, smaller ones to 1e-9 absolute, far below any error a wrong
# backward would make (which is the size of the gradient itself).
MODEL_FLOOR = 1e-3


def gradient_check_model(architecture, seed=0, shape=(1, 3, 20, 24), n_classes=3, **kwargs):
    """A float64 FCN at width 1/16 in eval mode, with random biases and score layers, and an input
    with labels of which ~20% are ignored: (model, x, labels)."""
    rng.seed(seed)
    model = build_model(architecture, n_classes=n_classes, width=SMALL, dtype=numpy.float64, **kwargs)
    generator = numpy.random.default_rng(seed)
    for name, value, _ in model.named_parameters():
        if name.endswith("/b"):
            # non-zero biases: at zero, conv1_1's output over the 100-pixel padding sits exactly on ReLU's kink
            value[...] = backend.to_device(0.1 * generator.standard_normal(value.shape))
        elif name.startswith("score"):
            # small, not zero: at zero (the reference start) no gradient would reach the encoder
            value[...] = backend.to_device(0.02 * generator.standard_normal(value.shape))
    x = generator.standard_normal(shape)
    labels = generator.integers(0, n_classes, size=(shape[0],) + shape[2:])
    labels[generator.random(labels.shape) < 0.2] = 255
    return model.eval(), backend.to_device(x), backend.to_device(labels)


@contextlib.contextmanager
def encoder_replay(model, x, start):
    """model.forward with the encoder layers before encoder_names[start] replayed from one recorded pass.

    A numerical derivative perturbs one parameter at a time; the layers before it see the
    same input on every pass, so their outputs (with the pool3 / pool4 features among
    them) are recorded once instead of recomputed. Everything from `start` on, and the
    model's own head, runs as usual.
    """
    names = model.encoder_names
    inputs, features, h = [], {}, x
    for name in names:
        inputs.append(h)
        h = model.layers[name].forward(h)
        if name in ("pool3", "pool4"):
            features[name] = h
    final = h

    def encode(_x):
        model.features = {name: value for name, value in features.items() if names.index(name) < start}
        h = inputs[start] if start < len(names) else final
        for name in names[start:]:
            h = model.layers[name].forward(h)
            if name in ("pool3", "pool4"):
                model.features[name] = h
        return h

    model.encode = encode
    try:
        yield
    finally:
        del model.encode


def model_gradient_errors(model, x, labels, entries, seed=0, forward=None, only=None):
    """{tensor: relative error} of model.backward through SoftmaxCrossEntropy against centred differences
    of the loss, on `entries` random entries of the input and of every trainable parameter (or of those
    named in `only`). Frozen parameters are returned separately: their gradient must be exactly zero.

    forward: a callable for the forward pass (e.g. one that reseeds the dropout masks); without
    it, the encoder before the perturbed layer is replayed (see encoder_replay).
    """
    loss = SoftmaxCrossEntropy(dtype=numpy.float64)
    run_forward = forward or (lambda: model.forward(x))
    model.zero_grad()
    loss.forward(run_forward(), labels)
    dx = model.backward(loss.backward())
    generator = numpy.random.default_rng(seed)
    position = {name: index for index, name in enumerate(model.encoder_names)}
    errors, frozen = {}, {}
    for name, value, grad in [("input", x, dx)] + list(model.named_parameters()):
        layer = name.split("/")[0]
        if getattr(model.layers.get(layer), "frozen", False):
            frozen[name] = backend.to_numpy(grad)
            continue
        if only is not None and name not in only:
            continue
        indices = random_entries(value.shape, entries, generator)
        analytic = backend.to_numpy(grad)[tuple(numpy.array(indices).T)]
        start = 0 if name == "input" else position.get(layer, len(model.encoder_names))
        replay = encoder_replay(model, x, start) if forward is None and start > 0 else contextlib.nullcontext()
        with replay:
            numerical = numerical_gradient(lambda: loss.forward(run_forward(), labels), value, 1.0, indices=indices)
        errors[name] = rel_error(analytic, numerical, floor=MODEL_FLOOR)
    return errors, frozen


@pytest.mark.parametrize("architecture, kwargs, entries, seed", [
    ("fcn8s", {"learnable_upsampling": True}, 3, 0),   # every tensor, the upsampling layers included
    ("fcn8s-atonce", {}, 2, 0),
    ("fcn16s", {}, 1, 0),
    ("fcn32s", {}, 1, 0),
])
def test_fcn_backward_matches_numerical_gradient_of_the_loss(architecture, kwargs, entries, seed):
    model, x, labels = gradient_check_model(architecture, seed, **kwargs)
    errors, frozen = model_gradient_errors(model, x, labels, entries, seed)
    expected = ["input"] + [name for name in parameter_names(architecture) if name not in frozen]
    assert list(errors) == expected
    bad = {name: error for name, error in errors.items() if not error < 1e-6}
    assert not bad, bad
    for name, grad in frozen.items():
        assert not grad.any(), name                       # frozen upsampling: no weight gradient


def test_fcn_backward_in_training_mode_uses_the_forward_dropout_masks():
    model, x, labels = gradient_check_model("fcn32s", seed=1)
    model.train()

    def forward():
        rng.seed(7)          # the same dropout masks on every pass
        return model.forward(x)

    errors, _ = model_gradient_errors(model, x, labels, entries=2, seed=1, forward=forward,
                                      only=["input", "fc6/W", "fc7/W", "fc7/b", "score_fr/W"])
    assert len(errors) == 5
    bad = {name: error for name, error in errors.items() if not error < 1e-6}
    assert not bad, bad


# CuPy against NumPy

def run_model(device, architecture, parameters, x, dscores):
    """Build `architecture` on `device` with the given host parameters; host (scores, dx, grads) of one pass."""
    backend.use(device)
    try:
        model = small_model(architecture, n_classes=3).eval()
        for name, value, _ in model.named_parameters():
            value[...] = backend.to_device(parameters[name], dtype=value.dtype)
        scores = backend.to_numpy(model.forward(backend.to_device(x)))
        model.zero_grad()
        dx = backend.to_numpy(model.backward(backend.to_device(dscores)))
        grads = {name: backend.to_numpy(grad).copy() for name, _, grad in model.named_parameters()}
    finally:
        backend.use("numpy")
    return scores, dx, grads


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_fcn_cupy_agrees_with_numpy(cupy_only, architecture):
    generator = numpy.random.default_rng(0)
    model = small_model(architecture, n_classes=3)
    randomize_scores(model, generator)
    parameters = {name: backend.to_numpy(value).copy() for name, value, _ in model.named_parameters()}
    x = generator.standard_normal((2, 3, 21, 30)).astype(numpy.float32)
    dscores = generator.standard_normal((2, 3, 21, 30)).astype(numpy.float32)
    on_numpy = run_model("numpy", architecture, parameters, x, dscores)
    on_cupy = run_model("cupy", architecture, parameters, x, dscores)
    numpy.testing.assert_allclose(on_cupy[0], on_numpy[0], rtol=1e-4, atol=1e-4, err_msg="scores")
    numpy.testing.assert_allclose(on_cupy[1], on_numpy[1], rtol=1e-4, atol=1e-4, err_msg="dx")
    for name, grad in on_numpy[2].items():
        scale = max(1.0, float(numpy.abs(grad).max()))
        numpy.testing.assert_allclose(on_cupy[2][name], grad, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


def test_a_gpu_training_step_queues_everything_without_waiting_for_the_gpu(cupy_only):
    """Forward, loss (labels from the host, as a data loader gives them), backward and the SGD step
    are all queued without one wait for the device: the host runs ahead while the GPU works.

    A kernel that keeps the GPU busy for about two seconds goes first; a step that waited for the
    device anywhere would take the host at least that long."""
    import time
    from fcnlite.layers import cuda_kernels
    from fcnlite.optim import SGD
    generator = numpy.random.default_rng(0)
    backend.use("cupy")
    model = small_model("fcn8s", n_classes=3).train()
    model.set_input_grad(False)
    loss = SoftmaxCrossEntropy()
    optimizer = SGD(model, lr=1e-3)
    # a VOC-sized image: the labels' copy to the device (187,500 bytes) must not wait either
    x = backend.to_device(generator.standard_normal((1, 3, 375, 500)), dtype=numpy.float32)
    labels = generator.integers(0, 3, (1, 375, 500)).astype(numpy.uint8)

    def step():
        model.zero_grad()
        value = loss.forward(model.forward(x), labels)
        model.backward(loss.backward())
        optimizer.step()
        return value

    step()   # builds the workspace, the optimizer's velocity and the kernels
    cuda_kernels.spin(4 * 10**9)   # ~2 s at an SM clock of ~2 GHz
    start = time.perf_counter()
    value = step()
    queued = time.perf_counter() - start
    start = time.perf_counter()
    value = float(value)   # the one wait: for the spin and then the whole step
    waited = time.perf_counter() - start
    assert numpy.isfinite(value)
    total = queued + waited
    assert total > 1.0, f"the spin and the step took only {total:.2f} s: the test cannot tell a wait from none"
    assert queued < 0.25 * total, f"queuing the step took the host {queued:.2f} s of {total:.2f}: it waited for the GPU"
