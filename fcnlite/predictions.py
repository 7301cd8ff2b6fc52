"""The files predict.py writes for each image, and the checks that it writes over nothing of the user's.

For photo.jpg: photo_labels.png (the class indices, a palette PNG), photo_overlay.png (the
classes' colours over the photo, with a legend), and with --probabilities photo_probabilities.npy
(classes x H x W, float16) and, for two classes, photo_foreground.png (class 1's probability as
grey). Each is written whole or not at all (io.atomic_write). Each PNG carries a mark: the SHA-256
of its pixels. A later run replaces a file only where that mark still matches, so an earlier
run's outputs are replaced, while a label map corrected by hand, or any other file, is kept.
"""
import hashlib
import os
import sys

import numpy
from PIL import Image

from .errors import UsageError
from .io import TEMPORARY_NAME_EXTRA, atomic_write

# the PNG text chunk that holds the mark
MARK_KEY = "fcnlite-predict-pixels"


def output_stems(paths):
    """The name each image's outputs start with: its stem (photo.jpg -> photo); where stems collide, its
    file name (photo.jpg, photo.png); where those collide too (a/photo.png, b/photo.png), a number after it.
    Names that differ only in case collide: they are one file on macOS's and Windows' file systems."""
    stems = [os.path.splitext(os.path.basename(path))[0].casefold() for path in paths]
    names = [os.path.splitext(os.path.basename(path))[0] if stems.count(stem) == 1 else os.path.basename(path)
             for path, stem in zip(paths, stems)]
    taken, unique = set(), []
    for name in names:
        candidate, number = name, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{name}-{number}"
        taken.add(candidate.casefold())
        unique.append(candidate)
    return unique


def output_names(stem, probabilities):
    """The files predict.py writes for one image, by what they hold (the foreground's for two classes)."""
    names = {"labels": f"{stem}_labels.png", "overlay": f"{stem}_overlay.png"}
    if probabilities:
        names.update(probabilities=f"{stem}_probabilities.npy", foreground=f"{stem}_foreground.png")
    return names


def earlier_outputs(out, stem, written):
    """The files predict.py wrote for `stem` in `out` in an earlier run that this one did not write anew
    (`written`: the paths it wrote): probabilities, which may be another model's, lying beside these
    labels. They are said, not removed: they may be the same model's, kept on purpose."""
    return [path for path in (os.path.join(out, name) for name in output_names(stem, probabilities=True).values())
            if path not in written and written_by_predict(path)]


def check_outputs(out, arguments, paths, stems, probabilities):
    """UsageError, before any image is segmented, unless predict.py writes beside nothing it reads and over
    nothing but its own outputs: --out is no folder of images given and holds no image given; a file
    there under an output's name is one predict.py wrote, unchanged since; every name fits the file system."""
    folder = os.path.realpath(out)
    for argument in arguments:
        if os.path.isdir(argument) and os.path.realpath(argument) == folder:
            raise UsageError(f"--out {out} is also a folder of images to segment: the predictions would be written "
                             f"among the images (and read as images by the next run): choose another --out")
    for path in paths:   # the folder the image is named in, and the one it is in where it is a link
        for held, shown in ((os.path.abspath(path), path), (os.path.realpath(path), os.path.realpath(path))):
            if os.path.realpath(os.path.dirname(held)) == folder:
                raise UsageError(f"--out {out} holds {shown}, an image to segment: the predictions would be "
                                 f"written among the images (and read as images by the next run): choose another "
                                 f"--out")
    longest = longest_file_name(out)
    for path, stem in zip(paths, stems):
        for name in output_names(stem, probabilities).values():
            if len(os.fsencode(name)) + TEMPORARY_NAME_EXTRA > longest:
                raise UsageError(f"{path}: the name of its output {name} is longer than the file system takes "
                                 f"({longest} bytes, a temporary name's {TEMPORARY_NAME_EXTRA} included): rename "
                                 f"the image")
            target = os.path.join(out, name)
            if os.path.isdir(target):
                raise UsageError(f"--out {out}: {name} is there already, as a folder: move it, or choose another "
                                 f"--out")
            if os.path.lexists(target) and not written_by_predict(target):
                raise UsageError(f"--out {out}: {name} is there already, and is no output of predict.py as it "
                                 f"wrote it (changed since, another program's, or written before predict.py marked "
                                 f"its outputs): move it, or choose another --out")


def longest_file_name(folder):
    """The longest file name, in bytes, that folder (or the nearest folder above it that exists) takes."""
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):   # (Windows has no pathconf)
        return 255   # every common file system's
    return longest if longest > 0 else sys.maxsize   # (POSIX: -1 where the file system sets no limit)


def pixel_digest(picture):
    """The SHA-256 of a PIL image's pixels, its mode and size: predict.py's mark."""
    pixels = numpy.asarray(picture)
    return hashlib.sha256(f"{picture.mode} {pixels.shape}".encode() + pixels.tobytes()).hexdigest()


def written_by_predict(path):
    """Whether the file at path is one predict.py wrote and nobody changed since: a PNG whose mark is
    the digest of its pixels, or an array of probabilities (.npy: float16, classes x H x W)."""
    if not os.path.isfile(path):   # a folder, a pipe or a device: not predict's (and not to be read)
        return False
    try:
        if path.endswith(".npy"):
            array = numpy.load(path, mmap_mode="r")
            return array.dtype == numpy.float16 and array.ndim == 3
        with Image.open(path) as picture:
            return picture.format == "PNG" and picture.info.get(MARK_KEY) == pixel_digest(picture)
    except Exception:   # unreadable, or not a picture: not predict's
        return False


def save_marked_png(picture, path):
    """picture (a PIL image) as a PNG at path with predict.py's mark, written whole or not at all (a Ctrl-C
    midway leaves the earlier file)."""
    from PIL.PngImagePlugin import PngInfo
    mark = PngInfo()
    mark.add_text("Software", "fcnlite predict.py")
    mark.add_text(MARK_KEY, pixel_digest(picture))
    atomic_write(path, lambda temporary: picture.save(temporary, format="PNG", pnginfo=mark))


def resized_probabilities(probabilities, size):
    """probabilities (classes, h, w) at the photo's size (H, W): each class's map resized bilinearly,
    where --max-side shrank the photo."""
    height, width = size
    if probabilities.shape[1:] != (height, width):
        probabilities = numpy.stack([numpy.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR))
                                     for plane in probabilities])
    return probabilities


def save_probabilities(probabilities, outputs):
    """outputs["probabilities"] (.npy, float16), and for two classes outputs["foreground"] (class 1's, 0..255);
    returns the paths written."""
    halves = probabilities.astype(numpy.float16)   # (a fifth of the digits, and enough to threshold)

    def write(temporary):
        with open(temporary, "wb") as file:
            numpy.save(file, halves)
    atomic_write(outputs["probabilities"], write, size=halves.nbytes)
    if len(probabilities) != 2:
        return {outputs["probabilities"]}
    grey = numpy.clip(numpy.rint(probabilities[1] * 255), 0, 255).astype(numpy.uint8)
    save_marked_png(Image.fromarray(grey), outputs["foreground"])
    return {outputs["probabilities"], outputs["foreground"]}
