"""Reading the files every dataset shares: split lists, photographs, label checks.

Each reader raises DataError, "<file>: <what is wrong>", for a missing or
undecodable file, so a dataset's load(i) needs no error handling of its own.
"""
import os
import re
import warnings

import numpy
from PIL import Image

from ..errors import first_line, os_reason
from .classes import IGNORE_INDEX
from .errors import DataError

# The exceptions Pillow raises for a file it cannot decode (UnidentifiedImageError
# and truncated files are OSErrors; some broken headers raise the others).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

# Pillow's single-channel modes wider than 8 bits: 32-bit and 16-bit integers, 32-bit floats
WIDE_GREY_MODES = ("I", "I;16", "I;16B", "F")


def read_lines(path, kind):
    """The lines of a small text file (UTF-8), without their line ends; kind names the file in errors."""
    try:
        with open(path, encoding="utf-8-sig") as file:   # -sig: a byte-order mark, as some editors write, is fine
            return [line.rstrip("\n") for line in file]
    except FileNotFoundError:
        raise DataError(path, f"{kind} is missing") from None
    except OSError as error:
        raise DataError(path, f"cannot read the {kind} ({os_reason(error)})") from None
    except UnicodeDecodeError:
        raise DataError(path, f"{kind} is not UTF-8 text: save it as UTF-8") from None


def read_split(path):
    """The ids listed in a split file, one per line (blank lines and '#' comments skipped), as in VOC's
    ImageSets. An id listed twice is refused: its image would count twice."""
    ids = [line.split("#")[0].strip() for line in read_lines(path, "split file")]
    ids = [id_ for id_ in ids if id_]
    if not ids:
        raise DataError(path, "split file lists no ids")
    seen = set()
    for id_ in ids:
        if id_ in seen:
            raise DataError(path, f"id {id_!r} is listed twice: each image goes in a split once")
        seen.add(id_)
    return ids


EXIF_ORIENTATION = 0x0112   # the tag a camera writes instead of turning the pixels (1: as stored)

# orientation -> the transpose that shows the picture as intended (the tag's other seven cases)
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,    # mirrored
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,          # mirrored along the main diagonal
    6: Image.Transpose.ROTATE_270,         # stored a quarter turn anticlockwise: turn it clockwise
    7: Image.Transpose.TRANSVERSE,         # mirrored along the other diagonal
    8: Image.Transpose.ROTATE_90,
}


def exif_orientation(picture):
    """The picture's EXIF orientation, 1 to 8; 1 where it has none, or an EXIF block Pillow cannot parse."""
    try:
        with warnings.catch_warnings():   # Pillow warns of a damaged block, then reads what it can
            warnings.simplefilter("ignore")
            orientation = picture.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:   # a damaged EXIF block is no reason to refuse the pixels: take them as stored
        return 1
    return orientation if orientation in range(1, 9) else 1


def open_image(path, missing, undecodable, upright=False):
    """A PIL image, already decoded (so a truncated file fails here, not later), or DataError.

    upright: turn it as its EXIF orientation says (a phone's portrait photo is stored sideways with
    a tag), so that its pixels are those a viewer or an annotation tool shows. TIFF files come
    turned whatever `upright` says: Pillow's TIFF decoder turns them itself. It gets some of those
    turned a quarter (orientations 5-8) wrong (grey, palette and RGBA ones: Pillow 13), so they are
    refused.

    missing:     the problem to report when the file does not exist ("image file is missing")
    undecodable: the problem to report when Pillow cannot decode it; Pillow's reason follows in brackets
    """
    picture = None
    try:
        picture = Image.open(path)
        orientation = exif_orientation(picture)   # before load(), which for a TIFF turns it and drops the tag
        if picture.format == "TIFF" and orientation >= 5:
            picture.close()
            raise DataError(path, f"a TIFF turned a quarter by its EXIF orientation ({orientation}) cannot be "
                                  f"read reliably: save it turned, without the tag (or as PNG)")
        picture.load()
        if upright and orientation != 1 and picture.format != "TIFF":
            turned = picture.transpose(UPRIGHT[orientation])
            picture.close()
            picture = turned
        return picture
    except FileNotFoundError:
        raise DataError(path, missing) from None
    except PermissionError:   # the file is there: not a decoding problem, so Pillow's words would mislead
        raise DataError(path, "cannot be read (permission denied)") from None
    except Image.DecompressionBombError as error:   # a real image can be this large: say so, not "cannot decode"
        sizes = re.search(r"\((\d+) pixels\) exceeds limit of (\d+) pixels", str(error))
        size = (f"is {int(sizes[1]):,} pixels, more than Pillow opens ({int(sizes[2]):,}, its guard against "
                f"decompression bombs)" if sizes else f"is larger than Pillow opens ({first_line(error)})")
        raise DataError(path, f"{size}: downscale it with an image tool first") from None
    except DECODE_ERRORS as error:
        if picture is not None:
            picture.close()
        raise DataError(path, f"{undecodable} ({first_line(error)})") from None


