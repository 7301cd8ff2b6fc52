"""Convert the reference FCNs' trained weights into fcnlite's HDF5 format (schema: weights/README.md).

    python weights/convert_fcn.py fcn8s_from_caffe.npz          # wkentaro/fcn (Chainer): weights/fcn8s-voc.h5
    python weights/convert_fcn.py fcn8s_from_caffe.pth          # wkentaro/pytorch-fcn: the same file
    python weights/convert_fcn.py fcn8s-atonce_from_caffe.npz   # weights/fcn8s-atonce-voc.h5

Both files are Shelhamer, Long and Darrell's Caffe models, trained on PASCAL VOC (SBD train,
21 classes; fcn8s-heavy-pascal.caffemodel and its kin), re-saved by two ports that keep the
reference's layer names, as fcnlite does. So a file's keys name fcnlite's layers once their
prefixes are dropped:

    Chainer npz     conv1_1/W, conv1_1/b, ..., upscore8/W (and upscore8/b)
                    (a prefix such as "predictor/" is dropped: the last two parts count)
    PyTorch .pth    conv1_1.weight, conv1_1.bias, ..., upscore8.weight
                    ("module." or any other prefix dropped likewise; a training checkpoint,
                    such as pytorch-fcn's model_best.pth.tar, is read from its model_state_dict)

No layout changes: Convolution2D / nn.Conv2d keep W as (out, in, kh, kw) and Deconvolution2D
/ nn.ConvTranspose2d as (in, out, kh, kw), fcnlite's layouts. The upscore layers have no
bias in Caffe (bias_term: false) nor in fcnlite; Chainer's Deconvolution2D carries one that
stays zero, and is dropped (a non-zero one is refused: fcnlite could not compute it).

The architecture comes from the layers present (upscore8: FCN-8s, upscore16: FCN-16s,
upscore: FCN-32s); FCN-8s at once (pool3 and pool4 scaled by 1e-4 and 0.01 before their
score layers) has the same parameters as FCN-8s, so it is told by its file name ("atonce", as
both ports name it) or asked for with --model. Every parameter of that model must be in the
file with its shape, and nothing else.
The input is the Caffe nets': BGR, 0..255, minus the mean (104.00698793, 116.66876762,
122.67891434) that the reference's VOC data layer subtracts, which is fcnlite's FCN default.
"""
import argparse
import os
import sys
import zipfile

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # convert_vgg16, beside us
from convert_vgg16 import TORCH_EXTENSIONS, ConversionError, _expect_ndim, _load_torch  # noqa: E402  (and fcnlite)
from fcnlite.data import VOC_CLASSES  # noqa: E402
from fcnlite.errors import first_line  # noqa: E402
from fcnlite.io import WeightsError, check_writable, save_weights  # noqa: E402
from fcnlite.layers import ConvTranspose2d  # noqa: E402
from fcnlite.models import FCN_ARCHITECTURES, build_model  # noqa: E402

FINAL_UPSCORE = {"upscore8": "fcn8s", "upscore16": "fcn16s", "upscore": "fcn32s"}
TORCH_KEYS = {"weight": "W", "bias": "b"}


def layer_arrays(path, raw, separator, names):
    """{(layer, "W" | "b"): array} from {key: array}, by the keys' last two parts ("predictor/conv1_1/W",
    "module.conv1_1.weight"; names: the last part -> "W" or "b"); a key of another form is refused."""
    arrays = {}
    for key, value in raw.items():
        parts = key.split(separator)
        if len(parts) < 2 or parts[-1] not in names:
            raise ConversionError(f"{path}: holds {key!r}, which is no layer's weights or bias")
        arrays[(parts[-2], names[parts[-1]])] = value
    return arrays


def read_npz(path):
    """The arrays of a Chainer npz (numpy.savez), by layer."""
    try:
        with numpy.load(path, allow_pickle=False) as file:
            raw = {key: numpy.asarray(file[key]) for key in file.files}
    except Exception as error:
        raise ConversionError(f"{path}: not a readable npz file ({first_line(error)})") from None
    return layer_arrays(path, raw, "/", {"W": "W", "b": "b"})


def read_pth(path):
    """The arrays of a PyTorch state dict, by layer."""
    return layer_arrays(path, _load_torch(path, "a state dict of the reference FCN"), ".", TORCH_KEYS)


