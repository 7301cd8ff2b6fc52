"""fcnlite.visualize: label maps drawn in palette colours, stored as palette PNGs, blended over photos."""
import numpy
import pytest
from PIL import Image

from fcnlite import visualize
from fcnlite.data.classes import voc_palette


def hand_palette():
    """A palette whose colours are easy to predict: index i -> (i, 2i mod 256, 255 - i)."""
    indices = numpy.arange(256)
    return numpy.stack([indices, (2 * indices) % 256, 255 - indices], axis=1).astype(numpy.uint8)


def random_labels(rng, shape, n_classes=5, void_fraction=0.1):
    labels = rng.integers(0, n_classes, size=shape)
    labels[rng.random(shape) < void_fraction] = 255
    return labels


def test_colorize_draws_every_pixel_in_its_palette_colour_and_void_in_colour_255():
    labels = numpy.array([[0, 1, 2], [255, 7, 0]])
    expected = numpy.array([[[0, 0, 255], [1, 2, 254], [2, 4, 253]],
                            [[255, 254, 0], [7, 14, 248], [0, 0, 255]]], dtype=numpy.uint8)
    result = visualize.colorize(labels, hand_palette())
    assert result.dtype == numpy.uint8 and result.shape == (2, 3, 3)
    numpy.testing.assert_array_equal(result, expected)


def test_colorize_rejects_values_outside_the_palette():
    with pytest.raises(ValueError, match="label value 256"):
        visualize.colorize(numpy.array([[0, 256]]), hand_palette())


def test_label_png_is_a_palette_image_whose_values_round_trip_exactly(tmp_path):
    labels = random_labels(numpy.random.default_rng(0), (17, 23), n_classes=21)
    palette = visualize.make_palette(21)
    path = tmp_path / "labels.png"
    visualize.save_label_png(labels, path, palette)
    with Image.open(path) as image:
        assert image.mode == "P"
        numpy.testing.assert_array_equal(numpy.asarray(image), labels)
        stored = numpy.asarray(image.getpalette(), dtype=numpy.uint8).reshape(-1, 3)
    numpy.testing.assert_array_equal(stored[:256], palette)


def test_overlay_keeps_background_as_the_photo_and_blends_the_rest_by_alpha():
    rng = numpy.random.default_rng(1)
    photo = rng.integers(0, 256, size=(8, 9, 3), dtype=numpy.uint8)
    labels = random_labels(rng, (8, 9))
    palette = hand_palette()
    alpha = 0.3
    result = visualize.overlay(photo, labels, palette, alpha=alpha)
    background = labels == 0
    assert background.any() and (~background).any()
    numpy.testing.assert_array_equal(result[background], photo[background])
    expected = numpy.rint((1 - alpha) * photo + alpha * palette[labels].astype(numpy.float64)).astype(numpy.uint8)
    numpy.testing.assert_array_equal(result[~background], expected[~background])


def test_overlay_without_a_background_index_blends_every_pixel():
    photo = numpy.full((2, 2, 3), 100, dtype=numpy.uint8)
    result = visualize.overlay(photo, numpy.zeros((2, 2), dtype=int), hand_palette(), alpha=1.0, background_index=None)
    numpy.testing.assert_array_equal(result, numpy.broadcast_to(numpy.array([0, 0, 255], numpy.uint8), (2, 2, 3)))


def test_overlay_rejects_a_label_map_of_another_size():
    with pytest.raises(ValueError, match="differ in size"):
        visualize.overlay(numpy.zeros((4, 4, 3), numpy.uint8), numpy.zeros((4, 5), int), hand_palette())


def test_make_palette_is_voc_up_to_21_classes_and_distinct_beyond():
    numpy.testing.assert_array_equal(visualize.make_palette(21), voc_palette())
    assert tuple(voc_palette()[15]) == (192, 128, 128)  # person
    for n_classes in (40, 150, 255):
        palette = visualize.make_palette(n_classes)
        numpy.testing.assert_array_equal(palette[:21], voc_palette()[:21])
        assert tuple(palette[255]) == (224, 224, 192)  # void stays VOC's
        assert len({tuple(colour) for colour in palette[:n_classes]}) == n_classes
    with pytest.raises(ValueError, match="256 classes"):
        visualize.make_palette(256)


