"""A small synthetic dataset in the exact PASCAL VOC layout, for tests and quick demos.

    ensure_synthetic_voc("data/synthetic")          # made on first use, reused after
    train = VOCSegmentation("data/synthetic", "train")

It is made to be learnable in minutes on a laptop CPU by a small FCN trained
from scratch, while exercising everything the real data does: JPEG photographs
of different sizes, palette PNG labels with VOC's class indices and palette,
a void (255) border around every object, and the three split files.

Each image is a noisy grey gradient (low saturation, so never an object's
colour) with 1 to 3 objects. Four VOC classes appear, each with its own
saturated colour and its own shape:

    aeroplane (1)  red triangle        bus (6)     yellow wide rectangle
    cat (8)        green disc          person (15) blue tall diamond

Objects measure 25-45% of the image's shorter side and may overlap (the later
one is in front). Image sides vary from 64 to 96 pixels. Everything comes
from numpy Generators seeded with (seed, image number), so the same arguments
give the same bytes every time (the PNG and JPEG encoders add no timestamps).
"""
import json
import os
import shutil
import tempfile

import numpy
from PIL import Image

from ..errors import os_reason
from .classes import IGNORE_INDEX, VOC_CLASSES, voc_palette
from .errors import DataError

# class index -> (shape, RGB colour): colours far apart and far from grey
SYNTHETIC_OBJECTS = {
    1: ("triangle", (205, 45, 45)),     # aeroplane
    6: ("rectangle", (225, 190, 30)),   # bus
    8: ("disc", (40, 170, 60)),         # cat
    15: ("diamond", (45, 75, 200)),     # person
}
SYNTHETIC_CLASSES = {0: "background", **{index: VOC_CLASSES[index] for index in SYNTHETIC_OBJECTS}}
FORMAT_VERSION = 1
JPEG_QUALITY = 90


def _shape_mask(shape, rows, cols, center_y, center_x, radius, aspect):
    """Boolean mask of one object: `radius` is half its extent, `aspect` its height / width factor."""
    dy, dx = rows - center_y, cols - center_x
    if shape == "disc":
        return dx ** 2 + dy ** 2 <= radius ** 2
    if shape == "rectangle":   # wider than tall, like a bus
        return (numpy.abs(dx) <= radius) & (numpy.abs(dy) <= radius * aspect)
    if shape == "triangle":    # apex up; the width grows linearly from apex to base
        depth = (dy + radius) / (2 * radius)
        return (depth >= 0) & (depth <= 1) & (numpy.abs(dx) <= depth * radius)
    if shape == "diamond":     # taller than wide, like a person
        return numpy.abs(dx) / (radius * aspect) + numpy.abs(dy) / radius <= 1
    raise ValueError(f"unknown synthetic shape {shape!r}")


def _void_border(label):
    """Mark as void (255) every pixel whose up/down/left/right neighbour has another class: a 2-pixel band."""
    edge = numpy.zeros(label.shape, dtype=bool)
    vertical = label[1:, :] != label[:-1, :]
    horizontal = label[:, 1:] != label[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    bordered = label.copy()
    bordered[edge] = IGNORE_INDEX
    return bordered


def synthetic_sample(seed, number, size=(64, 96)):
    """Image number `number` of the dataset for `seed`: (uint8 RGB (H, W, 3), uint8 label (H, W))."""
    rng = numpy.random.default_rng([seed, number])
    height, width = (int(side) for side in rng.integers(size[0], size[1] + 1, size=2))
    rows, cols = numpy.mgrid[0:height, 0:width].astype(numpy.float64)

    # background: a grey gradient in a random direction, slightly tinted, with noise
    angle = rng.uniform(0, 2 * numpy.pi)
    ramp = (numpy.cos(angle) * cols / width + numpy.sin(angle) * rows / height)
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-9)
    start, stop = rng.uniform(60, 190, size=2)
    tint = rng.uniform(-12, 12, size=3)
    image = (start + (stop - start) * ramp)[..., None] + tint + rng.normal(0, 10, size=(height, width, 3))
    label = numpy.zeros((height, width), dtype=numpy.uint8)

    classes = sorted(SYNTHETIC_OBJECTS)
    shorter = min(height, width)
    for _ in range(int(rng.integers(1, 4))):
        class_index = classes[int(rng.integers(len(classes)))]
        shape, colour = SYNTHETIC_OBJECTS[class_index]
        radius = rng.uniform(0.25, 0.45) * shorter / 2
        center_y = rng.uniform(radius, height - radius)
        center_x = rng.uniform(radius, width - radius)
        mask = _shape_mask(shape, rows, cols, center_y, center_x, radius, aspect=rng.uniform(0.55, 0.8))
        shade = numpy.asarray(colour) + rng.uniform(-15, 15)   # one brightness per object
        image[mask] = shade + rng.normal(0, 8, size=(int(mask.sum()), 3))
        label[mask] = class_index

    image = numpy.clip(numpy.rint(image), 0, 255).astype(numpy.uint8)
    return image, _void_border(label)


