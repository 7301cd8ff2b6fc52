"""Pictures of label maps: colours, palette PNGs, overlays, legends and progress strips.

A label map is an integer array (H, W) of class indices, 255 meaning "void" (VOC's
unlabelled border). A palette is a uint8 array (256, 3): row i is the RGB colour of
index i, so colouring is one indexing operation, palette[labels].

    make_palette(n_classes)                      (256, 3): VOC colours, more hues past 21 classes
    colorize(labels, palette)                    uint8 (H, W, 3)
    save_label_png(labels, path, palette)        8-bit palette PNG (mode "P"): stores the indices
    overlay(image, labels, palette, alpha)       class colours blended over the photo
    legend(class_names, palette, present)        PIL image: swatch + name per class present
    strip(image, label, prediction, palette)     PIL image: photo | ground truth | prediction

NumPy and Pillow only; label maps that live on the GPU are copied to the host first.
"""
import colorsys
import functools
import math

import numpy
from PIL import Image, ImageDraw, ImageFont

from .backend import to_numpy
from .data.classes import IGNORE_INDEX, voc_palette

VOC_COLOURS = 21        # background + the 20 VOC classes keep the devkit's colours in every palette
VOID_NAME = "void"

# layout of legends and strips, in pixels
MARGIN = 4              # around a legend's rows
SWATCH = 12             # side of a legend's colour square
ROW_HEIGHT = 16         # one legend row (the default font is about 11-12 pixels tall)
SWATCH_GAP = 6          # between a swatch and its name
TITLE_HEIGHT = 16       # band above each panel of a strip
PANEL_GAP = 4           # between the panels of a strip
WIDEST_TITLE = 100      # a strip's panel is widened for its title up to this; a longer title is cut short


