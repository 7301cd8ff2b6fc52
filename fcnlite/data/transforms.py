"""Resizing and augmentation of (image, label) pairs, with NumPy and Pillow only.

Each function takes uint8 RGB (H, W, 3) and integer labels (H, W) (uint8 as the
datasets give them; another integer dtype comes back as itself) and returns the
pair transformed the same way. The image is resampled bilinearly; the
label always with nearest neighbour, because label values are class indices:
interpolating between class 3 and class 15 would invent class 9, and
blending into 255 (void) would invent classes near every border. A label may
be None (inference), and comes back as None. A label of another size than its
image is an error: cropped or resized together, the two would no longer line up.

A max_side or crop_size of 0 or None means "off" (no limit, no crop), as in
TrainConfig and on the command line, and so does a resize or scale_range of None;
a negative size is an error.

Random decisions come from the numpy Generator passed in, so a run is
repeatable from its seed.
"""
import numpy
from PIL import Image

from .classes import IGNORE_INDEX

# Pad colour for images: the ImageNet mean in RGB 0..255, which both the Caffe and the
# torchvision preprocessing turn into (nearly) zero, so padding adds no signal.
MEAN_RGB = (124, 116, 104)


def _check_pair(image, label):
    if label is not None and label.shape != image.shape[:2]:
        raise ValueError(f"label is {_size(label.shape)} (HxW) but its image is {_size(image.shape[:2])}: "
                         f"give a label of the image's size, one class index per pixel")


def _size(shape):
    return "x".join(str(side) for side in shape)


def _resize_pair(image, label, height, width):
    _check_pair(image, label)
    if image.shape[:2] == (height, width):
        return image, label
    image = numpy.array(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    if label is not None:
        label = _resize_label(label, height, width)
    return image, label


def _resize_label(label, height, width):
    """Nearest-neighbour resize of a label map of any integer dtype, returned in that dtype."""
    if label.dtype == numpy.uint8:
        return numpy.array(Image.fromarray(label).resize((width, height), Image.NEAREST))
    if label.dtype.kind not in "biu":
        raise TypeError(f"label is {label.dtype}: give the class index of each pixel as integers")
    # Pillow resizes one byte or 32-bit signed integers (mode "I"): a label of int64 (numpy's default) or
    # uint16 (over 255 classes) goes through int32, which holds any class index
    wide = Image.fromarray(label.astype(numpy.int32)).resize((width, height), Image.NEAREST)
    return numpy.array(wide).astype(label.dtype)


def resize(image, label, size):
    """Resize to size = (height, width), or size x size for a number: image bilinear, label nearest.
    size None: the pair unchanged (TrainConfig's resize=None)."""
    if size is None:
        _check_pair(image, label)
        return image, label
    height, width = (int(size), int(size)) if numpy.isscalar(size) else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"size is {size}: give (height, width) in pixels, each 1 or more")
    return _resize_pair(image, label, height, width)


def limit_max_side(image, label, max_side):
    """Downscale so that the longer side is at most max_side, keeping the aspect ratio (never upscale).
    max_side 0 or None: no limit, the pair unchanged."""
    _check_pair(image, label)
    if max_side is None or max_side == 0:
        return image, label
    if max_side < 0:
        raise ValueError(f"max_side is {max_side}: give the longer side's limit in pixels, 1 or more (0: no limit)")
    height, width = image.shape[:2]
    longer = max(height, width)
    if longer <= max_side:
        return image, label
    scale = max_side / longer
    return _resize_pair(image, label, max(1, round(height * scale)), max(1, round(width * scale)))


def random_flip(image, label, rng, probability=0.5):
    """Mirror image and label left-right together, with the given probability."""
    _check_pair(image, label)
    if rng.random() >= probability:
        return image, label
    image = numpy.ascontiguousarray(image[:, ::-1])
    label = None if label is None else numpy.ascontiguousarray(label[:, ::-1])
    return image, label


def random_scale_crop(image, label, rng, scale_range=(0.5, 2.0), crop_size=None, ignore_index=IGNORE_INDEX,
                      fill=MEAN_RGB):
    """Scale by a random factor in scale_range, then (if crop_size) cut a random crop_size window.

    scale_range: (min, max) with 0 < min <= max; min == max scales by exactly that; None: no scaling.
    crop_size: int (square) or (height, width); None or 0 keeps the whole scaled image.
    When the scaled image is smaller than the crop it is padded at the bottom and
    right: the image with `fill`, the label with ignore_index, so padding is
    never learned as a class.
    """
    _check_pair(image, label)
    low, high = scale_range if scale_range is not None else (1.0, 1.0)
    # a reversed range used to scale by its min, a negative factor shrank every image to 1x1
    if not 0 < low <= high:
        raise ValueError(f"scale_range is {tuple(scale_range)}: give (min, max) with 0 < min <= max")
    if crop_size is None or (numpy.isscalar(crop_size) and crop_size == 0):
        crop_size = None
    else:
        crop_h, crop_w = (crop_size, crop_size) if numpy.isscalar(crop_size) else crop_size
        if crop_h < 1 or crop_w < 1:   # a negative crop cut an empty (0, 0) window, trained on as a loss of 0
            raise ValueError(f"crop_size is {crop_size}: give the crop's side in pixels, 1 or more "
                             f"(or (height, width); 0: no crop)")
    height, width = image.shape[:2]
    scale = rng.uniform(low, high) if high > low else low
    image, label = _resize_pair(image, label, max(1, round(height * scale)), max(1, round(width * scale)))
    if crop_size is None:
        return image, label
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
