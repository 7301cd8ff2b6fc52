"""Your own data: images in one folder, masks in another, paired by file name.

    images/0001.jpg   masks/0001.png
    images/0002.png   masks/0002.png
    images/notes.txt                     (not an image: ignored)

An image and its mask share a stem (the name without extension). Images may be
.png, .jpg, .jpeg, .bmp, .tif, .tiff or .webp in any case; masks too (PNG is the one to
use: JPEG compression changes label values). Both are read as a viewer shows them: a
file with an EXIF orientation is turned as it says (images.open_image). Files in the
masks folder without an image are left out (listed in `dataset.masks_without_image`);
an image without a mask is an error (or, with skip_bad=True, dropped and listed in
`dataset.skipped`).

How a mask says which class a pixel is (mask_format):

    "index"    a single-channel (L) or palette (P) PNG whose values are the class
               indices (palette PNGs, as in VOC, store the index, not the colour); 16-bit
               and float (TIFF) masks too, when their values are whole numbers in 0..255;
               an alpha channel (LA, PA) is dropped, as is that of an RGBA mask of R = G = B
    "channel"  an RGB mask whose class id is one channel (mask_channel; 0 = red,
               the driving simulator's convention: CameraSeg images, 13 classes)
    "color"    an RGB mask painted with one colour per class, decoded with a
               colour table (load_color_table)

The colour-table JSON file is either a list of classes in index order

    {"classes": [{"name": "background", "color": [0, 0, 0]},
                 {"name": "road", "color": [128, 64, 128]},
                 {"name": "void", "color": [224, 224, 192]}]}

or an object from name to colour, also in index order

    {"background": [0, 0, 0], "road": [128, 64, 128]}

A class named "void" or "ignore" is not a class: its colour becomes 255, the
value the loss and the metrics skip. Class names may also come from a JSON
list (load_class_names) or from the command line; otherwise they come from the
colour table, or are numbered after a scan of the masks for the largest value.

Label values that are not a class (and not 255) are errors naming the mask and
the value. A class_map (fcnlite.data.classmap) first turns source values into
the classes to train; then n_classes and class_names are the map's.

Missing folders, empty folders and images without masks are found when the
dataset is built; unreadable files, size mismatches and bad values when load(i)
reads them (the programs check the values before training: scan_masks). All are
DataError: "<file>: <what is wrong>".
"""
import hashlib
import json
import os
from collections import namedtuple

import numpy

from .classes import IGNORE_INDEX as IGNORE, is_ignore_name, looks_like_ignore
from .classmap import parse_class_map
from ..errors import count, os_reason
from .errors import DataError
from .images import (WIDE_GREY_MODES, check_label_values, open_image, read_image, read_lines, read_split,
                     turned_note)

GREY_MODES = ("L", "1") + WIDE_GREY_MODES   # Pillow's single-channel modes: a mask's one channel is its label
ALPHA_MODES = ("LA", "PA")   # grey and palette with an alpha channel (PNG's grey+alpha; TIFF's palette+alpha)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
LISTED_EXTENSIONS = ", ".join(IMAGE_EXTENSIONS)
MASK_FORMATS = ("index", "channel", "color")
MAX_CLASSES = IGNORE   # classes are label values 0..254 (8 bits; 255 means ignore)

ColorTable = namedtuple("ColorTable", ["names", "colors", "values"])
ColorTable.__doc__ = """A decoded colour table: class `names` in index order; `colors` (n, 3) uint8;
`values` (n,) uint8, the label each colour becomes (its class index, or 255 for void)."""


# ---- small files: class names, colour tables; splitting ids -------------------------------------

CLASS_NAMES_FORM = ('class names must be a JSON list of strings, e.g. ["background", "road"], or a .txt file '
                    'of one name per line')
COLOR_TABLE_FORM = ('a colour table is JSON: {"background": [0, 0, 0], "road": [128, 64, 128], ...} (name: [r, g, b], '
                    'in class order) or {"classes": [{"name": ..., "color": [r, g, b]}, ...]}')


def _read_json(path, expected):
    """The JSON in `path`; DataError for a file that cannot be read or is not JSON, saying the form
    `expected` (a CSV, such as CamVid's class_dict.csv, is not read as one)."""
    def unique_keys(pairs):   # json would keep the last of two equal keys, and drop the other unsaid
        repeated = repeated_name([key for key, _ in pairs])
        if repeated is not None:
            raise DataError(path, f"key {repeated!r} is given twice: JSON keeps only one of them")
        return dict(pairs)
    try:
        with open(path, encoding="utf-8-sig") as file:   # -sig: a byte-order mark, as some editors write, is fine
            return json.load(file, object_pairs_hook=unique_keys)
    except OSError as error:
        raise DataError(path, f"cannot read ({os_reason(error)})") from None
    except json.JSONDecodeError as error:
        raise DataError(path, f"is not valid JSON ({error.msg} at line {error.lineno}): {expected}") from None
    except UnicodeDecodeError:
        raise DataError(path, "is not UTF-8 text: save it as UTF-8") from None