def read_image(path, undecodable="cannot be decoded as an image", upright=True):
    """An image file as uint8 RGB (H, W, 3); grey (8- or 16-bit) and CMYK files are converted.

    undecodable: the words of the error for a file Pillow cannot decode (the folder
    datasets say "cannot read the image", VOC and SBD the default).
    upright: as a viewer shows it, turned by its EXIF orientation (open_image); VOC and SBD
    read the pixels as stored (upright=False), those their labels were drawn on (their
    images are JPEGs: a TIFF comes turned either way, open_image).
    """
    with open_image(path, "image file is missing", undecodable, upright) as picture:
        if picture.mode in WIDE_GREY_MODES:
            # 16-bit or float grey: convert("RGB") would clip at 255, and round floats of 0..1 to 0 or 1 (an
            # almost black image), so a 16-bit range is rescaled, and floats of 0..1 are scaled to 0..255
            # (brightness as a fraction, as image tools write it); other floats are clipped to 0..255
            values = numpy.asarray(picture, dtype=numpy.float64)
            finite = numpy.isfinite(values)
            if not finite.all():   # clip would make NaN 0, black, without a word
                raise DataError(path, f"{values.size - int(finite.sum())} pixels are NaN or infinite: not an image")
            if picture.mode == "F":
                if values.size and values.min() >= 0 and values.max() <= 1:
                    values = values * 255.0
            elif values.size and values.max() > 255:
                values = values / 257.0
            grey = numpy.clip(values, 0, 255).astype(numpy.uint8)
            return numpy.repeat(grey[:, :, None], 3, axis=2)
        return numpy.asarray(picture.convert("RGB"), dtype=numpy.uint8)


def turned_note(path, shape):
    """Where an EXIF orientation explains why an image read upright is not `shape` (H, W) but its
    stored pixels are: a note saying so for a size-mismatch error; otherwise ''."""
    try:
        with Image.open(path) as picture:
            orientation, (width, height) = exif_orientation(picture), picture.size
    except DECODE_ERRORS:
        return ""
    if orientation == 1 or (height, width) != tuple(shape):
        return ""
    return (f" as shown; its EXIF orientation ({orientation}) turns the stored {height}x{width} pixels, "
            f"which the mask matches: save the image without the tag, or turn the mask as the tag says")


def check_label_values(label, n_classes, path, count_pixels=False):
    """Raise DataError naming (up to five of) the values of `label` that are neither a class (0..n_classes-1) nor 255.

    count_pixels: also say how many pixels hold them (the folder datasets' messages do).
    """
    invalid = ((label < 0) | (label >= n_classes)) & (label != IGNORE_INDEX)
    if not invalid.any():
        return
    values = [int(value) if float(value).is_integer() else float(value)
              for value in numpy.unique(label[invalid])[:5]]
    listed = ", ".join(str(value) for value in values)
    noun = "value" if len(values) == 1 else "values"
    verb = "is not a class" if len(values) == 1 else "are not classes"
    pixels = f" ({int(invalid.sum())} pixels)" if count_pixels else ""
    raise DataError(path, f"{noun} {listed} {verb} (0..{n_classes - 1}) or {IGNORE_INDEX}{pixels}")


def check_label(label, n_classes, path, image_shape=None, image_path=None):
    """Raise DataError unless `label` is 2-D, as large as its image, with values in 0..n_classes-1 or 255."""
    if label.ndim != 2:
        raise DataError(path, f"label has shape {label.shape}; expected a single-channel (H, W) map")
    if image_shape is not None and tuple(label.shape[:2]) != tuple(image_shape[:2]):
        label_h, label_w = label.shape[:2]
        image_h, image_w = image_shape[:2]
        image_name = f"image {os.path.basename(image_path)}" if image_path else "its image"
        raise DataError(path, f"label is {label_w}x{label_h} but {image_name} is {image_w}x{image_h} "
                              f"(width x height)")
    check_label_values(label, n_classes, path)


def find_layout(root, candidates, marker, absent, missing):
    """The first of root/<candidate> that holds the folder `marker`; DataError(root, absent or missing) otherwise.

    Lets a user point at a dataset's parent folder, the dataset itself, or anything in between.
    """
    if not os.path.isdir(root):
        raise DataError(root, absent)
    for candidate in candidates:
        folder = os.path.join(root, candidate)
        if os.path.isdir(os.path.join(folder, marker)):
            return folder if candidate else root
    raise DataError(root, missing)