def _settings(n_train, n_val, size, seed):
    return {"generator": "fcnlite.data.synthetic", "version": FORMAT_VERSION, "n_train": int(n_train),
            "n_val": int(n_val), "size": [int(size[0]), int(size[1])], "seed": int(seed),
            "classes": {str(index): name for index, name in SYNTHETIC_CLASSES.items()}}


def make_synthetic_voc(root, n_train=200, n_val=50, size=(64, 96), seed=0):
    """Write the dataset under root/VOCdevkit/VOC2012 (files there are overwritten); returns root.

    size: (smallest, largest) side; each image's height and width are drawn from it.
    """
    voc_dir = os.path.join(root, "VOCdevkit", "VOC2012")
    image_dir = os.path.join(voc_dir, "JPEGImages")
    label_dir = os.path.join(voc_dir, "SegmentationClass")
    split_dir = os.path.join(voc_dir, "ImageSets", "Segmentation")
    for folder in (image_dir, label_dir, split_dir):
        os.makedirs(folder, exist_ok=True)
    palette = voc_palette().ravel().tolist()

    ids = [f"synth_{number:05d}" for number in range(n_train + n_val)]
    for number, sample_id in enumerate(ids):
        image, label = synthetic_sample(seed, number, size)
        Image.fromarray(image).save(os.path.join(image_dir, f"{sample_id}.jpg"), quality=JPEG_QUALITY)
        label_png = Image.fromarray(label)
        label_png.putpalette(palette)          # mode L -> P: indices stay, colours become VOC's
        label_png.save(os.path.join(label_dir, f"{sample_id}.png"))

    splits = {"train": ids[:n_train], "val": ids[n_train:], "trainval": ids}
    for split, split_ids in splits.items():
        with open(os.path.join(split_dir, f"{split}.txt"), "w") as file:
            file.write("".join(f"{sample_id}\n" for sample_id in split_ids))
    # written last: its presence marks a complete dataset (and VOCSegmentation names it "synthetic")
    with open(os.path.join(voc_dir, "synthetic.json"), "w") as file:
        json.dump(_settings(n_train, n_val, size, seed), file, indent=1, sort_keys=True)
        file.write("\n")
    return root


def build_then_rename(make, target, staging_in, prefix, finished, root):
    """Build a generated dataset with make(staging), in a temporary folder made in staging_in, and
    rename the folder make returns (within staging) to target once complete: an interrupted build
    never looks like a finished one. Two processes may build at once: where target is taken by
    the time of the rename, finished() says whether by the other's dataset (fine) or not (an
    error). Any OSError (a read-only or full disk) is a DataError naming the --data-root, root."""
    try:
        os.makedirs(staging_in, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=prefix, dir=staging_in)
        try:
            built = make(staging)
            try:
                os.rename(built, target)   # atomic; onto a folder only where that folder is empty
            except OSError:
                if not finished():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise DataError(root, f"cannot write the generated data here ({os_reason(error)}): "
                              f"choose another --data-root") from None


def ensure_synthetic_voc(root, n_train=200, n_val=50, size=(64, 96), seed=0):
    """Make the dataset under root unless it is already there with these settings; returns root.

    It is built in a temporary folder under root and renamed into place when
    complete, so an interrupted build never looks like a finished one.
    """
    voc_dir = os.path.join(root, "VOCdevkit", "VOC2012")
    marker = os.path.join(voc_dir, "synthetic.json")
    wanted = _settings(n_train, n_val, size, seed)
    if not os.path.exists(voc_dir):
        def make(staging):
            make_synthetic_voc(staging, n_train, n_val, size, seed)
            os.makedirs(os.path.join(root, "VOCdevkit"), exist_ok=True)   # the target's folder
            return os.path.join(staging, "VOCdevkit", "VOC2012")

        build_then_rename(make, voc_dir, staging_in=root, prefix=".synthetic-voc-",
                          finished=lambda: os.path.exists(marker), root=root)
    if not os.path.exists(marker):
        raise DataError(voc_dir, "holds a VOC dataset that is not fcnlite's synthetic one; use another folder")
    with open(marker) as file:
        found = json.load(file)
    if found != wanted:
        settings = ", ".join(f"{key}={found.get(key)}" for key in ("n_train", "n_val", "size", "seed"))
        raise DataError(marker, f"synthetic dataset was made with other settings ({settings}); "
                                f"delete {voc_dir} or use another folder")
    return root
