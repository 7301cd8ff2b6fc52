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

from ..errors import count
from .classes import VOC_CLASSES, voc_palette
from .errors import DataError
from .images import check_label, find_layout, open_image, read_image, read_split


def find_voc_root(root):
    """The VOC2012 folder for `root`: the folder holding VOCdevkit, VOCdevkit itself, or VOC2012 itself."""
    return find_layout(root, (os.path.join("VOCdevkit", "VOC2012"), "VOC2012", ""), "JPEGImages",
                       "dataset folder does not exist",
                       "no PASCAL VOC 2012 data found: expected VOCdevkit/VOC2012/JPEGImages, "
                       "VOC2012/JPEGImages or JPEGImages inside it")


def read_label_png(path):
    """A label PNG's pixel values as uint8 (H, W): the palette indices (mode P) or grey levels (mode L)."""
    with open_image(path, "label file is missing", "cannot be decoded as a label image") as picture:
        if picture.mode in ("P", "L"):
            return numpy.array(picture, dtype=numpy.uint8)
        mode = picture.mode
    # A colour (RGB) label would need a colour-to-class table; VOC labels store the class itself.
    raise DataError(path, f"label is a mode {mode} image; expected an 8-bit palette (P) or greyscale (L) "
                          f"PNG whose pixel values are class indices")


def present_ids(listed_ids, listed_in, files_of, skip_bad):
    """(present, skipped): the listed ids whose files all exist, and one message per id dropped.

    files_of(id) gives an id's files (image, label); a missing one raises DataError
    naming it and `listed_in`, or with skip_bad drops the id.
    """
    present, skipped = [], []
    for sample_id in listed_ids:
        missing = [path for path in files_of(sample_id) if not os.path.exists(path)]
        if not missing:
            present.append(sample_id)
            continue
        error = DataError(missing[0], f"file is missing (id {sample_id} is listed in {listed_in})")
        if not skip_bad:
            raise error
        skipped.append(str(error))
    if not present:
        raise DataError(listed_in, f"none of the {len(listed_ids)} listed ids has both its image and its label")
    return present, skipped


class ListedDataset:
    """What VOC and SBD share: ids from a split file, and an image file and a label file per id.

    A subclass calls _set_split_and_classes, sets `ids` (with present_ids), and gives
    _image_path(id), _label_path(id) and _read_label(path) -> (H, W) class indices, 255 = void.
    """

    def _set_split_and_classes(self, split, skip_bad):
        """Keep the split (as a string) and skip_bad, with VOC's 21 classes and palette; returns the split."""
        self.split = os.fspath(split)
        self.skip_bad = skip_bad
        self.class_names = list(VOC_CLASSES)
        self.n_classes = len(self.class_names)
        self.palette = voc_palette()
        self.class_map = None
        return self.split

    def use_class_map(self, class_map):
        """Train on some of VOC's classes (--classes person, or a ClassMap of VOC_CLASSES): each
        label goes through the map after its check against the 21 classes; drawn in make_palette's
        colours, as VOC's would give the new class 1 aeroplane's."""
        self.class_map = class_map
        self.class_names = list(class_map.class_names)
        self.n_classes = len(self.class_names)
        self.palette = None
        return self

    def _files(self, sample_id):
        return self._image_path(sample_id), self._label_path(sample_id)

    def __len__(self):
        return len(self.ids)

    def image_path(self, index):
        return self._image_path(self.ids[index])

    def label_path(self, index):
        return self._label_path(self.ids[index])

    def load(self, index):
        """(image, label): uint8 RGB (H, W, 3) and uint8 (H, W) class indices, 255 = void."""
        image_path, label_path = self.image_path(index), self.label_path(index)
        image = read_image(image_path, upright=False)
        label = self._read_label(label_path)
        check_label(label, len(VOC_CLASSES), label_path, image.shape, image_path)
        label = label.astype(numpy.uint8, copy=False)
        if self.class_map is None:
            return image, label
        try:
            return image, self.class_map.apply(label)
        except ValueError as error:   # a value the map leaves out: a DataError naming the label file
            raise DataError(label_path, str(error)) from None

    __getitem__ = load


class VOCSegmentation(ListedDataset):
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
        split = self._set_split_and_classes(split, skip_bad)
        if split == "seg11valid":
            if sbd_root is None:
                raise ValueError("split 'seg11valid' is VOC val minus SBD train: pass sbd_root=<SBD folder>")
            from .sbd import seg11valid_ids   # sbd imports this module, so import it here
            listed_ids, listed_in = seg11valid_ids(self.voc_dir, sbd_root), "split seg11valid"
        else:
            split_path = split if split.endswith(".txt") else os.path.join(
                self.voc_dir, "ImageSets", "Segmentation", f"{split}.txt")
            listed_ids, listed_in = read_split(split_path), split_path
        self.ids, self.skipped = present_ids(listed_ids, listed_in, self._files, skip_bad)
        synthetic = os.path.exists(os.path.join(self.voc_dir, "synthetic.json"))
        kind = "synthetic VOC-layout" if synthetic else "PASCAL VOC 2012"
        self.name = f"{kind} {os.path.basename(split) if split.endswith('.txt') else split} ({count(len(self.ids), 'image')})"

    def _image_path(self, sample_id):
        return os.path.join(self.voc_dir, self.image_folder, f"{sample_id}.jpg")

    def _label_path(self, sample_id):
        return os.path.join(self.voc_dir, self.label_folder, f"{sample_id}.png")

    _read_label = staticmethod(read_label_png)

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

    The Trainer and evaluate_dataset, which call load, skip and count the samples it raises
    DataError for, as they do for a dataset made with skip_bad=True; a sample found bad is not
    read again there either.
    """

    skip_bad = True   # (what those loops ask; the wrapped dataset's may be False)

    def __init__(self, dataset):
        self.dataset = dataset
        self.skipped = []
        self.bad_indices = set()
        self._errors = {}   # index -> the DataError its loading raised

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):
        if name == "dataset":        # not set yet (e.g. while unpickling): avoid endless recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def load(self, index):
        """The wrapped dataset's sample; a sample found bad raises its DataError, and again later without
        being read again (the Trainer meets it once an epoch)."""
        if index in self._errors:
            raise self._errors[index]
        try:
            return self.dataset.load(index)
        except DataError as error:
            self.bad_indices.add(index)
            self._errors[index] = error
            self.skipped.append(str(error))
            raise

    def load_or_skip(self, index):
        try:
            return self.load(index)
        except DataError:
            return None

    def check_all(self):
        """Load every sample once (slow: reads the whole dataset); returns the messages of the bad ones."""
        for index in range(len(self.dataset)):
            self.load_or_skip(index)
        return list(self.skipped)
