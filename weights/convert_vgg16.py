"""Convert public ImageNet VGG16 weights into fcnlite's HDF5 format (schema: weights/README.md).

    python weights/convert_vgg16.py vgg16_weights_tf_dim_ordering_tf_kernels.h5 -o weights/vgg16.h5
    python weights/convert_vgg16.py vgg16-397923af.pth -o weights/vgg16.h5 [--no-fc8]

Two sources are understood, told apart by their content (HDF5 or not) and extension:

  Keras     vgg16_weights_tf_dim_ordering_tf_kernels.h5: the original Caffe VGG16 of
            Simonyan & Zisserman. Input is BGR, 0..255, minus the Caffe mean.
            conv kernel (kh, kw, in, out)   ->  W (out, in, kh, kw)
            fc1 kernel (7*7*512, 4096), rows in pool5's (h, w, c) order (channels-last Flatten)
                                            ->  fc6 W (4096, 512, 7, 7)
            fc2, predictions (in, out)      ->  fc7, fc8 W (out, in, 1, 1)
  PyTorch   torchvision's vgg16-397923af.pth: input is RGB, 0..1, ImageNet mean / std.
            features.N.weight is already (out, in, kh, kw)
            classifier.0.weight (4096, 512*7*7), columns in pool5's (c, h, w) order
                                            ->  fc6 W (4096, 512, 7, 7) by a plain reshape
            classifier.3 / .6 weight (out, in)  ->  fc7, fc8 W (out, in, 1, 1)

Every shape is taken from the source file, so a VGG16 with fewer channels (as the
tests build) converts the same way; the file's `width` is conv1_1's channels / 64.
Neither source's kernels are flipped: both frameworks compute cross-correlation, as
fcnlite's Conv2d does. The input-channel order of conv1_1 is kept as it is, and the
file says which order it expects (channel_order), so the model is fed what it was trained on.
"""
import argparse
import contextlib
import importlib.util
import os
import pickle
import sys
import warnings

import numpy

if importlib.util.find_spec("fcnlite") is None:   # run from a checkout, not installed: the package is beside us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fcnlite.errors import first_line
from fcnlite.io import FORMAT_VERSION, WeightsError, check_writable, nonfinite_count, write_arrays
from fcnlite.models.base import channels
from fcnlite.models.vgg16 import BLOCKS

# fcnlite's (reference Caffe) names of the thirteen convolutions, in order: conv1_1 ... conv5_3
CONV_NAMES = [f"conv{block}_{index}" for block, (_, repeats) in enumerate(BLOCKS, start=1)
              for index in range(1, repeats + 1)]
CONV_CHANNELS = {f"conv{block}_{index}": count for block, (count, repeats) in enumerate(BLOCKS, start=1)
                 for index in range(1, repeats + 1)}
FC6_KERNEL = 7  # pool5 of a 224x224 image is 7x7: fc6 is the dense layer over it, seen as a 7x7 convolution

KERAS_NAMES = {f"conv{block}_{index}": f"block{block}_conv{index}" for block, (_, repeats)
               in enumerate(BLOCKS, start=1) for index in range(1, repeats + 1)}
KERAS_NAMES.update({"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"})

# torchvision's vgg16.features is a Sequential of conv, ReLU (and pool) modules: the convolutions sit at these indices
TORCHVISION_NAMES = dict(zip(CONV_NAMES, (f"features.{i}" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28))))
TORCHVISION_NAMES.update({"fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6"})

# How each source's input must be prepared: x = (pixel[channel_order] * input_scale - mean) / std.
KERAS_PREPROCESSING = {  # keras.applications.vgg16.preprocess_input, mode "caffe": RGB -> BGR, minus the mean
    "channel_order": "BGR",
    "input_scale": 1.0,
    "mean": (103.939, 116.779, 123.68),  # B, G, R
    "std": (1.0, 1.0, 1.0),
}
TORCHVISION_PREPROCESSING = {  # torchvision's ImageNet transforms: ToTensor (/255), then Normalize
    "channel_order": "RGB",
    "input_scale": 1.0 / 255.0,
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}

HDF5_EXTENSIONS = (".h5", ".hdf5")
TORCH_EXTENSIONS = (".pth", ".pt")


