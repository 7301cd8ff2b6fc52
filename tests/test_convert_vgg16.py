"""weights/convert_vgg16.py: Keras and torchvision VGG16 files become fcnlite weights that compute the same network.

The sources here are small VGG16s of width 1/16 (channels 4, 8, 16, 32, 32; fc 256)
with random weights, written in each framework's own layout; fc6 keeps its 7x7 window.
Each claim is checked against a computation in the source's own layout: numpy on
channels-last arrays for Keras, torch in float64 for torchvision.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

import fcnlite
from fcnlite.layers import Conv2d
from programs import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "weights" / "convert_vgg16.py"

WIDTH = 1 / 16
BLOCK_CHANNELS = [4, 8, 16, 32, 32]       # 64, 128, 256, 512, 512 at width 1/16
BLOCK_REPEATS = [2, 2, 3, 3, 3]
FC_CHANNELS = 256                         # 4096 / 16
N_CLASSES = 1000
POOL5 = 7                                 # pool5 of a 224x224 input


convert_vgg16 = load_script(SCRIPT)


def conv_shapes():
    """[(block, index, in, out)] of the thirteen 3x3 convolutions of the small VGG16."""
    shapes, in_channels = [], 3
    for block, (out_channels, repeats) in enumerate(zip(BLOCK_CHANNELS, BLOCK_REPEATS), start=1):
        for index in range(1, repeats + 1):
            shapes.append((block, index, in_channels, out_channels))
            in_channels = out_channels
    return shapes


def he_normal(rng, shape, fan_in):
    return (rng.standard_normal(shape) * numpy.sqrt(2.0 / fan_in)).astype(numpy.float32)


# ---------------------------------------------------------------- Keras-layout source

def keras_layers(seed=0):
    """{keras layer name: (kernel, bias)} in Keras's layouts: conv (kh, kw, in, out), Dense (in, out)."""
    rng = numpy.random.default_rng(seed)
    layers = {}
    for block, index, in_channels, out_channels in conv_shapes():
        kernel = he_normal(rng, (3, 3, in_channels, out_channels), 9 * in_channels)
        layers[f"block{block}_conv{index}"] = (kernel, (0.1 * rng.standard_normal(out_channels)).astype(numpy.float32))
    dense = [("fc1", POOL5 * POOL5 * BLOCK_CHANNELS[-1], FC_CHANNELS), ("fc2", FC_CHANNELS, FC_CHANNELS),
             ("predictions", FC_CHANNELS, N_CLASSES)]
    for name, inputs, outputs in dense:
        layers[name] = (he_normal(rng, (inputs, outputs), inputs), (0.1 * rng.standard_normal(outputs)).astype(numpy.float32))
    return layers


def write_keras(path, layers, layout="keras1"):
    """Write layers as Keras saves them.

    keras1: /block1_conv1/block1_conv1/block1_conv1_W_1:0, weight_names ["block1_conv1_W_1:0", ...]
    keras2: /block1_conv1/block1_conv1/kernel:0, weight_names ["block1_conv1/kernel:0", ...]
    bare:   /block1_conv1/block1_conv1/kernel:0 with no weight_names attribute
    Layers without weights (pools, flatten) are empty groups, as in Keras's own files.
    """
    import h5py
    order = ["input_1"] + list(layers)[:13] + ["block5_pool", "flatten"] + list(layers)[13:]
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = numpy.array([name.encode() for name in order])
        for name in order:
            group = file.create_group(name)
            if name not in layers:
                group.attrs["weight_names"] = numpy.array([], dtype="S1")
                continue
            kernel, bias = layers[name]
            if layout == "keras1":
                names = [f"{name}_W_1:0", f"{name}_b_1:0"]
                paths = [f"{name}/{n}" for n in names]
            else:
                names = paths = [f"{name}/kernel:0", f"{name}/bias:0"]
            group.create_dataset(paths[0], data=kernel)
            group.create_dataset(paths[1], data=bias)
            if layout != "bare":
                group.attrs["weight_names"] = numpy.array([n.encode() for n in names])


def numpy_conv_hwio(x_hwc, kernel, bias, padding=1):
    """A 3x3 convolution in Keras's layout: out[y, x, o] = b[o] + sum_{i, j, c} xpad[y+i, x+j, c] * K[i, j, c, o]."""
    padded = numpy.pad(x_hwc, ((padding, padding), (padding, padding), (0, 0)))
    kernel_h, kernel_w = kernel.shape[:2]
    out_h, out_w = padded.shape[0] - kernel_h + 1, padded.shape[1] - kernel_w + 1
    out = numpy.zeros((out_h, out_w, kernel.shape[3])) + bias
    for i in range(kernel_h):
        for j in range(kernel_w):
            out += numpy.einsum("hwc,co->hwo", padded[i:i + out_h, j:j + out_w], kernel[i, j])
    return out


