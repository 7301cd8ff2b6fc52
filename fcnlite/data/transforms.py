"""Resizing and augmentation of (image, label) pairs, with NumPy and Pillow only.

Each function takes uint8 RGB (H, W, 3) and uint8 labels (H, W) and returns
the pair transformed the same way. The image is resampled bilinearly; the
label always with nearest neighbour, because label values are class indices:
interpolating between class 3 and class 15 would invent class 9, and
blending into 255 (void) would invent classes near every border. A label may
be None (inference), and comes back as None.

Random decisions come from the numpy Generator passed in, so a run is
repeatable from its seed.
"""
import numpy
from PIL import Image

from .classes import IGNORE_INDEX

# Pad colour for images: the ImageNet mean in RGB 0..255, which both the Caffe and the
# torchvision preprocessing turn into (nearly) zero, so padding adds no signal.
MEAN_RGB = (124, 116, 104)


def _resize_pair(image, label, height, width):
    if image.shape[:2] == (height, width):
        return image, label
    image = numpy.array(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    if label is not None:
        label = numpy.array(Image.fromarray(label).resize((width, height), Image.NEAREST))
    return image, label


def resize(image, label, size):
    """Resize to size = (height, width): image bilinear, label nearest."""
    height, width = (int(size), int(size)) if numpy.isscalar(size) else (int(size[0]), int(size[1]))
    return _resize_pair(image, label, height, width)


def limit_max_side(image, label, max_side):
    """Downscale so that the longer side is at most max_side, keeping the aspect ratio (never upscale)."""
    height, width = image.shape[:2]
    longer = max(height, width)
    if longer <= max_side:
        return image, label
    scale = max_side / longer
    return _resize_pair(image, label, max(1, round(height * scale)), max(1, round(width * scale)))


def random_flip(image, label, rng, probability=0.5):
    """Mirror image and label left-right together, with the given probability."""
    if rng.random() >= probability:
        return image, label
    image = numpy.ascontiguousarray(image[:, ::-1])
    label = None if label is None else numpy.ascontiguousarray(label[:, ::-1])
    return image, label


def random_scale_crop(image, label, rng, scale_range=(0.5, 2.0), crop_size=None, ignore_index=IGNORE_INDEX,
                      fill=MEAN_RGB):
    """Scale by a random factor in scale_range, then (if crop_size) cut a random crop_size window.

    crop_size: int (square) or (height, width); None keeps the whole scaled image.
    When the scaled image is smaller than the crop it is padded at the bottom and
    right: the image with `fill`, the label with ignore_index, so padding is
    never learned as a class.
    """
    height, width = image.shape[:2]
    low, high = scale_range
    scale = rng.uniform(low, high) if high > low else low
    image, label = _resize_pair(image, label, max(1, round(height * scale)), max(1, round(width * scale)))
    if crop_size is None:
        return image, label
    crop_h, crop_w = (crop_size, crop_size) if numpy.isscalar(crop_size) else crop_size
    height, width = image.shape[:2]
    pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
    if pad_h or pad_w:
        padded = numpy.empty((height + pad_h, width + pad_w, 3), dtype=image.dtype)
        padded[...] = numpy.asarray(fill, dtype=image.dtype)
        padded[:height, :width] = image
        image = padded
        if label is not None:
            label = numpy.pad(label, ((0, pad_h), (0, pad_w)), constant_values=ignore_index)
        height, width = image.shape[:2]
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    image = numpy.ascontiguousarray(image[top:top + crop_h, left:left + crop_w])
    if label is not None:
        label = numpy.ascontiguousarray(label[top:top + crop_h, left:left + crop_w])
    return image, label
