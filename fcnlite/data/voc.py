"""PASCAL VOC 2012 semantic segmentation, read from its standard folder layout.

    <root>/VOCdevkit/VOC2012/
        JPEGImages/<id>.jpg                    the photographs
        SegmentationClass/<id>.png             8-bit palette PNGs: class index per pixel, 255 = void
        ImageSets/Segmentation/train.txt       one id per line (also val.txt, trainval.txt)

`root` may be the folder holding VOCdevkit, VOCdevkit itself, or VOC2012 itself.

Every dataset in fcnlite has the same small API, which the training loop and
the evaluation use:

    dataset.ids, len(dataset), dataset.class_names, dataset.n_classes, dataset.name
    dataset.image_path(i), dataset.label_path(i)
    image, label = dataset.load(i)     # uint8 (H, W, 3) RGB, uint8 (H, W) in 0..n_classes-1 or 255

Bad data raises DataError, whose message names the file and says what is wrong.
Files listed in the split but missing are found when the dataset is built (one
cheap existence check per file); with skip_bad=True they are dropped and noted
in `dataset.skipped` instead. Files that are present but unreadable are found
only when loaded: wrap the dataset in SkipBad to skip those too.
"""
import os

import numpy
from PIL import Image

from .classes import IGNORE_INDEX, VOC_CLASSES, voc_palette
from .errors import DataError

# The exceptions Pillow raises for a file it cannot decode (UnidentifiedImageError
# and truncated files are OSErrors; some broken headers raise the others).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def find_voc_root(root):
    """The VOC2012 folder for `root`: the folder holding VOCdevkit, VOCdevkit itself, or VOC2012 itself."""
    if not os.path.isdir(root):
        raise DataError(root, "dataset folder does not exist")
    for candidate in (os.path.join(root, "VOCdevkit", "VOC2012"), os.path.join(root, "VOC2012"), root):
        if os.path.isdir(os.path.join(candidate, "JPEGImages")):
            return candidate
    raise DataError(root, "no PASCAL VOC 2012 data found: expected VOCdevkit/VOC2012/JPEGImages, "
                          "VOC2012/JPEGImages or JPEGImages inside it")


def read_split(path):
    """The ids listed in a split file, one per line (blank lines ignored)."""
    if not os.path.isfile(path):
        raise DataError(path, "split file is missing")
    with open(path) as file:
        ids = [line.split()[0] for line in file if line.strip()]
    if not ids:
        raise DataError(path, "split file lists no ids")
    return ids


def first_line(error):
    """The first line of an exception's message (DataError messages are one line)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_image(path):
    """An image file as uint8 RGB (H, W, 3); grey or CMYK files are converted."""
    try:
        with Image.open(path) as picture:
            rgb = picture.convert("RGB")   # decodes the whole file, so truncation is caught here
    except FileNotFoundError:
        raise DataError(path, "image file is missing") from None
    except DECODE_ERRORS as error:
        raise DataError(path, f"cannot be decoded as an image ({first_line(error)})") from None
    return numpy.array(rgb, dtype=numpy.uint8)


def read_label_png(path):
    """A label PNG's pixel values as uint8 (H, W): the palette indices (mode P) or grey levels (mode L)."""
    try:
        with Image.open(path) as picture:
            mode = picture.mode
            if mode in ("P", "L"):
                return numpy.array(picture, dtype=numpy.uint8)
    except FileNotFoundError:
        raise DataError(path, "label file is missing") from None
    except DECODE_ERRORS as error:
        raise DataError(path, f"cannot be decoded as a label image ({first_line(error)})") from None
    # A colour (RGB) label would need a colour-to-class table; VOC labels store the class itself.
    raise DataError(path, f"label is a mode {mode} image; expected an 8-bit palette (P) or greyscale (L) "
                          f"PNG whose pixel values are class indices")


def check_label(label, n_classes, path, image_shape=None, image_path=None):
    """Raise DataError unless `label` is 2-D, as large as its image, with values in 0..n_classes-1 or 255."""
    if label.ndim != 2:
        raise DataError(path, f"label has shape {label.shape}; expected a single-channel (H, W) map")
    if image_shape is not None and tuple(label.shape[:2]) != tuple(image_shape[:2]):
        label_h, label_w = label.shape[:2]
        image_h, image_w = image_shape[:2]
        image_name = os.path.basename(image_path) if image_path else "its image"
        raise DataError(path, f"label is {label_w}x{label_h} but image {image_name} is {image_w}x{image_h} "
                              f"(width x height)")
    invalid = ((label < 0) | (label >= n_classes)) & (label != IGNORE_INDEX)
    if invalid.any():
        values = [int(value) if float(value).is_integer() else float(value)
                  for value in numpy.unique(label[invalid])[:5]]
        listed = ", ".join(str(value) for value in values)
        noun = "value" if len(values) == 1 else "values"
        verb = "is not a class" if len(values) == 1 else "are not classes"
        raise DataError(path, f"{noun} {listed} {verb} (0..{n_classes - 1}) or {IGNORE_INDEX}")