class ConversionError(Exception):
    """A source file that cannot be converted: the message is one line naming the file."""


# ---------------------------------------------------------------- layout changes, one per source kind

def conv_from_keras(kernel):
    """Keras/TensorFlow conv kernel (kh, kw, in, out) -> fcnlite's Conv2d W (out, in, kh, kw)."""
    return kernel.transpose(3, 2, 0, 1)


def fc6_from_keras(kernel, pool5_channels):
    """Keras Dense kernel (7*7*c, out) over a channels-last Flatten of pool5 -> Conv2d W (out, c, 7, 7).

    Row r of the kernel multiplies pool5[h, w, c] with r = (h * 7 + w) * c_count + c,
    so the rows reshape to (7, 7, c, out); moving `out` first and `c` second gives W[o, c, h, w].
    """
    return kernel.reshape(FC6_KERNEL, FC6_KERNEL, pool5_channels, -1).transpose(3, 2, 0, 1)


def dense_from_keras(kernel):
    """Keras Dense kernel (in, out) -> a 1x1 Conv2d W (out, in, 1, 1)."""
    return kernel.T[:, :, None, None]


def fc6_from_torch(weight, pool5_channels):
    """torch Linear weight (out, c*7*7) over torch.flatten of pool5 (c, h, w) -> Conv2d W (out, c, 7, 7).

    Column k multiplies pool5[c, h, w] with k = (c * 7 + h) * 7 + w: already W's order, a reshape suffices.
    """
    return weight.reshape(weight.shape[0], pool5_channels, FC6_KERNEL, FC6_KERNEL)


def dense_from_torch(weight):
    """torch Linear weight (out, in) -> a 1x1 Conv2d W (out, in, 1, 1)."""
    return weight[:, :, None, None]


# ---------------------------------------------------------------- reading the sources

def _keras_layer_arrays(path, root, keras_name):
    """(kernel, bias) of one Keras layer group, found through its weight_names attribute when present."""
    import h5py
    if keras_name not in root:
        hint = " (the _notop file has no classifier: fc6/fc7 need the full file)" if keras_name in ("fc1", "fc2") else ""
        raise ConversionError(f"{path}: layer {keras_name} is missing{hint}")
    group = root[keras_name]
    if not isinstance(group, h5py.Group):
        raise ConversionError(f"{path}: {keras_name} is a single array, not a layer group holding a kernel and a bias")
    datasets = []
    names = group.attrs.get("weight_names")
    if names is not None:
        for name in names:
            name = name.decode() if isinstance(name, bytes) else str(name)
            # Keras 1 names are relative to the layer group; Keras 2 names may repeat the layer's name
            for candidate in (name, f"{keras_name}/{name}"):
                if candidate in group and isinstance(group[candidate], h5py.Dataset):
                    datasets.append(group[candidate])
                    break
            else:
                if name in root and isinstance(root[name], h5py.Dataset):
                    datasets.append(root[name])
                else:
                    raise ConversionError(f"{path}: {keras_name} lists weight {name} but the file has no such dataset")
    else:
        group.visititems(lambda _, item: datasets.append(item) if isinstance(item, h5py.Dataset) else None)
    kernels = [d for d in datasets if d.ndim >= 2]
    biases = [d for d in datasets if d.ndim == 1]
    if len(kernels) != 1 or len(biases) != 1:
        found = ", ".join(f"{d.name} {tuple(d.shape)}" for d in datasets) or "no arrays"
        raise ConversionError(f"{path}: layer {keras_name} should hold one kernel (2 or 4 axes) and one bias "
                              f"(1 axis), found {found}")
    return numpy.asarray(kernels[0][()]), numpy.asarray(biases[0][()])