def read_source(path):
    """The source's arrays, told apart by content: an npz is a zip of .npy files, a torch.save file a
    zip holding a pickle (or, before PyTorch 1.6, a bare pickle)."""
    if os.path.isdir(path):
        raise ConversionError(f"{path} is a folder, not a file of weights to convert")
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".caffemodel":
        raise ConversionError(f"{path}: Caffe's own format is not read here: convert its Chainer (.npz) or "
                              f"PyTorch (.pth) copy, which hold the same arrays (weights/README.md)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        return read_npz(path) if names and all(name.endswith(".npy") for name in names) else read_pth(path)
    with open(path, "rb") as file:
        pickled = file.read(1) == b"\x80"
    if pickled or extension in TORCH_EXTENSIONS:
        return read_pth(path)
    raise ConversionError(f"{path}: neither an npz file (Chainer) nor a PyTorch state dict (.pth)")


def architecture_of(path, arrays, asked=None):
    """fcn32s / fcn16s / fcn8s from the final upsampling layer present; fcn8s-atonce when asked."""
    layers = {layer for layer, _ in arrays}
    found = [FINAL_UPSCORE[name] for name in FINAL_UPSCORE if name in layers]
    if len(found) > 1:
        last = " and ".join(f"{name} ({FINAL_UPSCORE[name]})" for name in FINAL_UPSCORE if name in layers)
        raise ConversionError(f"{path}: holds {last}, the last layers of different architectures: a file of one "
                              f"network has one of them")
    if not found:
        named = ", ".join(sorted(layers)[:8]) + (" ..." if len(layers) > 8 else "") or "no conv/deconv arrays"
        raise ConversionError(f"{path}: expected one of upscore8, upscore16 or upscore (FCN-8s, -16s, -32s), "
                              f"found layers {named}")
    if asked is not None and asked.replace("-atonce", "") != found[0]:
        raise ConversionError(f"{path}: holds an {found[0]} (its last layer), not an {asked}")
    if asked is None and found[0] == "fcn8s" and "atonce" in os.path.basename(path).lower():
        return "fcn8s-atonce"   # the same parameters as FCN-8s: only the name tells (fcn8s-atonce_from_caffe)
    return asked or found[0]


def fill_model(path, arrays, architecture):
    """The fcnlite model of that architecture (width and classes read from conv1_1 and score_fr),
    every parameter taken from arrays; upscore biases must be zero; nothing may be left over."""
    for name in ("conv1_1", "score_fr"):   # the width and the classes are read from their shapes
        if (name, "W") not in arrays:
            raise ConversionError(f"{path}: {name} is missing")
        _expect_ndim(path, name, "W", arrays[(name, "W")], 4, "(out, in, kh, kw)")
    width = arrays[("conv1_1", "W")].shape[0] / 64
    n_classes = int(arrays[("score_fr", "W")].shape[0])
    try:
        model = build_model(architecture, n_classes=n_classes, width=width)
    except ValueError as error:   # score_fr of one class (a loss of 0 everywhere), conv1_1 of no channel
        raise ConversionError(f"{path}: read from conv1_1 and score_fr, {error}") from None
    left = dict(arrays)
    for name, value, _ in model.named_parameters():
        layer, key = name.split("/")
        source = left.pop((layer, key), None)
        if source is None:
            raise ConversionError(f"{path}: {layer} {key} is missing (an {architecture} of width {width:g} "
                                  f"needs it)")
        if tuple(source.shape) != tuple(value.shape):
            raise ConversionError(f"{path}: {layer} {key} has shape {tuple(source.shape)}, but an {architecture} of "
                                  f"width {width:g} and {n_classes} classes needs {tuple(value.shape)}")
        if not numpy.isfinite(source).all():
            raise ConversionError(f"{path}: {layer} {key} holds values that are NaN or infinite")
        value[...] = source
    for (layer, key), source in list(left.items()):
        if key == "b" and isinstance(model.layers.get(layer), ConvTranspose2d):
            if numpy.any(source != 0):
                raise ConversionError(f"{path}: {layer} has a non-zero bias; the reference's upsampling has none, "
                                      f"and fcnlite's ConvTranspose2d neither")
            del left[(layer, key)]
    if left:
        extra = ", ".join(f"{layer}/{key}" for layer, key in sorted(left))
        raise ConversionError(f"{path}: holds arrays that an {architecture} has no place for: {extra}")
    if n_classes == len(VOC_CLASSES):
        model.class_names = list(VOC_CLASSES)
    return model


def default_output(architecture):
    """weights/<architecture>-voc.h5 beside this script, wherever it is run from."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{architecture}-voc.h5")


def convert(source, output=None, architecture=None):
    """Convert a reference FCN (Chainer npz or PyTorch .pth) into fcnlite's weight file at output
    (default <architecture>-voc.h5 in this folder, weights/); returns (the model written, output). Raises
    ConversionError (one line naming the source)."""
    source = os.fspath(source)
    if output is not None:
        check_writable(output)   # before reading a source of half a gigabyte
    arrays = read_source(source)
    architecture = architecture_of(source, arrays, architecture)
    output = os.fspath(output) if output is not None else default_output(architecture)
    if os.path.exists(output) and os.path.samefile(source, output):
        raise ConversionError(f"{source}: the output -o {output} is the source itself: choose another name")
    model = fill_model(source, arrays, architecture)
    save_weights(model, output, extra_attributes={
        "source": f"{os.path.basename(source)}: the reference FCN (Caffe), converted by weights/convert_fcn.py"})
    return model, output


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert the reference FCNs' trained weights (wkentaro/fcn's "
                                                 ".npz or pytorch-fcn's .pth) into fcnlite's HDF5 weight file.")
    parser.add_argument("source", help="e.g. fcn8s_from_caffe.npz or fcn8s_from_caffe.pth")
    parser.add_argument("-o", "--output", default=None,
                        help="where to write (default: weights/<architecture>-voc.h5, e.g. weights/fcn8s-voc.h5)")
    parser.add_argument("--model", choices=FCN_ARCHITECTURES, default=None,
                        help="default: told by the last layer, and fcn8s-atonce by 'atonce' in the file's name")
    arguments = parser.parse_args(argv)
    try:
        model, output = convert(arguments.source, arguments.output, arguments.model)
    except (ConversionError, WeightsError) as error:   # WeightsError: the output could not be written
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = model.config()
    print(f"{output}: {config['architecture']}, width {config['width']:g}, {config['n_classes']} classes"
          f"{' (PASCAL VOC)' if model.class_names else ''}, input BGR 0..255 minus the mean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