def unnamed_classes(n_classes):
    """The names classes get where nothing names them: class0, class1, ..."""
    return [f"class{index}" for index in range(n_classes)]


def repeated_name(names):
    """The first name (in sorted order) that `names` gives twice, or None."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    return repeated[0] if repeated else None


def load_class_names(path):
    """Class names, index = class id: a JSON list (["background", "road"]), or, in a .txt file, one name
    per line (as annotation tools such as CVAT write them; blank lines and '#' comments skipped)."""
    if str(path).lower().endswith(".txt"):
        names = _names_from_lines(read_lines(path, "class-name file"), path)
    else:
        names = _read_json(path, CLASS_NAMES_FORM)
        if isinstance(names, dict) and "classes" in names:
            names = names["classes"]
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise DataError(path, CLASS_NAMES_FORM)
    check_class_names(names, path)
    return names


def _names_from_lines(lines, path):
    names = [line.split("#")[0].strip() for line in lines]
    names = [name for name in names if name]   # a blank line separates, as in VOC's lists: it names no class
    if not names:
        raise DataError(path, "class-name file lists no class names")
    return names


def check_class_names(names, path):
    """DataError naming `path` where a class has no name or another's, or there are more than a label map holds."""
    empty = [index for index, name in enumerate(names) if not name.strip()]
    if empty:
        raise DataError(path, f"class {empty[0]} has an empty name: each class needs a name of its own")
    repeated = repeated_name(names)
    if repeated is not None:
        raise DataError(path, f"class name {repeated!r} is given twice: each class needs a name of its own")
    if len(names) > MAX_CLASSES:
        raise DataError(path, f"names {len(names)} classes, more than an 8-bit label map holds: at most "
                              f"{MAX_CLASSES} (0..{MAX_CLASSES - 1}; {IGNORE} means ignore)")


def _color(value, path, name):
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)):
        raise DataError(path, f"colour of {name!r} must be three integers 0..255, not {value!r}")
    return tuple(value)


def load_color_table(path):
    """Read a colour table (the two JSON forms in the module docstring); returns a ColorTable."""
    table = _read_json(path, COLOR_TABLE_FORM)
    if isinstance(table, dict) and "classes" in table:
        entries = table["classes"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e and "color" in e
                                                    for e in entries):
            raise DataError(path, '"classes" must be a list of {"name": ..., "color": [r, g, b]}')
        pairs = [(str(e["name"]), e["color"]) for e in entries]
    elif isinstance(table, dict):
        pairs = [(str(name), color) for name, color in table.items()]
    else:
        raise DataError(path, COLOR_TABLE_FORM)
    names, colors, values, seen = [], [], [], {}
    for name, color in pairs:
        color = _color(color, path, name)
        if color in seen:
            raise DataError(path, f"colour {list(color)} is given to both {seen[color]!r} and {name!r}")
        seen[color] = name
        colors.append(color)
        if looks_like_ignore(name):
            raise DataError(path, f"class {name!r} reads like 'ignore': name it 'ignore' or 'void' to leave its "
                                  f"colour out of the loss, or give the class another name")
        if is_ignore_name(name):
            values.append(IGNORE)
        else:
            values.append(len(names))
            names.append(name)
    if not names:
        raise DataError(path, "the colour table has no classes")
    check_class_names(names, path)
    return ColorTable(names, numpy.array(colors, dtype=numpy.uint8), numpy.array(values, dtype=numpy.uint8))


def describe_folder(images_dir, n_images):
    return f"folder {images_dir} ({count(n_images, 'image')})"


def split_by_fraction(ids, val_fraction=0.1, seed=0):
    """(train_ids, val_ids): a seeded random val_fraction of ids for validation (at least one of each).

    Each id draws its own number from a hash of (seed, id) (sha256: the same on every machine and
    Python), and the ids of the smallest numbers validate. So a folder that gains or loses an image
    keeps its other images on their side, unless the rounded count of validation images changes,
    which moves one (a draw over positions in the list moved several, putting images already
    trained on into validation). Both lists keep the order of `ids`.
    """
    ids = list(ids)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if len(ids) < 2:
        raise ValueError(f"cannot split {len(ids)} image(s) into training and validation sets")
    n_val = min(max(1, int(round(len(ids) * val_fraction))), len(ids) - 1)

    def draw(id_):
        return hashlib.sha256(f"{seed}/{id_}".encode()).digest()
    chosen = set(sorted(ids, key=draw)[:n_val])
    return [id_ for id_ in ids if id_ not in chosen], [id_ for id_ in ids if id_ in chosen]


