"""SBD, the Semantic Boundaries Dataset (Hariharan et al. 2011): the reference FCN's training set.

SBD relabels 11,355 VOC 2011 photographs with the same 21 classes. Its tar
unpacks to benchmark_RELEASE/dataset/:

    dataset/img/<id>.jpg        the photographs (VOC ids, e.g. 2008_000002)
    dataset/cls/<id>.mat        MATLAB file with a struct GTcls; GTcls.Segmentation is the
                                (H, W) class-index map (no void border, unlike VOC)
    dataset/train.txt, val.txt  8,498 and 2,857 ids

`root` may be the folder holding benchmark_RELEASE, benchmark_RELEASE itself,
or its dataset folder. Reading .mat files needs SciPy (`pip install fcnlite[sbd]`),
imported only when an SBD dataset is built.

The reference FCN trains on SBD train and validates on "seg11valid": the VOC 2011
segmentation val images that are not in SBD train (so nothing it validates on was
trained on). seg11valid_ids computes that list.
"""
import os

import numpy

from ..errors import count, first_line
from .errors import DataError
from .images import find_layout, read_split
from .voc import ListedDataset, find_voc_root, present_ids


def import_loadmat():
    """scipy.io.loadmat, or a one-line ImportError saying how to install SciPy."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError("reading SBD .mat labels needs SciPy: pip install scipy "
                          "(or pip install fcnlite[sbd])") from None
    return loadmat


def find_sbd_root(root):
    """SBD's dataset folder (holding cls/ and img/) for `root`."""
    return find_layout(root, (os.path.join("benchmark_RELEASE", "dataset"), "dataset", ""), "cls",
                       "SBD folder does not exist",
                       "no SBD data found: expected benchmark_RELEASE/dataset/cls, dataset/cls or cls inside it")


def read_sbd_label(path):
    """GTcls.Segmentation of an SBD .mat file, as a numpy array (not yet checked)."""
    loadmat = import_loadmat()
    if not os.path.exists(path):
        raise DataError(path, "label file is missing")
    try:
        # struct_as_record=False gives GTcls as an object with attributes; squeeze_me drops MATLAB's 1x1 wrappers
        contents = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as error:   # scipy raises ValueError, TypeError, MatReadError ... for a broken file
        raise DataError(path, f"cannot be read as a MATLAB .mat file ({first_line(error)})") from None
    if "GTcls" not in contents:
        raise DataError(path, "has no GTcls struct (is it a file from SBD's cls/ folder?)")
    segmentation = getattr(contents["GTcls"], "Segmentation", None)
    if segmentation is None:
        raise DataError(path, "GTcls has no Segmentation field")
    return numpy.asarray(segmentation)


class SBDSegmentation(ListedDataset):
    """SBD's class labels: the same 21 classes as VOC, same API as VOCSegmentation.

    root:     the folder holding benchmark_RELEASE, benchmark_RELEASE itself, or its dataset folder
    split:    "train" or "val", or the path of a split file of your own
    skip_bad: drop ids whose image or label is missing (noted in `skipped`) instead of raising
    """

    def __init__(self, root, split="train", skip_bad=False):
        import_loadmat()   # fail now, not at the first image, when SciPy is missing
        self.sbd_dir = find_sbd_root(root)
        split = self._set_split_and_classes(split, skip_bad)
        split_path = split if split.endswith(".txt") else os.path.join(self.sbd_dir, f"{split}.txt")
        self.ids, self.skipped = present_ids(read_split(split_path), split_path, self._files, skip_bad)
        self.name = f"SBD {os.path.basename(split) if split.endswith('.txt') else split} ({count(len(self.ids), 'image')})"

    def _image_path(self, sample_id):
        return os.path.join(self.sbd_dir, "img", f"{sample_id}.jpg")

    def _label_path(self, sample_id):
        return os.path.join(self.sbd_dir, "cls", f"{sample_id}.mat")

    @staticmethod
    def _read_label(path):
        label = read_sbd_label(path)
        if label.dtype.kind == "f" and not numpy.all(numpy.isfinite(label) & (label == numpy.round(label))):
            raise DataError(path, "GTcls.Segmentation holds non-integer values")
        return label

    def __repr__(self):
        return f"SBDSegmentation({self.sbd_dir!r}, split={self.split!r}): {len(self)} images"


def seg11valid_ids(voc_root, sbd_root, voc2011_val=None):
    """The reference FCN's validation ids: VOC 2011 segmentation val minus SBD train, in VOC's order.

    voc2011_val: VOC 2011's ImageSets/Segmentation/val.txt. When not given it is
        looked for beside VOC2012 (VOCdevkit/VOC2011/...), and failing that VOC 2012's
        val.txt is used instead.

    Why VOC 2011's list matters: VOC 2012 val (1449 ids) contains all of VOC 2011
    val (1112 ids) plus images added in 2012, and the added ones cannot be told
    apart by their ids: every VOC 2012 id starts with a year from 2007 to 2011,
    so filtering by "year <= 2011" removes nothing. Without VOC 2011's list the
    result is VOC 2012 val minus SBD train, a superset of seg11valid (still
    disjoint from SBD train, so still a fair validation set; just not the exact
    736 images of the paper's seg11valid). seg11valid_note says so to the user.
    """
    voc_dir = find_voc_root(voc_root)
    if voc2011_val is None:
        beside = voc2011_val_path(voc_dir)
        voc2011_val = beside if os.path.isfile(beside) else None
    val_path = voc2011_val or os.path.join(voc_dir, "ImageSets", "Segmentation", "val.txt")
    train_path = os.path.join(find_sbd_root(sbd_root), "train.txt")
    sbd_train = set(read_split(train_path))
    ids = [sample_id for sample_id in read_split(val_path) if sample_id not in sbd_train]
    if not ids:
        raise DataError(train_path, f"lists every id of {val_path}: seg11valid, VOC val minus SBD train, is empty "
                                    f"(is it SBD's train.txt, or its train and val together?)")
    return ids


SEG11VALID_SIZE = 736   # the reference's seg11valid.txt: VOC 2011 val (1112) minus SBD train


def voc2011_val_path(voc_dir):
    """Where seg11valid_ids looks for VOC 2011's segmentation val list: beside the VOC2012 folder, as
    VOC 2011's tar unpacks it (VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt)."""
    return os.path.join(os.path.dirname(voc_dir), "VOC2011", "ImageSets", "Segmentation", "val.txt")


def seg11valid_note(dataset):
    """For a seg11valid dataset built without VOC 2011's list: one line saying that it is VOC 2012 val
    minus SBD train instead, how many images, and where the list goes for the reference's 736; else
    None. (Its scores are not the paper's seg11valid scores, and nothing else would tell.)"""
    where = voc2011_val_path(dataset.voc_dir)
    if os.path.isfile(where):
        return None
    return (f"note: seg11valid here is VOC 2012 val minus SBD train ({count(len(dataset), 'image')}), not the "
            f"reference's {SEG11VALID_SIZE} (VOC 2011 val minus SBD train): VOC 2011's list is not at {where}; put "
            f"VOC 2011's ImageSets/Segmentation/val.txt there to validate on those")
