"""Turn uint8 RGB pictures into the float arrays a model was trained on, and back.

A model (and every weights file) carries a `preprocessing` dict saying how its
inputs were prepared when its weights were learned:

    channel_order  "RGB" or "BGR"   the order of the three input channels
    input_scale    float            pixels (0..255) are multiplied by it: 1.0 keeps 0..255, 1/255 gives 0..1
    mean, std      3 floats each    per channel, in the model's channel order and in scaled units

    x = (pixel[channel_order] * input_scale - mean) / std

Two conventions meet in practice. Caffe's VGG16 (the reference FCN's encoder):
BGR, 0..255, ImageNet mean (104.0, 116.7, 122.7) subtracted, no division.
torchvision's VGG16: RGB, 0..1, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
Feeding weights the other convention's input still "works", just badly, so the
dict travels with the weights.
"""
import numpy

from ..backend import to_numpy

# The Caffe convention is fcnlite.models.base.CAFFE_PREPROCESSING (the models' default).
TORCHVISION_PREPROCESSING = {
    "channel_order": "RGB",
    "input_scale": 1.0 / 255.0,
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}


def _unpack(preprocessing):
    """(channel_order, scale, mean, std) from a preprocessing dict, checked."""
    if not isinstance(preprocessing, dict):
        raise ValueError(f"preprocessing is {preprocessing!r}: give a dict of channel_order, input_scale, mean, std")
    missing = [key for key in ("channel_order", "input_scale", "mean", "std") if key not in preprocessing]
    if missing:
        raise ValueError(f"preprocessing dict lacks {', '.join(missing)} "
                         f"(it needs channel_order, input_scale, mean, std)")
    order = str(preprocessing["channel_order"]).upper()
    if order not in ("RGB", "BGR"):
        raise ValueError(f"preprocessing channel_order is {preprocessing['channel_order']!r}; expected 'RGB' or 'BGR'")
    mean = numpy.asarray(preprocessing["mean"], dtype=numpy.float64)
    std = numpy.asarray(preprocessing["std"], dtype=numpy.float64)
    if mean.shape != (3,) or std.shape != (3,):
        raise ValueError(f"preprocessing mean and std need 3 values each, got {mean.size} and {std.size}")
    if numpy.any(std == 0):
        raise ValueError("preprocessing std has a zero")
    return order, float(preprocessing["input_scale"]), mean, std


def preprocess(image, preprocessing):
    """uint8 RGB (H, W, 3) -> float32 (3, H, W) as the model expects; a batch (N, H, W, 3) -> (N, 3, H, W).
    Other numbers of 0..255 are taken too; floats of 0..1 are refused (ValueError), as values out of range."""
    image = numpy.asarray(image)
    if image.ndim < 3 or image.shape[-1] != 3:
        raise ValueError(f"preprocess expects RGB pixels of shape (H, W, 3), got shape {image.shape}")
    if image.dtype != numpy.uint8:
        check_pixel_range(image)
    order, scale, mean, std = _unpack(preprocessing)
    pixels = image.astype(numpy.float32)
    if order == "BGR":
        pixels = pixels[..., ::-1]
    # one multiply-add per pixel: (p * scale - mean) / std = p * (scale / std) - mean / std
    pixels = pixels * (scale / std).astype(numpy.float32) - (mean / std).astype(numpy.float32)
    return numpy.ascontiguousarray(numpy.moveaxis(pixels, -1, -3))


def check_pixel_range(image):
    """ValueError unless the pixels of an image that is not uint8 are numbers of 0..255: floats of 0..1
    (as matplotlib reads a PNG) would reach the network as an almost flat image, without a word."""
    if image.dtype.kind not in "uif":
        raise ValueError(f"preprocess takes pixels of 0..255 (uint8 RGB), not {image.dtype}")
    if not image.size:
        return
    low, high = float(image.min()), float(image.max())
    if not (numpy.isfinite(low) and numpy.isfinite(high)):
        raise ValueError("preprocess takes pixels of 0..255: this image holds NaN or infinite values")
    if image.dtype.kind == "f" and low >= 0 and 0 < high <= 1:
        raise ValueError(f"preprocess takes pixels of 0..255 (uint8 RGB); these are floats of {low:g}..{high:g}, "
                         f"brightness as a fraction (as matplotlib reads a PNG): multiply them by 255 first")
    if low < 0 or high > 255:
        raise ValueError(f"preprocess takes pixels of 0..255 (uint8 RGB); these range over {low:g}..{high:g}")


def deprocess(array, preprocessing):
    """The inverse of preprocess, for looking at inputs: float (3, H, W) -> uint8 RGB (H, W, 3), clipped."""
    array = to_numpy(array).astype(numpy.float64)   # a model's output may live on the GPU
    if array.ndim < 3 or array.shape[-3] != 3:
        raise ValueError(f"deprocess expects channels first, shape (3, H, W), got shape {array.shape}")
    order, scale, mean, std = _unpack(preprocessing)
    pixels = numpy.moveaxis(array, -3, -1) * std + mean
    pixels = pixels / scale
    if order == "BGR":
        pixels = pixels[..., ::-1]
    return numpy.clip(numpy.rint(pixels), 0, 255).astype(numpy.uint8)