# ---- reading one image / one mask -----------------------------------------------------------------

def _open_mask(path):
    # upright, as the images: a mask with an EXIF orientation is read as a viewer shows it too
    return open_image(path, "mask file is missing", "cannot read the mask", upright=True)


def read_index_mask(path):
    """A single-channel or palette mask -> uint8 (H, W) of its stored values; an RGB one whose three
    channels agree (grey, as some tools save it) too."""
    with _open_mask(path) as image:
        if image.mode in ALPHA_MODES:   # the alpha says how the label is drawn, not which class it is
            image = image.getchannel(0)
        if image.mode == "P" or image.mode in GREY_MODES:
            return _index_values(image, path)
        if image.mode in ("RGB", "RGBA"):
            rgb = numpy.asarray(image.convert("RGB"))
            if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                return rgb[..., 0].copy()
        raise DataError(path, f"mask is {image.mode}, not single-channel: for colour masks use the color "
                              f"mask format (--mask-format color; channel when one channel holds the class)")


def _index_values(image, path):
    """The values of a single-channel or palette image as labels, uint8 (H, W); DataError where one
    is not a whole number in 0..255 (wider integers and floats: 16-bit PNG, TIFF masks)."""
    values = numpy.array(image)
    if image.mode not in WIDE_GREY_MODES:   # 8 bits (or 1): every value fits
        return values.astype(numpy.uint8)
    if values.size and (values.min() < 0 or values.max() > 255):
        bad = values.max() if values.max() > 255 else values.min()
        raise DataError(path, f"value {bad:g} does not fit a label (0..255)")
    if image.mode == "F" and not numpy.array_equal(values, numpy.round(values)):
        fraction = values[values != numpy.round(values)][0]
        raise DataError(path, f"value {fraction:g} is not a whole number: a label is a class index")
    return values.astype(numpy.uint8)


def read_channel_mask(path, channel=0):
    """An RGB mask whose class id is channel `channel` -> uint8 (H, W); a grey mask's grey channel."""
    with _open_mask(path) as image:
        if image.mode == "LA":   # grey with an alpha, which is not a label: the grey holds the class id
            image = image.getchannel(0)
        if image.mode in GREY_MODES:   # one channel: it holds the class id
            return _index_values(image, path)
        if image.mode in ("P", "PA"):   # the palette's colours, as for an RGB(A) mask
            image = image.convert("RGBA" if image.mode == "PA" else "RGB")
        bands = image.getbands()
        if channel >= len(bands):
            raise DataError(path, f"mask has {len(bands)} channels, no channel {channel}")
        return numpy.array(image.getchannel(channel), dtype=numpy.uint8)


