"""The PASCAL VOC classes and colour palette, kept in one place.

VOC label PNGs are 8-bit palette images: each pixel stores a class index
(0 = background, 1..20 the object classes, 255 = "void", the unlabelled band
around every object that loss and metrics ignore). The palette only decides
how those indices look on screen.
"""
import numpy

# Label value of pixels that are left out of the loss and the metrics (VOC's void border).
IGNORE_INDEX = 255

# The names that make a colour table's colour, or a class map's target, IGNORE_INDEX rather than a class
IGNORE_NAMES = ("ignore", "void")


def is_ignore_name(name):
    return name.strip().lower() in IGNORE_NAMES


def looks_like_ignore(name):
    """'ignored', 'VOID!', '_ignore_': meant as ignore, almost surely, but not one of IGNORE_NAMES; made
    a class, it would train the pixels meant to be left out (no dataset has a class of that name)."""
    letters = "".join(character for character in name.lower() if character.isalpha())
    return not is_ignore_name(name) and letters in IGNORE_NAMES + ("ignored", "voids")

VOC_CLASSES = [
    "background",   # 0
    "aeroplane",    # 1
    "bicycle",      # 2
    "bird",         # 3
    "boat",         # 4
    "bottle",       # 5
    "bus",          # 6
    "car",          # 7
    "cat",          # 8
    "chair",        # 9
    "cow",          # 10
    "diningtable",  # 11
    "dog",          # 12
    "horse",        # 13
    "motorbike",    # 14
    "person",       # 15
    "pottedplant",  # 16
    "sheep",        # 17
    "sofa",         # 18
    "train",        # 19
    "tvmonitor",    # 20
]


def voc_palette():
    """The VOC colour palette: uint8 array (256, 3), row i the RGB colour of label value i.

    The devkit builds it by spreading the bits of the index over the three
    channels, most significant first: bit 0 of i goes to the top bit of red,
    bit 1 to the top bit of green, bit 2 to the top bit of blue, bit 3 to the
    next bit of red, and so on. So 1 = (128, 0, 0), 2 = (0, 128, 0),
    15 (person) = (192, 128, 128) and 255 (void) = (224, 224, 192).
    """
    indices = numpy.arange(256)
    palette = numpy.zeros((256, 3), dtype=numpy.uint8)
    for level in range(8):                  # three bits of the index per level
        bits = indices >> (3 * level)
        for channel in range(3):
            palette[:, channel] |= (((bits >> channel) & 1) << (7 - level)).astype(numpy.uint8)
    return palette