def test_legend_has_one_row_per_class_present_and_room_for_the_longest_name():
    names = ["background", "aeroplane", "a much longer class name"]
    palette = visualize.make_palette(3)
    picture = visualize.legend(names, palette, numpy.array([1, 0, 1, 255]))
    assert picture.mode == "RGB"
    assert picture.height == 2 * visualize.MARGIN + 3 * visualize.ROW_HEIGHT  # background, aeroplane, void
    longer = visualize.legend(names, palette, [2])
    assert longer.height == 2 * visualize.MARGIN + visualize.ROW_HEIGHT
    assert longer.width > picture.width > visualize.SWATCH + visualize.SWATCH_GAP
    swatch = numpy.asarray(picture)[visualize.MARGIN + visualize.ROW_HEIGHT // 2 + visualize.ROW_HEIGHT,
                                    visualize.MARGIN + visualize.SWATCH // 2]
    numpy.testing.assert_array_equal(swatch, palette[1])  # second row: aeroplane's colour


def test_legend_rejects_a_class_without_a_name():
    with pytest.raises(ValueError, match="class 5 has no name"):
        visualize.legend(["background", "cat"], voc_palette(), [5])


def test_strip_puts_image_truth_and_prediction_side_by_side_under_titles():
    rng = numpy.random.default_rng(2)
    height, width = 20, 90   # wider than any title
    photo = rng.integers(0, 256, size=(height, width, 3), dtype=numpy.uint8)
    label, prediction = random_labels(rng, (height, width)), rng.integers(0, 5, size=(height, width))
    palette = voc_palette()
    picture = visualize.strip(photo, label, prediction, palette)
    assert picture.size == (3 * width + 2 * visualize.PANEL_GAP, visualize.TITLE_HEIGHT + height)
    pixels = numpy.asarray(picture)
    top, step = visualize.TITLE_HEIGHT, width + visualize.PANEL_GAP
    numpy.testing.assert_array_equal(pixels[top:, :width], photo)
    numpy.testing.assert_array_equal(pixels[top:, step:step + width], palette[label])
    numpy.testing.assert_array_equal(pixels[top:, 2 * step:2 * step + width], palette[prediction])
    assert (pixels[:top] < 128).any()  # the titles are written


@pytest.mark.parametrize("width, name", [(32, "w09"), (64, "lindau_000000_000019_leftImg8bit")])
def test_strip_titles_of_small_panels_or_long_names_never_run_into_each_other(width, name):
    # at 32 pixels "ground truth" was drawn over "prediction"; a Cityscapes name over "ground truth"
    labels = numpy.zeros((20, width), dtype=int)
    picture = visualize.strip(numpy.full((20, width, 3), 255, numpy.uint8), labels, labels, voc_palette(),
                              titles=(name, "ground truth", "prediction"))
    column = (picture.width - 2 * visualize.PANEL_GAP) // 3
    widest = max(visualize._text_width(title) for title in (name, "ground truth", "prediction"))
    assert column == max(width, min(widest + 4, visualize.WIDEST_TITLE))   # widened for the titles, up to a limit
    ink = (numpy.asarray(picture)[:visualize.TITLE_HEIGHT] < 128).any(axis=(0, 2))
    for index in range(3):   # each title's ink lies within its own column, and every title is there
        left = index * (column + visualize.PANEL_GAP)
        assert ink[left:left + column].any()
        assert not ink[left + column:left + column + visualize.PANEL_GAP].any()
    shown = visualize._shortened(name, column - 4)
    assert shown == name if widest + 4 <= visualize.WIDEST_TITLE else (shown.endswith("...") and
                                                                      name.startswith(shown[:-3]))


def test_strip_with_class_names_adds_a_legend_on_the_right():
    labels = numpy.zeros((10, 12), dtype=int)
    labels[2:5, 3:9] = 2
    names = ["background", "cat", "dog"]
    plain = visualize.strip(numpy.zeros((10, 12, 3), numpy.uint8), labels, labels, voc_palette())
    keyed = visualize.strip(numpy.zeros((10, 12, 3), numpy.uint8), labels, labels, voc_palette(), class_names=names)
    key = visualize.legend(names, voc_palette(), [0, 2])
    assert keyed.width == plain.width + visualize.PANEL_GAP + key.width
    assert keyed.height == max(plain.height, key.height)