def read_keras(path, keep_fc8=True):
    """{fcnlite layer name: {"W", "b"}} from a Keras VGG16 HDF5 file, in fcnlite's layouts."""
    import h5py
    try:
        file = h5py.File(path, "r")
    except Exception as error:
        raise ConversionError(f"{path}: not a readable HDF5 file ({first_line(error)})") from None
    with file:
        if "fcnlite_format" in file.attrs:
            raise ConversionError(f"{path}: already an fcnlite weight file: load it as it is (fcnlite.load_weights, "
                                  f"or train_voc.py --init)")
        # a whole saved model keeps its weights under /model_weights (as Keras's own loader assumes)
        root = file["model_weights"] if "layer_names" not in file.attrs and "model_weights" in file else file
        names = CONV_NAMES + ["fc6", "fc7"] + (["fc8"] if keep_fc8 else [])
        raw = {name: _keras_layer_arrays(path, root, KERAS_NAMES[name]) for name in names}
    layers = {}
    for name in CONV_NAMES:
        kernel, bias = raw[name]
        _expect_ndim(path, KERAS_NAMES[name], "kernel", kernel, 4, "(kh, kw, in, out)")
        layers[name] = {"W": conv_from_keras(kernel), "b": bias}
    for name in ("fc6", "fc7", "fc8"):
        if name not in raw:
            continue
        kernel, bias = raw[name]
        _expect_ndim(path, KERAS_NAMES[name], "kernel", kernel, 2, "(in, out)")
        if name == "fc6":
            pool5_channels = layers["conv5_3"]["W"].shape[0]
            _expect_fc6_inputs(path, KERAS_NAMES[name], kernel.shape[0], pool5_channels)
            layers[name] = {"W": fc6_from_keras(kernel, pool5_channels), "b": bias}
        else:
            layers[name] = {"W": dense_from_keras(kernel), "b": bias}
    return layers


# Where training checkpoints keep the model's state dict: pytorch-fcn's trainer saves it as
# "model_state_dict" (beside "optim_state_dict", "epoch", ...), PyTorch Lightning, timm and
# mmsegmentation as "state_dict", torchvision's reference scripts as "model".
CHECKPOINT_KEYS = ("model_state_dict", "state_dict", "model")


def _is_state_dict(value):
    """A non-empty dict of tensors (a key of a state dict holds a tensor, never a dict)."""
    return isinstance(value, dict) and bool(value) and all(hasattr(item, "detach") for item in value.values())


class _Dropped:
    """What a NumPy dtype in a checkpoint becomes: nothing, built without NumPy's own reconstruction, which
    the file's bytes could steer (a dtype marked as holding no objects, then a scalar of it)."""

    def __init__(self, *args):
        pass

    def __setstate__(self, state):
        pass


def _dropped(*args):
    """What a NumPy scalar in a checkpoint becomes: None (the converters read tensors only)."""
    return None


def _numpy_scalars_allowed(torch):
    """A context in which torch.load's safe unpickling takes the NumPy scalars of a training checkpoint's
    scores (pytorch-fcn's model_best.pth.tar: best_mean_iu, a numpy.float64), which it refused as
    "pickles Python objects other than tensors", and reads them as None: NumPy's functions of those
    names never run, under NumPy 2's name or NumPy 1's, which older checkpoints carry."""
    stand_ins = [(_dropped, "numpy._core.multiarray.scalar"), (_dropped, "numpy.core.multiarray.scalar"),
                 (_Dropped, "numpy.dtype")]
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    return safe_globals(stand_ins) if safe_globals is not None else contextlib.nullcontext()


def _load_torch(path, what="a PyTorch state dict"):
    """{key: numpy array} of a state dict (what: the message's name for the file expected)."""
    try:
        import torch
    except ImportError:
        raise ConversionError(f"{path}: reading .pth files needs PyTorch: pip install torch==2.13.0") from None
    try:
        with warnings.catch_warnings(), _numpy_scalars_allowed(torch):   # torch warns of pickle protocols in lines
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:   # torch's message is advice on untrusted code, over many lines
        if "Unsupported global" in str(error):   # a whole module or other Python objects pickled
            raise ConversionError(f"{path}: not {what} (it pickles Python objects other than tensors, which are "
                                  f"not loaded, for safety: save the model's state_dict())") from None
        raise ConversionError(f"{path}: not {what} (damaged, or not a file torch.save wrote)") from None
    except Exception as error:
        raise ConversionError(f"{path}: not {what} ({first_line(error)})") from None
    if isinstance(state, dict) and not _is_state_dict(state):
        # a training checkpoint: the state dict beside the optimizer's, the epoch, ...
        state = next((state[key] for key in CHECKPOINT_KEYS if _is_state_dict(state.get(key))), state)
    if isinstance(state, dict) and not _is_state_dict(state):
        if not state:
            raise ConversionError(f"{path}: not {what} (it holds an empty dict)")
        keys = [str(key) for key in state]
        named = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
        wrappers = ", ".join(CHECKPOINT_KEYS[:-1]) + f" or {CHECKPOINT_KEYS[-1]}"
        raise ConversionError(f"{path}: not {what} (it holds a dict of other things: {named}; a checkpoint's "
                              f"weights are read from a state dict under {wrappers})")
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: not {what} (it holds a {type(state).__name__}, not a dict of tensors)")
    # float32 whatever the source stored (NumPy has no bfloat16): fcnlite's files hold float32
    return {key: (value.detach().cpu().float() if value.is_floating_point() else value.detach().cpu()).numpy()
            for key, value in state.items()}