def make_palette(n_classes):
    """A palette (256, 3) for n_classes classes (at most 255; index 255 is void).

    Up to 21 classes it is the VOC palette (voc_palette(): colours from the bits of the
    index). Past 21, indices 0..20 keep their VOC colours and the others get hues spaced by
    the golden ratio, which keeps consecutive classes far apart on the colour wheel, at
    three levels of brightness. Index 255 stays VOC's void colour (224, 224, 192).
    """
    if not 0 <= n_classes <= IGNORE_INDEX:
        raise ValueError(f"make_palette: {n_classes} classes do not fit an 8-bit label map (0..254; 255 is void)")
    palette = voc_palette()
    golden = (math.sqrt(5) - 1) / 2
    for index in range(VOC_COLOURS, n_classes):
        step = index - VOC_COLOURS
        hue = (step * golden) % 1.0
        saturation = (0.95, 0.65, 0.8)[step % 3]
        value = (0.95, 0.75, 0.55)[(step // 3) % 3]
        palette[index] = [round(255 * channel) for channel in colorsys.hsv_to_rgb(hue, saturation, value)]
    return palette


def palette_for(dataset):
    """The palette a dataset's labels are drawn in: its own (VOC, SBD), or make_palette(n_classes) with
    the colours of its classes where it has them (class_colors: masks coded by a colour table)."""
    palette = getattr(dataset, "palette", None)
    if palette is not None:
        return numpy.asarray(palette, dtype=numpy.uint8)
    return palette_with(dataset.n_classes, getattr(dataset, "class_colors", None))


def palette_with(n_classes, class_colors=None):
    """make_palette(n_classes), class i drawn in class_colors[i] where that is given (not None: a model's
    or a dataset's colours)."""
    palette = make_palette(n_classes)
    for index, color in enumerate(class_colors or ()):
        if color is not None:
            palette[index] = color
    return palette


def class_colors_of(dataset):
    """A dataset's class colours (a colour table's) as a model keeps them, an [r, g, b] per class (the
    palette's where the table gives none), or None where the dataset has none."""
    if getattr(dataset, "class_colors", None) is None:
        return None
    return palette_with(dataset.n_classes, dataset.class_colors)[:dataset.n_classes].tolist()


def _labels(label_map, caller):
    """label_map as a host int64 array (H, W), every value a palette index 0..255."""
    labels = numpy.asarray(to_numpy(label_map))
    if labels.ndim != 2:
        raise ValueError(f"{caller}: a label map is (H, W), got shape {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"{caller}: a label map holds integers, got {labels.dtype}")
    labels = labels.astype(numpy.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(f"{caller}: label value {bad} is not a palette index (0..255)")
    return labels


def _palette(palette, caller):
    palette = numpy.asarray(palette)
    if palette.shape != (256, 3):
        raise ValueError(f"{caller}: a palette is (256, 3) RGB rows, got shape {palette.shape}")
    return palette.astype(numpy.uint8)


def _photo(image, caller):
    """image as uint8 RGB (H, W, 3): PIL images are converted, float arrays rounded and clipped to 0..255."""
    if isinstance(image, Image.Image):
        return numpy.asarray(image.convert("RGB"))
    image = numpy.asarray(to_numpy(image))
    if image.ndim == 2:
        image = numpy.stack([image] * 3, axis=-1)  # grey: the same value in R, G and B
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{caller}: the photo must be RGB (H, W, 3), got shape {image.shape}")
    if image.dtype != numpy.uint8:
        image = numpy.clip(numpy.rint(image), 0, 255).astype(numpy.uint8)
    return image


def colorize(label_map, palette):
    """uint8 (H, W, 3): every pixel drawn in its class's palette colour (void 255 in palette[255])."""
    return _palette(palette, "colorize")[_labels(label_map, "colorize")]


def save_label_png(label_map, path, palette):
    """Write label_map as an 8-bit palette PNG (mode "P", the VOC convention).

    The file stores the class indices themselves; the attached palette only says how
    viewers show them. So Image.open(path) gives back exactly the same values.
    """
    label_picture(label_map, palette, f"save_label_png {path}").save(path, format="PNG")


def label_picture(label_map, palette, caller="label_picture"):
    """label_map (H, W) of class indices as a PIL palette image (mode "P"): the indices, shown in palette's colours."""
    image = Image.fromarray(_labels(label_map, caller).astype(numpy.uint8))  # mode "L"
    image.putpalette(_palette(palette, caller).reshape(-1).tolist())  # "L" + palette becomes "P"
    return image


def overlay(image, label_map, palette, alpha=0.5, background_index=0):
    """uint8 RGB (H, W, 3): class colours blended over the photo.

    out = rint((1 - alpha) * photo + alpha * colour) on every pixel whose label is not
    background_index; background pixels are the photo unchanged. background_index=None
    blends every pixel.
    """
    photo = _photo(image, "overlay")
    labels = _labels(label_map, "overlay")
    if labels.shape != photo.shape[:2]:
        raise ValueError(f"overlay: label map {labels.shape} and photo {photo.shape[:2]} differ in size")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: alpha is {alpha}; it must be in 0..1")
    colours = _palette(palette, "overlay")[labels].astype(numpy.float64)
    blended = numpy.rint((1.0 - alpha) * photo + alpha * colours).astype(numpy.uint8)
    if background_index is None:
        return blended
    return numpy.where((labels == background_index)[..., None], photo, blended)


@functools.lru_cache(maxsize=1)
def _font():
    return ImageFont.load_default()


def _text_width(text):
    return int(math.ceil(_font().getlength(text)))


def _draw_text(draw, left, top, height, text):
    """Draw text in black, centred vertically in the band [top, top + height) (works for bitmap fonts too)."""
    _, text_top, _, text_bottom = _font().getbbox(text)
    draw.text((left, top + (height - (text_bottom - text_top)) // 2 - text_top), text, fill="black", font=_font())


def legend(class_names, palette, present_indices):
    """A PIL RGB image listing a colour swatch and the name of each class present.

    present_indices: class indices in any order, repeats allowed (numpy.unique of a label
    map will do); 255 is listed as "void". Size: width 2*MARGIN + SWATCH + SWATCH_GAP +
    the longest name's width, height 2*MARGIN + ROW_HEIGHT per class.
    """
    palette = _palette(palette, "legend")
    indices = sorted({int(index) for index in numpy.asarray(to_numpy(present_indices)).reshape(-1)})
    names = []
    for index in indices:
        if index == IGNORE_INDEX:
            names.append(VOID_NAME)
        elif 0 <= index < len(class_names):
            names.append(str(class_names[index]))
        else:
            raise ValueError(f"legend: class {index} has no name ({len(class_names)} class names)")
    text_width = max((_text_width(name) for name in names), default=0)
    width = 2 * MARGIN + SWATCH + SWATCH_GAP + text_width
    picture = Image.new("RGB", (width, 2 * MARGIN + ROW_HEIGHT * len(indices)), "white")
    draw = ImageDraw.Draw(picture)
    for row, (index, name) in enumerate(zip(indices, names)):
        top = MARGIN + row * ROW_HEIGHT
        swatch_top = top + (ROW_HEIGHT - SWATCH) // 2
        # a grey outline keeps black (background) and white swatches visible on the white page
        draw.rectangle([MARGIN, swatch_top, MARGIN + SWATCH - 1, swatch_top + SWATCH - 1],
                       fill=tuple(int(c) for c in palette[index]), outline=(128, 128, 128))
        _draw_text(draw, MARGIN + SWATCH + SWATCH_GAP, top, ROW_HEIGHT, name)
    return picture


def strip(image, label, prediction, palette, titles=("image", "ground truth", "prediction"), class_names=None):
    """One PIL RGB image: the photo, the ground truth and the prediction side by side, each titled.

    Size: width 3*C + 2*PANEL_GAP, height TITLE_HEIGHT + H, for an (H, W) image, where each
    column is C = max(W, the widest title up to WIDEST_TITLE) wide (titles that do not fit end in
    "..."). With class_names, a legend of the classes in label and prediction is added on the right.
    Used for the pictures written during training to watch predictions improve.
    """
    photo = _photo(image, "strip")
    label, prediction = _labels(label, "strip"), _labels(prediction, "strip")
    height, width = photo.shape[:2]
    for name, labels in (("label", label), ("prediction", prediction)):
        if labels.shape != (height, width):
            raise ValueError(f"strip: {name} {labels.shape} and photo {(height, width)} differ in size")
    panels = [photo, colorize(label, palette), colorize(prediction, palette)]
    key = None
    if class_names is not None:
        key = legend(class_names, palette, numpy.union1d(label, prediction))
    # small images get columns wide enough for "ground truth", so that titles never run into each other
    column_width = max(width, min(max(_text_width(str(title)) for title in titles) + 4, WIDEST_TITLE))
    total_width = 3 * column_width + 2 * PANEL_GAP + (PANEL_GAP + key.width if key is not None else 0)
    total_height = max(TITLE_HEIGHT + height, key.height if key is not None else 0)
    picture = Image.new("RGB", (total_width, total_height), "white")
    draw = ImageDraw.Draw(picture)
    for column, (panel, title) in enumerate(zip(panels, titles)):
        left = column * (column_width + PANEL_GAP)
        picture.paste(Image.fromarray(panel), (left, TITLE_HEIGHT))
        _draw_text(draw, left + 2, 0, TITLE_HEIGHT, _shortened(str(title), column_width - 4))
    if key is not None:
        picture.paste(key, (3 * column_width + 3 * PANEL_GAP, 0))
    return picture


def _shortened(text, width):
    """text, or as much of it as fits in width pixels followed by "...", or "" where not even that fits."""
    if _text_width(text) <= width:
        return text
    while text and _text_width(text + "...") > width:
        text = text[:-1]
    return text + "..." if text else ""