def read_color_mask(path, color_table):
    """An RGB colour-coded mask -> uint8 (H, W) of color_table.values; unknown colours are errors."""
    with _open_mask(path) as image:
        rgb = numpy.asarray(image.convert("RGB"), dtype=numpy.uint32)
    # one integer per colour, so that a sorted search decodes every pixel at once
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    table_codes = ((color_table.colors[:, 0].astype(numpy.uint32) << 16)
                   | (color_table.colors[:, 1].astype(numpy.uint32) << 8) | color_table.colors[:, 2])
    order = numpy.argsort(table_codes)
    sorted_codes = table_codes[order]
    position = numpy.clip(numpy.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    known = sorted_codes[position] == codes
    if not known.all():
        unknown = codes[~known]
        code = int(unknown[0])
        color = [code >> 16, (code >> 8) & 255, code & 255]
        raise DataError(path, f"colour {color} ({unknown.size} pixels) is not in the colour table")
    return color_table.values[order][position]


# ---- the dataset ----------------------------------------------------------------------------------

def image_files(folder):
    """The names of the image files in `folder` (IMAGE_EXTENSIONS in any case, no hidden files), sorted."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise DataError(folder, f"cannot list the folder ({os_reason(error)})") from None
    return [name for name in sorted(names)
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            and os.path.isfile(os.path.join(folder, name))]


def _list_images(folder, role):
    """{stem: file name} of the image files in `folder`; DataError for a missing folder or a clash."""
    if os.path.isfile(folder):
        raise DataError(folder, f"is a file: the {role}s' folder is wanted here")
    if not os.path.isdir(folder):
        raise DataError(folder, f"{role} folder does not exist")
    found = {}
    for name in image_files(folder):
        stem = os.path.splitext(name)[0]
        if stem in found:   # either could be the one meant: picking one would hide the other
            raise DataError(os.path.join(folder, name), f"two {role}s share the stem {stem!r} "
                                                        f"(the other is {found[stem]}): keep one of them")
        found[stem] = name
    if not found:
        raise DataError(folder, no_images_problem(folder, role, "put their files in one folder (links will do)"))
    return found


def no_images_problem(folder, role, advice):
    """What is wrong with a folder of no image files; where it holds folders (a per-city layout, say),
    that they are not searched, and `advice` on what to do instead."""
    problem = f"no {role} files ({LISTED_EXTENSIONS}) in this folder"
    try:
        subfolders = sorted(name for name in os.listdir(folder)
                            if not name.startswith(".") and os.path.isdir(os.path.join(folder, name)))
    except OSError:
        return problem
    if not subfolders:
        return problem
    return f"{problem}, and its sub-folders ({', '.join(subfolders[:3])}{', ...' if len(subfolders) > 3 else ''}) " \
           f"are not searched: {advice}"


class FolderSegmentation:
    """Images and masks from two folders, paired by stem. See the module docstring.

    images_dir, masks_dir   the two folders
    mask_format             "index", "channel" or "color"
    mask_channel            for "channel": which channel holds the class id (0 = red)
    color_table             for "color": a ColorTable or the path of its JSON file
    class_map               a ClassMap, or its text ("7:1,*:0", names resolved with the
                            source class names), applied to every mask
    ids                     the stems to use (a list, or the path of a split file); default all
    skip_bad                drop images without masks (messages kept in self.skipped)
                            instead of raising; load() still raises DataError for bad files
    class_names             the source classes' names: a list or a JSON file path
    """

    def __init__(self, images_dir, masks_dir, mask_format="index", mask_channel=0, color_table=None,
                 class_map=None, ids=None, skip_bad=False, class_names=None):
        if mask_format not in MASK_FORMATS:
            raise ValueError(f"mask_format must be one of {', '.join(MASK_FORMATS)}, not {mask_format!r}")
        self.images_dir, self.masks_dir = str(images_dir), str(masks_dir)
        self.mask_format, self.mask_channel = mask_format, mask_channel
        self.skip_bad = skip_bad
        self.skipped = []

        self.color_table = None
        if mask_format == "color":
            if color_table is None:
                raise ValueError("mask_format='color' needs a color_table (a JSON file; see load_color_table)")
            self.color_table = color_table if isinstance(color_table, ColorTable) else load_color_table(color_table)

        images = _list_images(self.images_dir, "image")
        masks = _list_images(self.masks_dir, "mask")
        wanted = sorted(images)
        if ids is not None:
            wanted = read_split(ids) if isinstance(ids, (str, os.PathLike)) else [str(i) for i in ids]
        self.ids, self._image_files, self._mask_files = [], {}, {}
        problems = []
        self.without_mask = []   # the ids of images that have no mask (dropped with skip_bad)
        for id_ in wanted:
            if id_ not in images:
                problems.append(DataError(os.path.join(self.images_dir, id_),
                                          f"no image with this name ({LISTED_EXTENSIONS}) for id {id_!r}"))
            elif id_ not in masks:
                self.without_mask.append(id_)
                problems.append(DataError(os.path.join(self.images_dir, images[id_]),
                                          f"has no mask {id_}.png (or another of {LISTED_EXTENSIONS}) in "
                                          f"{self.masks_dir}"))
            else:
                self.ids.append(id_)
                self._image_files[id_], self._mask_files[id_] = images[id_], masks[id_]
        # masks whose image is missing: left out, and counted (a naming scheme that differs shows up here)
        self.masks_without_image = [masks[id_] for id_ in sorted(set(masks) - set(images))]
        if problems and not skip_bad:
            more = (f" (and {len(problems) - 1} more like it; skipping bad samples, --skip-bad, drops them)"
                    if len(problems) > 1 else "")
            if self.masks_without_image and any("has no mask" in problem.problem for problem in problems):
                more += (f"; {self.masks_dir} holds {count(len(self.masks_without_image), 'mask')} of other names, "
                         f"e.g. {self.masks_without_image[0]}: an image and its mask share a name")
            first = problems[0]
            raise DataError(first.path, first.problem + more)
        self.skipped = [str(problem) for problem in problems]
        if not wanted:
            raise DataError(self.images_dir, "no images selected: the id list is empty")
        if not self.ids:
            raise DataError(self.images_dir, f"no image here has a mask in {self.masks_dir}")

        self.mask_values, self.largest_value_path = None, None   # filled when the masks are scanned
        self.source_class_names = self._source_class_names(class_names)
        if isinstance(class_map, str):
            class_map = parse_class_map(class_map, self.source_class_names)
        self.class_map = class_map
        if class_map is not None:
            self.class_names = list(class_map.class_names)
        else:
            self.class_names = list(self.source_class_names)
        self.n_classes = len(self.class_names)
        self.class_colors = self._class_colors()
        self.name = describe_folder(self.images_dir, len(self.ids))

    def _class_colors(self):
        """Each class's colour in the colour table that codes the masks, for pictures: that of the table's
        class of its name, else of the first class the class map sends to it by name or number (not by
        '*'); None for a class without (drawn in the default palette's colour); None without a table."""
        if self.color_table is None:
            return None
        by_value = {int(value): [int(c) for c in color]
                    for value, color in zip(self.color_table.values, self.color_table.colors) if value != IGNORE}
        by_name = {name.casefold(): by_value[index] for index, name in enumerate(self.color_table.names)}
        colors = [by_name.get(name.casefold()) for name in self.class_names]
        if self.class_map is not None:
            for source, target in sorted(self.class_map.mapping.items()):
                if target != IGNORE and colors[target] is None and source in by_value:
                    colors[target] = by_value[source]
        return colors

    def _source_class_names(self, class_names):
        if isinstance(class_names, (str, os.PathLike)):
            return load_class_names(class_names)
        if class_names is not None:
            return list(class_names)
        if self.color_table is not None:
            return list(self.color_table.names)
        # nothing says how many classes there are: the masks do (one pass over them)
        self.mask_values = self.scan_masks()
        largest = max((value for value in self.mask_values if value != IGNORE), default=0)
        self.largest_value_path = self.mask_values.get(largest, [None])[0]
        return unnamed_classes(largest + 1)

    def scan_masks(self, indices=None):
        """{value: [the masks holding it]}, in value order, over the stored masks `indices` (default: all),
        so that the programs can check the values before any training (a stray value, masks of 0 and 255
        only, a value no class map covers). Masks that cannot be read are left for load(index) to report,
        unless not one of all the masks can be (nothing to train on): then DataError says why."""
        present, unreadable = {}, []
        for index in range(len(self.ids)) if indices is None else indices:
            try:
                raw = self.raw_mask(index)
            except DataError as error:
                unreadable.append(error)
                continue
            for value in numpy.flatnonzero(numpy.bincount(raw.ravel(), minlength=256)):
                present.setdefault(int(value), []).append(self.label_path(index))
        if indices is None and unreadable and len(unreadable) == len(self.ids):
            raise unreadable[0]
        return dict(sorted(present.items()))

    def __len__(self):
        return len(self.ids)

    def mask_files(self):
        """The mask file names (in the masks folder), one per sample."""
        return [self._mask_files[id_] for id_ in self.ids]

    def image_path(self, index):
        return os.path.join(self.images_dir, self._image_files[self.ids[index]])

    def label_path(self, index):
        return os.path.join(self.masks_dir, self._mask_files[self.ids[index]])

    def raw_mask(self, index):
        """Sample `index`'s mask as stored (uint8 (H, W)), before any class map."""
        path = self.label_path(index)
        if self.mask_format == "index":
            return read_index_mask(path)
        if self.mask_format == "channel":
            return read_channel_mask(path, self.mask_channel)
        return read_color_mask(path, self.color_table)

    def load(self, index):
        """(image uint8 (H, W, 3) RGB, label uint8 (H, W) in 0..n_classes-1 or 255)."""
        image = read_image(self.image_path(index), undecodable="cannot read the image")
        label = self.raw_mask(index)
        mask_path = self.label_path(index)
        if label.shape != image.shape[:2]:
            image_path = self.image_path(index)
            raise DataError(mask_path, f"mask is {label.shape[0]}x{label.shape[1]} (HxW) but its image "
                                       f"{image_path} is {image.shape[0]}x{image.shape[1]}"
                                       f"{turned_note(image_path, label.shape)}")
        if self.class_map is not None:
            try:
                label = self.class_map.apply(label)
            except ValueError as error:
                raise DataError(mask_path, str(error)) from None
        else:
            check_label_values(label, self.n_classes, mask_path, count_pixels=True)
        return image, label

    __getitem__ = load

    def __repr__(self):
        return f"FolderSegmentation({self.name})"