class VOCSegmentation:
    """PASCAL VOC 2012 segmentation: 21 classes (background + 20 objects), void = 255.

    root:     the folder holding VOCdevkit, VOCdevkit itself, or VOC2012 itself
    split:    "train" (1464 images), "val" (1449), "trainval"; "seg11valid" (the reference
              FCN's validation set, needs sbd_root; see fcnlite.data.sbd.seg11valid_ids);
              or the path of a split file of your own (one id per line)
    skip_bad: drop ids whose image or label file is missing (noted in `skipped`) instead of raising
    sbd_root: the SBD folder, only for split="seg11valid"
    """

    image_folder = "JPEGImages"
    label_folder = "SegmentationClass"

    def __init__(self, root, split="train", skip_bad=False, sbd_root=None):
        self.voc_dir = find_voc_root(root)
        split = os.fspath(split)
        self.split = split
        self.skip_bad = skip_bad
        self.class_names = list(VOC_CLASSES)
        self.n_classes = len(self.class_names)
        self.palette = voc_palette()
        self.skipped = []   # one message per id dropped because a file is missing
        if split == "seg11valid":
            if sbd_root is None:
                raise ValueError("split 'seg11valid' is VOC val minus SBD train: pass sbd_root=<SBD folder>")
            from .sbd import seg11valid_ids   # sbd imports this module, so import it here
            listed_ids, listed_in = seg11valid_ids(self.voc_dir, sbd_root), "split seg11valid"
        else:
            split_path = split if split.endswith(".txt") else os.path.join(
                self.voc_dir, "ImageSets", "Segmentation", f"{split}.txt")
            listed_ids, listed_in = read_split(split_path), split_path
        self.ids = self._present_ids(listed_ids, listed_in)
        synthetic = os.path.exists(os.path.join(self.voc_dir, "synthetic.json"))
        kind = "synthetic VOC-layout" if synthetic else "PASCAL VOC 2012"
        self.name = f"{kind} {os.path.basename(split) if split.endswith('.txt') else split} ({len(self.ids)} images)"

    def _present_ids(self, listed_ids, listed_in):
        """The listed ids whose image and label both exist; a missing file raises, or is noted with skip_bad."""
        present = []
        for sample_id in listed_ids:
            missing = [path for path in (self._image_path(sample_id), self._label_path(sample_id))
                       if not os.path.exists(path)]
            if not missing:
                present.append(sample_id)
                continue
            error = DataError(missing[0], f"file is missing (id {sample_id} is listed in {listed_in})")
            if not self.skip_bad:
                raise error
            self.skipped.append(str(error))
        if not present:
            raise DataError(listed_in, f"none of the {len(listed_ids)} listed ids has both its image and its label")
        return present

    def _image_path(self, sample_id):
        return os.path.join(self.voc_dir, self.image_folder, f"{sample_id}.jpg")

    def _label_path(self, sample_id):
        return os.path.join(self.voc_dir, self.label_folder, f"{sample_id}.png")

    def __len__(self):
        return len(self.ids)

    def image_path(self, index):
        return self._image_path(self.ids[index])

    def label_path(self, index):
        return self._label_path(self.ids[index])

    def load(self, index):
        """(image, label): uint8 RGB (H, W, 3) and uint8 (H, W) class indices, 255 = void."""
        image_path, label_path = self.image_path(index), self.label_path(index)
        image = read_image(image_path)
        label = read_label_png(label_path)
        check_label(label, self.n_classes, label_path, image.shape, image_path)
        return image, label

    __getitem__ = load

    def __repr__(self):
        return f"VOCSegmentation({self.voc_dir!r}, split={self.split!r}): {len(self)} images"


class SkipBad:
    """A dataset wrapper for long runs: a sample that cannot be read is skipped, not fatal.

    load_or_skip(i) returns (image, label), or None when loading raised a DataError;
    the error's message goes into `skipped` (once per bad sample: a sample found
    bad is not read again). Every other attribute is the wrapped dataset's.

        data = SkipBad(VOCSegmentation(root, "train", skip_bad=True))
        sample = data.load_or_skip(i)
        if sample is None: ...take the next one...
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.skipped = []
        self.bad_indices = set()

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):
        if name == "dataset":        # not set yet (e.g. while unpickling): avoid endless recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def load_or_skip(self, index):
        if index in self.bad_indices:
            return None
        try:
            return self.dataset.load(index)
        except DataError as error:
            self.bad_indices.add(index)
            self.skipped.append(str(error))
            return None

    def check_all(self):
        """Load every sample once (slow: reads the whole dataset); returns the messages of the bad ones."""
        for index in range(len(self.dataset)):
            self.load_or_skip(index)
        return list(self.skipped)