def read_torchvision(path, keep_fc8=True):
    """{fcnlite layer name: {"W", "b"}} from a torchvision VGG16 state dict, in fcnlite's layouts."""
    state = _load_torch(path)
    # torchvision's vgg16_bn puts a BatchNorm2d after each convolution, which shifts the indices of
    # features: without this check it fails as "features.2.weight (conv1_2) is missing", which hides why
    batch_norm = next((key for key in state if key.endswith(".running_mean")), None)
    if batch_norm is not None:
        raise ConversionError(f"{path}: a batch-norm VGG16 (vgg16_bn: it holds {batch_norm}) is not the FCN's "
                              f"network, whose VGG16 has no batch normalization: convert the plain VGG16 "
                              f"(vgg16-397923af.pth, or Keras's .h5: weights/README.md)")
    names = CONV_NAMES + ["fc6", "fc7"] + (["fc8"] if keep_fc8 else [])
    layers = {}
    for name in names:
        prefix = TORCHVISION_NAMES[name]
        for key in ("weight", "bias"):
            if f"{prefix}.{key}" not in state:
                raise ConversionError(f"{path}: {prefix}.{key} ({name}) is missing from the state dict")
        weight, bias = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
        if name in CONV_NAMES:
            _expect_ndim(path, prefix, "weight", weight, 4, "(out, in, kh, kw)")
            layers[name] = {"W": weight, "b": bias}
            continue
        _expect_ndim(path, prefix, "weight", weight, 2, "(out, in)")
        if name == "fc6":
            pool5_channels = layers["conv5_3"]["W"].shape[0]
            _expect_fc6_inputs(path, prefix, weight.shape[1], pool5_channels)
            layers[name] = {"W": fc6_from_torch(weight, pool5_channels), "b": bias}
        else:
            layers[name] = {"W": dense_from_torch(weight), "b": bias}
    return layers


# ---------------------------------------------------------------- checks

def _expect_ndim(path, source_name, what, array, ndim, layout):
    if array.ndim != ndim:
        raise ConversionError(f"{path}: {source_name} {what} has shape {tuple(array.shape)}, expected {ndim} axes {layout}")


def _expect_fc6_inputs(path, source_name, inputs, pool5_channels):
    expected = FC6_KERNEL * FC6_KERNEL * pool5_channels
    if inputs != expected:
        raise ConversionError(f"{path}: {source_name} takes {inputs} inputs, but pool5 "
                              f"({pool5_channels} channels x {FC6_KERNEL}x{FC6_KERNEL}) gives {expected}")


def check_layers(path, layers):
    """Check that the layers chain into the VGG16 fcnlite builds, and return its width (conv1_1's channels / 64)."""
    width = layers["conv1_1"]["W"].shape[0] / 64
    in_channels = 3
    for name in CONV_NAMES + ["fc6", "fc7", "fc8"]:
        if name not in layers:
            continue
        weights, bias = layers[name]["W"], layers[name]["b"]
        kernel = FC6_KERNEL if name == "fc6" else 3 if name.startswith("conv") else 1
        out_channels = weights.shape[0] if name == "fc8" else channels(CONV_CHANNELS.get(name, 4096), width)
        expected = (out_channels, in_channels, kernel, kernel)
        if tuple(weights.shape) != expected:
            raise ConversionError(f"{path}: {name} weights have shape {tuple(weights.shape)} (as fcnlite's W), "
                                  f"but a VGG16 of width {width:g} needs {expected}")
        if tuple(bias.shape) != (out_channels,):
            raise ConversionError(f"{path}: {name} bias has shape {tuple(bias.shape)}, expected ({out_channels},)")
        for key, array in (("weights", weights), ("bias", bias)):
            bad = nonfinite_count(array)
            if bad:   # fcnlite would refuse the converted file: say so now, naming the source's layer
                raise ConversionError(f"{path}: {name} {key} hold {bad} values that are NaN or infinite")
        in_channels = out_channels
    return width


