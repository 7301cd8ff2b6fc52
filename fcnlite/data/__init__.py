"""Datasets, preprocessing and augmentation for segmentation.

Every dataset has the same API (see voc.py): `ids`, `len()`, `class_names`,
`n_classes`, `name`, `image_path(i)`, `label_path(i)` and
`load(i) -> (uint8 RGB (H, W, 3), uint8 labels (H, W))`, 255 = void.

    classes.py     VOC class names and colour palette
    images.py      the shared readers: split files, photographs, label value checks
    voc.py         PASCAL VOC 2012 (VOCSegmentation), SkipBad
    sbd.py         SBD, the reference FCN's training set; the seg11valid split
    download.py    resumable, checked download of VOC 2012
    synthetic.py   a small learnable dataset in the VOC layout
    folder.py      your own folders of images and masks (FolderSegmentation)
    classmap.py    which mask values become which classes (parse_class_map)
    road.py        the driving-scene road task, and a generated version of it
    options.py     the programs' data options, made into datasets
    preprocess.py  uint8 RGB <-> the float input a model's weights expect
    transforms.py  resize, flips, random scale and crop (labels never interpolated)
    prefetch.py    prepare the next samples in a background thread
    errors.py      DataError: "<file>: <what is wrong>"
"""
from .classes import IGNORE_INDEX, VOC_CLASSES, voc_palette
from .classmap import ClassMap, parse_class_map
from .download import VOC_MD5, VOC_URL, DownloadError, download_file, download_voc, extract_tar
from .errors import DataError
from .folder import FolderSegmentation
from .images import read_image
from .prefetch import Prefetcher
from .road import ensure_synthetic_road, road_dataset
from .preprocess import TORCHVISION_PREPROCESSING, deprocess, preprocess
from .sbd import SBDSegmentation, seg11valid_ids
from .synthetic import SYNTHETIC_CLASSES, ensure_synthetic_voc, make_synthetic_voc
from .transforms import limit_max_side, random_flip, random_scale_crop, resize
from .voc import SkipBad, VOCSegmentation, find_voc_root

__all__ = [
    "DataError", "IGNORE_INDEX", "VOC_CLASSES", "voc_palette",
    "VOCSegmentation", "SkipBad", "find_voc_root", "read_image",
    "SBDSegmentation", "seg11valid_ids",
    "FolderSegmentation", "ClassMap", "parse_class_map", "road_dataset", "ensure_synthetic_road",
    "download_voc", "download_file", "extract_tar", "DownloadError", "VOC_URL", "VOC_MD5",
    "make_synthetic_voc", "ensure_synthetic_voc", "SYNTHETIC_CLASSES",
    "preprocess", "deprocess", "TORCHVISION_PREPROCESSING",
    "random_flip", "random_scale_crop", "resize", "limit_max_side",
    "Prefetcher",
]