def keras_vgg16_reference(x_hwc, layers):
    """The Keras VGG16 written in numpy, channels-last: convs, 2x2 max pools, Flatten, Dense; returns the logits."""
    x = x_hwc.astype(numpy.float64)
    for block, repeats in enumerate(BLOCK_REPEATS, start=1):
        for index in range(1, repeats + 1):
            kernel, bias = layers[f"block{block}_conv{index}"]
            x = numpy.maximum(numpy_conv_hwio(x, kernel.astype(numpy.float64), bias), 0)
        h, w, c = x.shape
        x = x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
    x = x.reshape(-1)  # Keras's Flatten on channels-last: (h, w, c) order
    for name in ("fc1", "fc2"):
        kernel, bias = layers[name]
        x = numpy.maximum(x @ kernel.astype(numpy.float64) + bias, 0)
    kernel, bias = layers["predictions"]
    return x @ kernel.astype(numpy.float64) + bias


# ---------------------------------------------------------------- torchvision-layout source

def torch_vgg16(torch, seed=0, batch_norm=False):
    """A small torchvision-style VGG16: its state dict has torchvision's keys (features.0 ... classifier.6);
    with batch_norm, vgg16_bn's (a BatchNorm2d after each convolution)."""
    nn = torch.nn
    torch.manual_seed(seed)
    features = []
    for block, index, in_channels, out_channels in conv_shapes():
        features += [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
        features += [nn.BatchNorm2d(out_channels), nn.ReLU()] if batch_norm else [nn.ReLU()]
        if index == BLOCK_REPEATS[block - 1]:
            features.append(nn.MaxPool2d(2, 2))

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(
                nn.Linear(BLOCK_CHANNELS[-1] * POOL5 * POOL5, FC_CHANNELS), nn.ReLU(), nn.Dropout(),
                nn.Linear(FC_CHANNELS, FC_CHANNELS), nn.ReLU(), nn.Dropout(),
                nn.Linear(FC_CHANNELS, N_CLASSES))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))  # (c, h, w) order

    model = VGG()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim > 1:
                fan_in = parameter[0].numel()
                parameter.normal_(0, (2.0 / fan_in) ** 0.5)
            else:
                parameter.normal_(0, 0.1)
    return model.eval()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def keras_source(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keras")
    layers = keras_layers()
    source = directory / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras(source, layers)
    converted = directory / "vgg16.h5"
    convert_vgg16.convert(source, converted)
    arrays, attributes = fcnlite.io.read_weights(converted)
    return {"layers": layers, "source": source, "converted": converted, "arrays": arrays, "attributes": attributes}


@pytest.fixture(scope="module")
def torch_source(tmp_path_factory):
    torch = pytest.importorskip("torch", reason="the torchvision (.pth) conversion needs PyTorch")
    directory = tmp_path_factory.mktemp("torch")
    model = torch_vgg16(torch)
    source = directory / "vgg16-397923af.pth"
    torch.save(model.state_dict(), source)
    converted = directory / "vgg16.h5"
    convert_vgg16.convert(source, converted)
    arrays, attributes = fcnlite.io.read_weights(converted)
    return {"torch": torch, "model": model, "source": source, "converted": converted,
            "arrays": arrays, "attributes": attributes}


def conv_layer(arrays, name, padding, dtype=numpy.float64):
    weights = arrays[f"{name}/W"]
    layer = Conv2d(weights.shape[1], weights.shape[0], weights.shape[2:], padding=padding, dtype=dtype)
    layer.params["W"][...] = weights
    layer.params["b"][...] = arrays[f"{name}/b"]
    return layer


# ---------------------------------------------------------------- (1) fc6: dense layer == 7x7 convolution

def test_keras_fc6_convolution_equals_dense_layer_on_channels_last_flatten(keras_source):
    kernel, bias = keras_source["layers"]["fc1"]
    pool5_hwc = numpy.random.default_rng(1).standard_normal((POOL5, POOL5, BLOCK_CHANNELS[-1]))
    dense = pool5_hwc.reshape(-1) @ kernel.astype(numpy.float64) + bias
    fc6 = conv_layer(keras_source["arrays"], "fc6", padding=0)
    convolution = fc6.forward(pool5_hwc.transpose(2, 0, 1)[None])
    assert convolution.shape == (1, FC_CHANNELS, 1, 1)
    numpy.testing.assert_allclose(convolution[0, :, 0, 0], dense, rtol=1e-6, atol=1e-6)


def test_torchvision_fc6_convolution_equals_linear_layer_on_channels_first_flatten(torch_source):
    torch = torch_source["torch"]
    linear = torch_source["model"].classifier[0].double()
    pool5_chw = numpy.random.default_rng(1).standard_normal((BLOCK_CHANNELS[-1], POOL5, POOL5))
    with torch.no_grad():
        dense = linear(torch.from_numpy(pool5_chw).flatten()).numpy()
    fc6 = conv_layer(torch_source["arrays"], "fc6", padding=0)
    convolution = fc6.forward(pool5_chw[None])
    numpy.testing.assert_allclose(convolution[0, :, 0, 0], dense, rtol=1e-6, atol=1e-6)


def test_converted_fc7_and_fc8_are_the_dense_layers_as_1x1_convolutions(keras_source):
    arrays = keras_source["arrays"]
    for fcnlite_name, keras_name in (("fc7", "fc2"), ("fc8", "predictions")):
        kernel, bias = keras_source["layers"][keras_name]
        numpy.testing.assert_array_equal(arrays[f"{fcnlite_name}/W"][:, :, 0, 0], kernel.T)
        numpy.testing.assert_array_equal(arrays[f"{fcnlite_name}/b"], bias)


# ---------------------------------------------------------------- (2) convolution kernels

@pytest.mark.parametrize("block, index", [(1, 1), (1, 2), (3, 2), (5, 3)])
def test_keras_conv_kernel_gives_the_same_convolution(keras_source, block, index):
    kernel, bias = keras_source["layers"][f"block{block}_conv{index}"]
    x_hwc = numpy.random.default_rng(block * 10 + index).standard_normal((9, 7, kernel.shape[2]))
    expected = numpy_conv_hwio(x_hwc, kernel.astype(numpy.float64), bias)
    layer = conv_layer(keras_source["arrays"], f"conv{block}_{index}", padding=1)
    result = layer.forward(x_hwc.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
    numpy.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("position, name", [(0, "conv1_1"), (2, "conv1_2"), (12, "conv3_2"), (28, "conv5_3")])
def test_torchvision_conv_weight_gives_the_same_convolution(torch_source, position, name):
    torch = torch_source["torch"]
    module = torch_source["model"].features[position]
    x = numpy.random.default_rng(position).standard_normal((1, module.in_channels, 9, 7))
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), module.weight.double(), module.bias.double(),
                                          padding=1).detach().numpy()
    layer = conv_layer(torch_source["arrays"], name, padding=1)
    numpy.testing.assert_allclose(layer.forward(x), expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- (3) loading into models

@pytest.mark.parametrize("which, preprocessing", [("keras", convert_vgg16.KERAS_PREPROCESSING),
                                                  ("torch", convert_vgg16.TORCHVISION_PREPROCESSING)])
def test_converted_file_loads_strictly_into_vgg16_and_carries_preprocessing(request, which, preprocessing):
    source = request.getfixturevalue(f"{which}_source")
    attributes = source["attributes"]
    assert attributes["architecture"] == "vgg16"
    assert attributes["width"] == WIDTH and attributes["n_classes"] == N_CLASSES
    assert attributes["fcnlite_format"] == 1 and "source" in attributes
    model = fcnlite.VGG16(width=WIDTH, conv1_padding=1, n_classes=N_CLASSES)
    report = fcnlite.load_weights(model, source["converted"], strict=True)
    assert not report["missing"] and not report["unexpected"]
    assert model.preprocessing["channel_order"] == preprocessing["channel_order"]
    assert model.preprocessing["input_scale"] == pytest.approx(preprocessing["input_scale"])
    assert model.preprocessing["mean"] == pytest.approx(preprocessing["mean"])
    assert model.preprocessing["std"] == pytest.approx(preprocessing["std"])


@pytest.mark.parametrize("which", ["keras", "torch"])
def test_converted_file_fills_the_fcn8s_encoder_and_leaves_its_head(request, which):
    source = request.getfixturevalue(f"{which}_source")
    model = fcnlite.FCN8s(width=WIDTH)
    fcnlite.load_weights(model, source["converted"])
    for name in ("conv1_1", "conv5_3", "fc6", "fc7"):
        numpy.testing.assert_array_equal(model.layers[name].params["W"], source["arrays"][f"{name}/W"])
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert not model.layers[name].params["W"].any()
    assert model.preprocessing["channel_order"] == source["attributes"]["channel_order"]


def test_model_from_file_rebuilds_the_small_vgg16(keras_source):
    model = fcnlite.model_from_file(keras_source["converted"])
    assert model.architecture == "vgg16" and model.width == WIDTH
    assert model.layers["conv1_1"].params["W"].shape == (4, 3, 3, 3)


# ---------------------------------------------------------------- (4) the whole network

def small_vgg16(converted):
    model = fcnlite.VGG16(width=WIDTH, conv1_padding=1, n_classes=N_CLASSES, dtype=numpy.float64)
    fcnlite.load_weights(model, converted)
    return model.eval()  # dropout off


def test_whole_keras_vgg16_matches_numpy_channels_last_reference(keras_source):
    image = numpy.random.default_rng(2).standard_normal((224, 224, 3))
    expected = keras_vgg16_reference(image, keras_source["layers"])
    scores = small_vgg16(keras_source["converted"]).forward(image.transpose(2, 0, 1)[None])
    assert scores.shape == (1, N_CLASSES, 1, 1)
    numpy.testing.assert_allclose(scores[0, :, 0, 0], expected, rtol=1e-7, atol=1e-7)


def test_whole_torchvision_vgg16_matches_torch_in_float64(torch_source):
    torch = torch_source["torch"]
    image = numpy.random.default_rng(3).standard_normal((1, 3, 224, 224))
    reference = torch_vgg16(torch).double()
    reference.load_state_dict(torch.load(torch_source["source"], weights_only=True))
    with torch.no_grad():
        expected = reference(torch.from_numpy(image)).numpy()
    scores = small_vgg16(torch_source["converted"]).forward(image)
    numpy.testing.assert_allclose(scores[:, :, 0, 0], expected, rtol=1e-7, atol=1e-7)


# ---------------------------------------------------------------- source layouts and options

@pytest.mark.parametrize("layout", ["keras2", "bare"])
def test_every_keras_layout_converts_to_the_same_arrays(tmp_path, keras_source, layout):
    source = tmp_path / "vgg16.h5"
    write_keras(source, keras_source["layers"], layout)
    convert_vgg16.convert(source, tmp_path / "out.h5")
    arrays, _ = fcnlite.io.read_weights(tmp_path / "out.h5")
    assert arrays.keys() == keras_source["arrays"].keys()
    for key, value in arrays.items():
        numpy.testing.assert_array_equal(value, keras_source["arrays"][key])


def test_no_fc8_drops_the_classifier_and_loads_into_vgg16_without_classes(tmp_path, keras_source):
    attributes = convert_vgg16.convert(keras_source["source"], tmp_path / "vgg16.h5", keep_fc8=False)
    assert attributes["n_classes"] == 0
    arrays, _ = fcnlite.io.read_weights(tmp_path / "vgg16.h5")
    assert not any(key.startswith("fc8/") for key in arrays)
    fcnlite.load_weights(fcnlite.VGG16(width=WIDTH), tmp_path / "vgg16.h5", strict=True)


def test_keras_layer_of_the_wrong_shape_is_named(tmp_path):
    layers = keras_layers()
    kernel, bias = layers["block2_conv1"]
    layers["block2_conv1"] = (kernel[:, :, :3], bias)  # 3 input channels where conv1_2 gives 4
    write_keras(tmp_path / "bad.h5", layers)
    with pytest.raises(convert_vgg16.ConversionError, match=r"bad\.h5: conv2_1 weights have shape \(8, 3, 3, 3\)"):
        convert_vgg16.convert(tmp_path / "bad.h5", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_keras_file_without_the_classifier_says_so(tmp_path):
    layers = {name: value for name, value in keras_layers().items() if name.startswith("block")}
    write_keras(tmp_path / "notop.h5", layers)
    with pytest.raises(convert_vgg16.ConversionError, match=r"notop\.h5: layer fc1 is missing"):
        convert_vgg16.convert(tmp_path / "notop.h5", tmp_path / "out.h5")


def test_a_source_holding_nan_is_refused_naming_the_layer(tmp_path):
    layers = keras_layers()
    kernel, bias = layers["block3_conv2"]
    kernel = kernel.copy()
    kernel[0, 0, :2, 0] = numpy.nan
    layers["block3_conv2"] = (kernel, bias)
    write_keras(tmp_path / "nan.h5", layers)
    with pytest.raises(convert_vgg16.ConversionError, match=r"nan\.h5: conv3_2 weights hold 2 values that are NaN"):
        convert_vgg16.convert(tmp_path / "nan.h5", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_the_converter_never_writes_over_its_source_nor_converts_its_own_output(tmp_path, keras_source):
    import shutil
    source = tmp_path / "vgg16_keras.h5"
    shutil.copy(keras_source["source"], source)
    before = source.read_bytes()
    with pytest.raises(convert_vgg16.ConversionError, match=r"the output -o .* is the source itself"):
        convert_vgg16.convert(source, source)
    assert source.read_bytes() == before
    with pytest.raises(convert_vgg16.ConversionError, match=r"vgg16\.h5: already an fcnlite weight file"):
        convert_vgg16.convert(keras_source["converted"], tmp_path / "again.h5")


def test_a_keras_layer_stored_as_one_array_is_named(tmp_path):
    import h5py
    write_keras(tmp_path / "flat.h5", keras_layers())
    with h5py.File(tmp_path / "flat.h5", "r+") as file:
        del file["block1_conv2"]
        file.create_dataset("block1_conv2", data=numpy.zeros((3, 3, 4, 4), numpy.float32))
    with pytest.raises(convert_vgg16.ConversionError, match=r"flat\.h5: block1_conv2 is a single array, not a layer"):
        convert_vgg16.convert(tmp_path / "flat.h5", tmp_path / "out.h5")


def test_a_bias_of_two_axes_is_described_by_its_shapes(tmp_path):
    layers = keras_layers()
    kernel, bias = layers["block1_conv1"]
    layers["block1_conv1"] = (kernel, bias[None, :])
    write_keras(tmp_path / "bias.h5", layers)
    with pytest.raises(convert_vgg16.ConversionError) as raised:
        convert_vgg16.convert(tmp_path / "bias.h5", tmp_path / "out.h5")
    message = str(raised.value)
    assert "should hold one kernel (2 or 4 axes) and one bias (1 axis), found" in message and "(1, 4)" in message


def test_a_bfloat16_state_dict_converts_to_float32(tmp_path, torch_source):
    torch = torch_source["torch"]
    state = {key: value.to(torch.bfloat16) for key, value in torch_source["model"].state_dict().items()}
    torch.save(state, tmp_path / "bf16.pth")
    convert_vgg16.convert(tmp_path / "bf16.pth", tmp_path / "out.h5")
    arrays, _ = fcnlite.io.read_weights(tmp_path / "out.h5")
    expected = state["features.0.weight"].float().numpy()
    assert arrays["conv1_1/W"].dtype == numpy.float32
    numpy.testing.assert_array_equal(arrays["conv1_1/W"], expected)


def test_a_pickled_module_is_named_as_no_state_dict_in_one_line_without_torchs_advice(tmp_path, torch_source):
    torch = torch_source["torch"]
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")   # weights_only refuses it, with advice in colour
    with pytest.raises(convert_vgg16.ConversionError) as raised:
        convert_vgg16.convert(tmp_path / "module.pth", tmp_path / "out.h5")
    assert str(raised.value) == (f"{tmp_path / 'module.pth'}: not a PyTorch state dict (it pickles Python objects "
                                 f"other than tensors, which are not loaded, for safety: save the model's "
                                 f"state_dict())")


def test_a_batch_norm_vgg16_is_named_as_not_the_fcns_network(tmp_path, torch_source):
    torch = torch_source["torch"]
    torch.save(torch_vgg16(torch, batch_norm=True).state_dict(), tmp_path / "vgg16_bn.pth")
    with pytest.raises(convert_vgg16.ConversionError) as raised:
        convert_vgg16.convert(tmp_path / "vgg16_bn.pth", tmp_path / "out.h5")
    assert str(raised.value) == (f"{tmp_path / 'vgg16_bn.pth'}: a batch-norm VGG16 (vgg16_bn: it holds "
                                 f"features.1.running_mean) is not the FCN's network, whose VGG16 has no batch "
                                 f"normalization: convert the plain VGG16 (vgg16-397923af.pth, or Keras's .h5: "
                                 f"weights/README.md)")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("wrapper", ["model_state_dict", "state_dict", "model"])
def test_a_training_checkpoint_converts_from_the_state_dict_it_wraps(tmp_path, torch_source, wrapper):
    torch = torch_source["torch"]
    state = torch_source["model"].state_dict()
    torch.save({"epoch": 3, wrapper: state, "optim_state_dict": {"state": {}, "param_groups": []}},
               tmp_path / "checkpoint.pth.tar")
    convert_vgg16.convert(tmp_path / "checkpoint.pth.tar", tmp_path / "out.h5")
    arrays, _ = fcnlite.io.read_weights(tmp_path / "out.h5")
    numpy.testing.assert_array_equal(arrays["conv5_3/W"], state["features.28.weight"].numpy())


def test_a_damaged_pth_is_named_as_damaged_not_as_a_pickled_module(tmp_path, torch_source):
    torch = torch_source["torch"]
    torch.save(torch_source["model"].state_dict(), tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "damaged.pth").write_bytes(bytes(numpy.random.default_rng(0).integers(0, 256, 3000, numpy.uint8)))
    (tmp_path / "cut.pth").write_bytes(data[:len(data) // 2])
    for name in ("damaged.pth", "cut.pth"):
        with pytest.raises(convert_vgg16.ConversionError) as raised:
            convert_vgg16.convert(tmp_path / name, tmp_path / "out.h5")
        message = str(raised.value)
        assert message.startswith(f"{tmp_path / name}: not a PyTorch state dict (") and "\n" not in message
        assert "other than tensors" not in message


# ---------------------------------------------------------------- (5) the command line

def run_converter(*arguments):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def assert_one_line_error(result, path):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], result.stderr


def test_cli_converts_and_reports(tmp_path, keras_source):
    result = run_converter(keras_source["source"], "-o", tmp_path / "vgg16.h5", "--no-fc8")
    assert result.returncode == 0, result.stderr
    assert fcnlite.io.read_attributes(tmp_path / "vgg16.h5")["channel_order"] == "BGR"


def test_cli_rejects_a_text_file_named_h5_in_one_line(tmp_path):
    source = tmp_path / "vgg16.h5"
    source.write_text("this is not HDF5\n")
    result = run_converter(source, "-o", tmp_path / "out.h5")
    assert_one_line_error(result, source)
    assert "not an HDF5 file" in result.stderr
    assert not (tmp_path / "out.h5").exists()


def test_cli_rejects_a_state_dict_missing_a_layer_in_one_line(tmp_path, torch_source):
    torch = torch_source["torch"]
    state = torch.load(torch_source["source"], weights_only=True)
    del state["features.28.weight"]
    source = tmp_path / "vgg16.pth"
    torch.save(state, source)
    result = run_converter(source, "-o", tmp_path / "out.h5")
    assert_one_line_error(result, source)
    assert "features.28.weight" in result.stderr


def test_pth_source_without_pytorch_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    source = tmp_path / "vgg16-397923af.pth"
    source.write_bytes(b"PK\x03\x04")
    with pytest.raises(convert_vgg16.ConversionError, match=r"vgg16-397923af\.pth: reading \.pth files needs PyTorch"):
        convert_vgg16.convert(source, tmp_path / "out.h5")


def test_an_output_the_disk_has_no_room_for_is_one_line_and_leaves_no_file(tmp_path, keras_source, monkeypatch,
                                                                          capsys):
    from fcnlite import io
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9 - 1000, 1000))
    assert convert_vgg16.main([str(keras_source["source"]), "-o", str(tmp_path / "vgg16.h5")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"error: cannot write {tmp_path / 'vgg16.h5'} (no space left on device: it needs ")
    assert stderr.endswith(" MB, 0.0 MB are free)\n") and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_the_source_or_an_output_that_cannot_be_written_is_one_line_before_any_reading(
        tmp_path, keras_source, monkeypatch, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "conv_out").mkdir()
    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert convert_vgg16.main(["imgs"]) == 2
    assert capsys.readouterr().err == "error: imgs is a folder, not a file of weights to convert\n"

    def unread(path, keep_fc8):
        raise AssertionError("the source was read before the output was checked")
    monkeypatch.setattr(convert_vgg16, "read_keras", unread)
    for output, cause in [("afile/x.h5", "afile is a file, not a folder"),
                          ("conv_out", "it is a folder: name the file to write in it")]:
        assert convert_vgg16.main([str(keras_source["source"]), "-o", output]) == 2
        assert capsys.readouterr().err == f"error: cannot write {output} ({cause})\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile", "conv_out", "imgs"]
    assert list((tmp_path / "conv_out").iterdir()) == []