# ---------------------------------------------------------------- the conversion

def detect_format(path):
    """"keras" for an HDF5 file, "torchvision" for a .pth/.pt file or a zip / pickle; else ConversionError."""
    import h5py
    if os.path.isdir(path):
        raise ConversionError(f"{path} is a folder, not a file of weights to convert")
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    extension = os.path.splitext(path)[1].lower()
    if h5py.is_hdf5(path):
        return "keras"
    if extension in HDF5_EXTENSIONS:
        raise ConversionError(f"{path}: not an HDF5 file (a .h5 source must be Keras's VGG16 weights)")
    with open(path, "rb") as file:
        magic = file.read(4)
    # torch.save writes a zip archive (PK..) since PyTorch 1.6, a pickle (0x80) before
    if extension in TORCH_EXTENSIONS or magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80":
        return "torchvision"
    raise ConversionError(f"{path}: neither an HDF5 file (Keras) nor a PyTorch state dict (.pth)")


def convert(source, output, keep_fc8=True):
    """Convert a Keras .h5 or torchvision .pth VGG16 into fcnlite's weight file at output.

    Returns the root attributes written. Raises ConversionError (one line naming the
    source) when the source cannot be read or its layers do not form a VGG16.
    """
    source = os.fspath(source)
    kind = detect_format(source)
    check_writable(output)   # before reading a source of half a gigabyte
    if os.path.exists(output) and os.path.samefile(source, output):
        raise ConversionError(f"{source}: the output -o {os.fspath(output)} is the source itself: choose another name")
    if kind == "keras":
        layers = read_keras(source, keep_fc8)
        preprocessing, origin = KERAS_PREPROCESSING, "Keras VGG16 (original Caffe weights of Simonyan & Zisserman)"
    else:
        layers = read_torchvision(source, keep_fc8)
        preprocessing, origin = TORCHVISION_PREPROCESSING, "torchvision VGG16"
    width = check_layers(source, layers)
    attributes = {
        "fcnlite_format": FORMAT_VERSION,
        "architecture": "vgg16",
        "n_classes": int(layers["fc8"]["W"].shape[0]) if "fc8" in layers else 0,
        "width": float(width),
        **preprocessing,
        "source": f"{os.path.basename(source)}: {origin}, converted by weights/convert_vgg16.py",
    }
    arrays = {f"{name}/{key}": value for name, layer in layers.items() for key, value in layer.items()}
    write_arrays(output, arrays, attributes)
    return attributes


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert Keras (.h5) or torchvision (.pth) VGG16 weights "
                                                 "into fcnlite's HDF5 weight file.")
    parser.add_argument("source", help="vgg16_weights_tf_dim_ordering_tf_kernels.h5 or vgg16-397923af.pth")
    parser.add_argument("-o", "--output", default="weights/vgg16.h5", help="where to write (default: %(default)s)")
    parser.add_argument("--no-fc8", dest="keep_fc8", action="store_false",
                        help="leave out the 1000-class ImageNet classifier fc8 (FCNs do not use it)")
    arguments = parser.parse_args(argv)
    try:
        attributes = convert(arguments.source, arguments.output, arguments.keep_fc8)
    except (ConversionError, WeightsError) as error:   # WeightsError: the output could not be written
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{arguments.output}: VGG16 width {attributes['width']:g}, {attributes['n_classes'] or 'no'} ImageNet classes, "
          f"input {attributes['channel_order']} x {attributes['input_scale']:.6g} - mean / std")
    return 0


if __name__ == "__main__":
    sys.exit(main())
