"""Folder datasets: pairing by stem, the three mask formats, and errors that name the file."""
import json
import os

import numpy
import pytest
from PIL import Image

from fcnlite.data.classmap import DRIVING_CLASSES, class_map_from_names, parse_class_map
from fcnlite.data.errors import DataError
from fcnlite.data.folder import (LISTED_EXTENSIONS, FolderSegmentation, load_class_names, load_color_table,
                                 read_split, split_by_fraction)

HEIGHT, WIDTH = 4, 6


def picture(seed=0, height=HEIGHT, width=WIDTH):
    return numpy.random.default_rng(seed).integers(0, 256, size=(height, width, 3)).astype(numpy.uint8)


def index_mask(values=(0, 1, 2), seed=0, height=HEIGHT, width=WIDTH):
    return numpy.random.default_rng(seed).choice(numpy.array(values, dtype=numpy.uint8), size=(height, width))


def save(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def make_folders(root, stems=("a", "b"), image_ext=".png"):
    """root/images/<stem><image_ext> and root/masks/<stem>.png (L mode, classes 0..2)."""
    images, masks = root / "images", root / "masks"
    for number, stem in enumerate(stems):
        save(images / f"{stem}{image_ext}", picture(number))
        save(masks / f"{stem}.png", index_mask(seed=number), mode="L")
    return str(images), str(masks)


# ---- pairing ---------------------------------------------------------------------------------------

def test_images_and_masks_pair_by_stem_across_extensions_and_extra_files_are_ignored(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture(0))
    save(images / "b.jpg", picture(1))
    save(images / "c.JPEG", picture(2))
    save(images / "d.bmp", picture(3))
    (images / "notes.txt").write_text("not an image")
    save(masks / "a.png", index_mask(seed=0), mode="L")
    save(masks / "b.png", index_mask(seed=1), mode="L")
    save(masks / "c.jpg", numpy.full((HEIGHT, WIDTH), 1, numpy.uint8), mode="L")
    save(masks / "d.png", index_mask(seed=3), mode="L")
    save(masks / "extra.png", index_mask(), mode="L")   # a mask without an image: left out, and listed
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    assert dataset.ids == ["a", "b", "c", "d"] and dataset.masks_without_image == ["extra.png"]
    assert len(dataset) == 4 and dataset.n_classes == 3
    assert dataset.image_path(2).endswith("c.JPEG") and dataset.label_path(2).endswith("c.jpg")
    image, label = dataset[1]
    assert image.dtype == numpy.uint8 and image.shape == (HEIGHT, WIDTH, 3)
    assert numpy.array_equal(label, index_mask(seed=1))


def test_tiff_and_webp_images_pair_with_tiff_masks_and_read_back_exactly(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(picture(0)).save(images / "a.tif")
    Image.fromarray(picture(1)).save(images / "b.WEBP", lossless=True)
    Image.fromarray(picture(2)).save(images / "c.tiff")
    save(masks / "a.tif", index_mask(seed=0), mode="L")
    Image.fromarray(index_mask(seed=1).astype(numpy.uint16)).save(masks / "b.tiff")   # 16-bit grey
    save(masks / "c.png", index_mask(seed=2), mode="L")
    dataset = FolderSegmentation(str(images), str(masks), class_names=["background", "road", "car"])
    assert dataset.ids == ["a", "b", "c"]
    for index in range(3):
        image, label = dataset.load(index)
        numpy.testing.assert_array_equal(image, picture(index))
        numpy.testing.assert_array_equal(label, index_mask(seed=index))


@pytest.mark.parametrize("values, problem", [((0.0, 1.0, 2.0), None), ((0.0, 1.5), "value 1.5 is not a whole number"),
                                             ((0.0, -1.0), r"value -1 does not fit a label \(0\.\.255\)"),
                                             ((0.0, 300.0), r"value 300 does not fit a label \(0\.\.255\)")])
def test_a_float_tiff_mask_gives_its_class_indices_or_names_the_value_that_is_not_one(tmp_path, values, problem):
    images, masks = make_folders(tmp_path, stems=("a",))
    os.remove(os.path.join(masks, "a.png"))
    stored = index_mask(values=(0, 1, 2)).astype(numpy.float32) if problem is None else \
        numpy.resize(numpy.array(values, numpy.float32), (HEIGHT, WIDTH))
    Image.fromarray(stored, mode="F").save(os.path.join(masks, "a.tif"))
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    if problem is None:
        numpy.testing.assert_array_equal(dataset.load(0)[1], stored.astype(numpy.uint8))
    else:
        with pytest.raises(DataError, match=problem):
            dataset.load(0)


@pytest.mark.parametrize("dtype", [numpy.uint16, numpy.float32])
def test_a_grey_mask_read_as_channel_masks_gives_its_one_channel(tmp_path, dtype):
    # channel format on a 16-bit or float grey mask: its values, checked, where getchannel would raise
    images, masks = make_folders(tmp_path, stems=("a",))
    os.remove(os.path.join(masks, "a.png"))
    Image.fromarray(index_mask(seed=7).astype(dtype)).save(os.path.join(masks, "a.tif"))
    dataset = FolderSegmentation(images, masks, mask_format="channel", class_names=["background", "road", "car"])
    numpy.testing.assert_array_equal(dataset.load(0)[1], index_mask(seed=7))


@pytest.mark.parametrize("extension", [".bmp", ".jpg"])
def test_two_masks_with_one_stem_are_an_error_naming_both(tmp_path, extension):
    images, masks = make_folders(tmp_path, stems=("a",))
    save(os.path.join(masks, "a" + extension), index_mask(), mode="L")
    with pytest.raises(DataError) as caught:
        FolderSegmentation(images, masks)
    assert str(caught.value) == (f"{os.path.join(masks, 'a.png')}: two masks share the stem 'a' "
                                 f"(the other is a{extension}): keep one of them")


def test_a_float_tiff_image_of_0_to_1_is_scaled_to_0_to_255_and_other_floats_are_clipped(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a", "b"))
    fraction = numpy.linspace(0, 1, HEIGHT * WIDTH).reshape(HEIGHT, WIDTH).astype(numpy.float32)
    Image.fromarray(fraction, mode="F").save(os.path.join(images, "a.tif"))
    Image.fromarray(fraction * 400 - 100, mode="F").save(os.path.join(images, "b.tif"))
    for stem in ("a", "b"):
        os.remove(os.path.join(images, f"{stem}.png"))
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    scaled, clipped = dataset.load(0)[0], dataset.load(1)[0]
    assert scaled.shape == (HEIGHT, WIDTH, 3) and (scaled[..., 0] == scaled[..., 2]).all()
    numpy.testing.assert_array_equal(scaled[..., 0], (fraction.astype(numpy.float64) * 255).astype(numpy.uint8))
    numpy.testing.assert_array_equal(clipped[..., 0], numpy.clip(fraction * 400 - 100, 0, 255).astype(numpy.uint8))


def test_a_float_image_holding_nan_is_refused_naming_it(tmp_path):
    from fcnlite.data.images import read_image
    values = numpy.zeros((HEIGHT, WIDTH), numpy.float32)
    values[0, :3] = numpy.nan
    path = os.path.join(tmp_path, "nan.tif")
    Image.fromarray(values, mode="F").save(path)
    with pytest.raises(DataError) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: 3 pixels are NaN or infinite: not an image"


def test_an_image_without_a_mask_is_an_error_naming_the_image(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a", "b"))
    save(os.path.join(images, "lonely.jpg"), picture())
    with pytest.raises(DataError) as caught:
        FolderSegmentation(images, masks)
    assert str(caught.value).startswith(os.path.join(images, "lonely.jpg") + ": has no mask lonely.png")


def folders_named_apart(root, count):
    """root/images/img_<n>.jpg and root/masks/mask_<n>.png: pairs whose names do not match."""
    images, masks = root / "images", root / "masks"
    for number in range(count):
        save(images / f"img_{number}.jpg", picture(number))
        save(masks / f"mask_{number}.png", index_mask(seed=number), mode="L")
    return images, masks


def test_masks_named_otherwise_than_their_images_are_pointed_at(tmp_path):
    images, masks = folders_named_apart(tmp_path, 3)
    with pytest.raises(DataError) as caught:
        FolderSegmentation(images, masks)
    assert str(caught.value) == (f"{images / 'img_0.jpg'}: has no mask img_0.png (or another of {LISTED_EXTENSIONS}) "
                                 f"in {masks} (and 2 more like it; skipping bad samples, --skip-bad, drops them); "
                                 f"{masks} holds 3 masks of other names, e.g. mask_0.png: an image and its mask "
                                 f"share a name")


def test_skip_bad_drops_images_without_masks_and_counts_them(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a", "b"))
    save(os.path.join(images, "lonely.jpg"), picture())
    save(os.path.join(images, "alone.png"), picture())
    dataset = FolderSegmentation(images, masks, skip_bad=True)
    assert dataset.ids == ["a", "b"]
    assert len(dataset.skipped) == 2
    assert "alone.png" in dataset.skipped[0] and "lonely.jpg" in dataset.skipped[1]


def test_skip_bad_that_would_drop_every_image_is_an_error_not_an_empty_dataset(tmp_path):
    # an empty dataset would count its classes from no mask at all, and train on nothing
    images, masks = folders_named_apart(tmp_path, 2)
    with pytest.raises(DataError) as caught:
        FolderSegmentation(images, masks, skip_bad=True)
    assert str(caught.value) == f"{images}: no image here has a mask in {masks}"


def test_an_empty_list_of_ids_is_an_error_saying_so(tmp_path):
    images, masks = make_folders(tmp_path)
    with pytest.raises(DataError) as caught:
        FolderSegmentation(images, masks, ids=[])
    assert str(caught.value) == f"{images}: no images selected: the id list is empty"


def test_two_images_with_one_stem_are_an_error(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a",))
    save(os.path.join(images, "a.jpg"), picture())
    with pytest.raises(DataError, match=r"two images share the stem 'a'"):
        FolderSegmentation(images, masks)


def test_ids_select_images_from_a_list_or_a_split_file(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a", "b", "c"))
    assert FolderSegmentation(images, masks, ids=["c", "a"]).ids == ["c", "a"]
    split = tmp_path / "val.txt"
    split.write_text("b\n\n# a comment\nc\n")
    assert read_split(split) == ["b", "c"]
    assert FolderSegmentation(images, masks, ids=str(split)).ids == ["b", "c"]
    with pytest.raises(DataError, match=r"images/zz: no image with this name"):
        FolderSegmentation(images, masks, ids=["a", "zz"])


def test_an_id_listed_twice_in_a_split_file_is_refused(tmp_path):
    split = tmp_path / "val.txt"
    split.write_text("b\nc\nb\n")
    with pytest.raises(DataError) as caught:
        read_split(split)
    assert str(caught.value) == f"{split}: id 'b' is listed twice: each image goes in a split once"


def test_split_by_fraction_is_deterministic_and_disjoint():
    ids = [f"{number:04d}" for number in range(50)]
    train, val = split_by_fraction(ids, 0.2, seed=3)
    assert (train, val) == split_by_fraction(ids, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    assert sorted(train + val) == ids and not set(train) & set(val)
    assert split_by_fraction(ids, 0.2, seed=4)[1] != val
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_fraction(ids, 1.5)


def test_a_folder_that_gains_or_loses_an_image_keeps_the_others_on_their_side_of_the_split():
    ids = [f"im{number:03d}" for number in range(100)]
    train, val = split_by_fraction(ids, 0.1)
    fewer_train, fewer_val = split_by_fraction([id_ for id_ in ids if id_ != train[0]], 0.1)
    assert fewer_val == val   # a training image gone: validation as it was (10 of 99 still round to 10)
    _, more_val = split_by_fraction(ids + ["im100"], 0.1)
    assert set(more_val) <= set(val) | {"im100"}   # no image trained on before validates now
    names = [f"im{number:03d}" for number in range(200)]
    for count in range(10, 199):   # where the rounded count grows, one image moves, and only one
        before, after = (set(split_by_fraction(names[:n], 0.1)[1]) for n in (count, count + 1))
        assert len(after - before - {names[count]}) <= 1, count


def test_the_split_is_the_same_on_every_machine():   # sha256 of the ids, not Python's salted hash()
    ids = [f"im{number:02d}" for number in range(20)]
    assert split_by_fraction(ids, 0.2, seed=0)[1] == ["im00", "im02", "im11", "im16"]


# ---- mask formats ----------------------------------------------------------------------------------

def test_index_masks_from_palette_pngs_give_the_stored_indices(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    values = index_mask((0, 1, 2, 255))
    palette_mask = Image.fromarray(values, mode="P")
    palette_mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192])
    os.makedirs(masks)
    palette_mask.save(masks / "a.png")
    _, label = FolderSegmentation(images, masks, class_names=["background", "aeroplane", "bicycle"]).load(0)
    assert numpy.array_equal(label, values)   # the indices, not the palette colours


def test_index_masks_without_names_count_classes_from_the_largest_value(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a", "b"))
    dataset = FolderSegmentation(images, masks)
    assert dataset.n_classes == 3
    assert dataset.class_names == ["class0", "class1", "class2"]


def test_class_names_from_a_json_list(tmp_path):
    images, masks = make_folders(tmp_path)
    names_file = tmp_path / "names.json"
    names_file.write_text(json.dumps(["background", "road", "car"]))
    assert load_class_names(names_file) == ["background", "road", "car"]
    assert FolderSegmentation(images, masks, class_names=str(names_file)).class_names == ["background", "road", "car"]
    names_file.write_text(json.dumps({"road": 1}))
    with pytest.raises(DataError, match="names.json: class names must be a JSON list of strings"):
        load_class_names(names_file)


def test_an_rgb_mask_read_as_index_explains_the_other_formats(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    save(masks / "a.png", picture(1))
    dataset = FolderSegmentation(images, masks, class_names=["background", "road"])
    with pytest.raises(DataError, match=r"masks/a.png: mask is RGB, not single-channel: for colour masks use the "
                                        r"color mask format \(--mask-format color; channel when one channel holds"):
        dataset.load(0)
    # grey only where all three channels agree: red and green alike, blue not, is a colour
    yellowish = numpy.dstack([index_mask(), index_mask(), 1 - index_mask((0, 1))])
    save(masks / "a.png", yellowish)
    with pytest.raises(DataError, match=r"masks/a.png: mask is RGB, not single-channel"):
        dataset.load(0)


def test_a_grey_mask_saved_as_rgb_gives_its_values(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    save(masks / "a.png", numpy.repeat(index_mask()[:, :, None], 3, axis=2))   # R = G = B, as some tools save
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    numpy.testing.assert_array_equal(dataset.load(0)[1], index_mask())


@pytest.mark.parametrize("mask_format", ["index", "channel"])
def test_a_grey_mask_with_an_alpha_channel_gives_its_grey_values(tmp_path, mask_format):
    # as an annotation tool exports it: grey labels, drawn where the alpha is 255
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    alpha = numpy.where(index_mask(seed=3) > 0, 255, 0).astype(numpy.uint8)
    save(masks / "a.png", numpy.dstack([index_mask(), alpha]), mode="LA")
    dataset = FolderSegmentation(images, masks, mask_format=mask_format, class_names=["background", "road", "car"])
    numpy.testing.assert_array_equal(dataset.load(0)[1], index_mask())


def test_a_palette_mask_with_an_alpha_channel_gives_its_indices_or_its_colours_channel(tmp_path):
    # Pillow reads a palette TIFF with an extra sample as PA (a PNG cannot hold one)
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    palette = Image.fromarray(index_mask(), mode="P")
    palette.putpalette([0, 0, 0, 128, 64, 128, 0, 0, 142])
    os.makedirs(masks)
    palette.convert("PA").save(masks / "a.tif")
    assert Image.open(masks / "a.tif").mode == "PA"
    names = ["background", "road", "car"]
    numpy.testing.assert_array_equal(FolderSegmentation(images, masks, class_names=names).load(0)[1], index_mask())
    red = FolderSegmentation(images, masks, mask_format="channel", class_names=[f"c{v}" for v in range(129)])
    numpy.testing.assert_array_equal(red.load(0)[1], numpy.array([0, 128, 0], numpy.uint8)[index_mask()])


def test_a_folder_option_given_a_file_says_so(tmp_path):
    images, masks = make_folders(tmp_path)
    with pytest.raises(DataError, match=r"images/a.png: is a file: the images' folder is wanted here$"):
        FolderSegmentation(os.path.join(images, "a.png"), masks)


def test_channel_masks_read_the_class_from_the_red_channel(tmp_path):
    images, masks = tmp_path / "CameraRGB", tmp_path / "CameraSeg"
    save(images / "0001.png", picture())
    classes = index_mask((0, 6, 7, 10))
    noise = picture(5)   # green and blue carry anything: only red counts
    save(masks / "0001.png", numpy.dstack([classes, noise[..., 1], noise[..., 2]]))
    dataset = FolderSegmentation(images, masks, mask_format="channel", class_names=DRIVING_CLASSES)
    assert dataset.n_classes == 13
    assert numpy.array_equal(dataset.load(0)[1], classes)
    road = FolderSegmentation(images, masks, mask_format="channel", class_names=DRIVING_CLASSES,
                              class_map=class_map_from_names(["road"], DRIVING_CLASSES))
    assert road.class_names == ["background", "road"] and road.n_classes == 2
    assert numpy.array_equal(road.load(0)[1], (classes == 7).astype(numpy.uint8))
    alpha = FolderSegmentation(images, masks, mask_format="channel", mask_channel=3, class_names=DRIVING_CLASSES)
    with pytest.raises(DataError) as caught:   # an RGB mask has no alpha to read the class from
        alpha.load(0)
    assert str(caught.value) == f"{masks / '0001.png'}: mask has 3 channels, no channel 3"


def test_a_class_map_given_as_text_resolves_source_names(tmp_path):
    images, masks = tmp_path / "CameraRGB", tmp_path / "CameraSeg"
    save(images / "0001.png", picture())
    classes = index_mask((0, 6, 7))
    save(masks / "0001.png", numpy.dstack([classes, classes * 0, classes * 0]))
    dataset = FolderSegmentation(images, masks, mask_format="channel", class_names=DRIVING_CLASSES,
                                 class_map="road:1,road_line:1,*:0")
    assert dataset.class_names == ["background", "road+road_line"]
    assert numpy.array_equal(dataset.load(0)[1], (classes > 0).astype(numpy.uint8))


COLOR_TABLES = {
    "list": {"classes": [{"name": "background", "color": [0, 0, 0]},
                         {"name": "road", "color": [128, 64, 128]},
                         {"name": "void", "color": [224, 224, 192]},
                         {"name": "car", "color": [0, 0, 142]}]},
    "object": {"background": [0, 0, 0], "road": [128, 64, 128], "void": [224, 224, 192], "car": [0, 0, 142]},
}


@pytest.mark.parametrize("schema", sorted(COLOR_TABLES))
def test_color_masks_decode_through_the_color_table(tmp_path, schema):
    table_file = tmp_path / "colors.json"
    table_file.write_text(json.dumps(COLOR_TABLES[schema]))
    table = load_color_table(table_file)
    assert table.names == ["background", "road", "car"]     # void is not a class
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    codes = index_mask((0, 1, 2, 3))
    colors = numpy.array([[0, 0, 0], [128, 64, 128], [224, 224, 192], [0, 0, 142]], dtype=numpy.uint8)
    save(masks / "a.png", colors[codes])
    dataset = FolderSegmentation(images, masks, mask_format="color", color_table=str(table_file))
    assert dataset.class_names == ["background", "road", "car"]
    expected = numpy.array([0, 1, 255, 2], dtype=numpy.uint8)[codes]
    assert numpy.array_equal(dataset.load(0)[1], expected)


def test_a_colour_missing_from_the_table_is_an_error_naming_mask_and_colour(tmp_path):
    table_file = tmp_path / "colors.json"
    table_file.write_text(json.dumps(COLOR_TABLES["object"]))
    images, masks = tmp_path / "images", tmp_path / "masks"
    save(images / "a.png", picture())
    mask = numpy.zeros((HEIGHT, WIDTH, 3), dtype=numpy.uint8)
    mask[1, 2] = [10, 20, 30]
    save(masks / "a.png", mask)
    dataset = FolderSegmentation(images, masks, mask_format="color", color_table=str(table_file))
    with pytest.raises(DataError, match=r"masks/a.png: colour \[10, 20, 30\] \(1 pixels\) is not in the colour table"):
        dataset.load(0)


@pytest.mark.parametrize("table, message", [
    ({"road": [128, 64]}, "colour of 'road' must be three integers 0..255"),
    ({"road": [1, 2, 3], "lane": [1, 2, 3]}, r"colour \[1, 2, 3\] is given to both 'road' and 'lane'"),
    ([1, 2, 3], "a colour table is"),
    ({"void": [0, 0, 0]}, "the colour table has no classes"),
    ({"classes": [{"name": "red", "color": [1, 0, 0]}, {"name": "red", "color": [2, 0, 0]}]},
     "class name 'red' is given twice: each class needs a name of its own$"),
    ({"road": [1, 2, 3], " ": [4, 5, 6]}, "class 1 has an empty name"),
    ({f"class{index}": [index, 0, 0] for index in range(256)},
     r"names 256 classes, more than an 8-bit label map holds: at most 255 \(0\.\.254; 255 means ignore\)$"),
])
def test_bad_color_tables_are_errors_naming_the_file(tmp_path, table, message):
    table_file = tmp_path / "colors.json"
    table_file.write_text(json.dumps(table))
    with pytest.raises(DataError, match="colors.json: " + message):
        load_color_table(table_file)


def test_a_colour_table_of_255_classes_is_read(tmp_path):
    table_file = tmp_path / "colors.json"
    table_file.write_text(json.dumps({f"class{index}": [index, 0, 0] for index in range(255)}))
    table = load_color_table(table_file)
    assert len(table.names) == 255 and table.values[-1] == 254


def test_a_colour_given_twice_under_one_name_is_refused_not_dropped(tmp_path):
    table_file = tmp_path / "colors.json"
    table_file.write_text('{"background": [0, 0, 0], "red": [200, 0, 0], "red": [255, 0, 0]}')
    with pytest.raises(DataError) as caught:
        load_color_table(table_file)
    assert str(caught.value) == f"{table_file}: key 'red' is given twice: JSON keeps only one of them"


def test_a_color_table_that_is_not_json_is_an_error_saying_the_form_wanted(tmp_path):
    table_file = tmp_path / "class_dict.csv"   # CamVid's table: name,r,g,b
    table_file.write_text("name,r,g,b\nSky,128,128,128\n")
    with pytest.raises(DataError) as caught:
        load_color_table(table_file)
    assert str(caught.value) == (f'{table_file}: is not valid JSON (Expecting value at line 1): a colour table is '
                                 f'JSON: {{"background": [0, 0, 0], "road": [128, 64, 128], ...}} (name: [r, g, b], '
                                 f'in class order) or {{"classes": [{{"name": ..., "color": [r, g, b]}}, ...]}}')


# ---- bad data --------------------------------------------------------------------------------------

def test_a_mask_of_another_size_is_an_error_giving_both_sizes(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a",))
    save(os.path.join(masks, "a.png"), index_mask(height=5, width=6), mode="L")
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    with pytest.raises(DataError) as caught:
        dataset.load(0)
    message = str(caught.value)
    assert message.startswith(os.path.join(masks, "a.png") + ": mask is 5x6 (HxW) but its image")
    assert message.endswith(f"{os.path.join(images, 'a.png')} is 4x6")


def test_a_value_that_is_not_a_class_is_an_error_naming_mask_and_value(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a",))
    bad = index_mask()
    bad[0, 0] = 7
    save(os.path.join(masks, "a.png"), bad, mode="L")
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    with pytest.raises(DataError, match=r"masks/a.png: value 7 is not a class \(0..2\) or 255 \(1 pixels\)"):
        dataset.load(0)


def test_a_value_the_class_map_does_not_map_is_an_error_naming_mask_and_value(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a",))
    dataset = FolderSegmentation(images, masks, class_map=parse_class_map("1:1,0:0"))
    with pytest.raises(DataError, match=r"masks/a.png: value 2 is not in the class map \(1:1,0:0\)"):
        dataset.load(0)


def test_an_unreadable_image_is_an_error_from_load_naming_the_image(tmp_path):
    images, masks = make_folders(tmp_path, stems=("a", "b"))
    with open(os.path.join(images, "b.png"), "wb") as file:
        file.write(b"\x89PNG not really")
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    dataset.load(0)
    with pytest.raises(DataError, match=r"images/b.png: cannot read the image"):
        dataset.load(1)


def test_an_image_without_read_permission_says_so(tmp_path, monkeypatch):
    images, masks = make_folders(tmp_path, stems=("a",))
    locked = os.path.join(images, "a.png")
    open_image = Image.open

    def refuse_locked(path, *args, **kwargs):   # what chmod 000 does, for root too
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return open_image(path, *args, **kwargs)
    monkeypatch.setattr(Image, "open", refuse_locked)
    dataset = FolderSegmentation(images, masks, class_names=["background", "road", "car"])
    with pytest.raises(DataError) as caught:
        dataset.load(0)
    assert str(caught.value) == f"{locked}: cannot be read (permission denied)"


@pytest.mark.parametrize("role", ["images", "masks"])
def test_a_folder_without_read_permission_says_so(tmp_path, monkeypatch, role):
    images, masks = make_folders(tmp_path)
    locked = os.path.join(str(tmp_path), role)
    list_folder = os.listdir

    def refuse_locked(path="."):   # what chmod 000 does, for root too
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return list_folder(path)
    monkeypatch.setattr(os, "listdir", refuse_locked)
    with pytest.raises(DataError) as caught:
        FolderSegmentation(images, masks)
    assert str(caught.value) == f"{locked}: cannot list the folder (permission denied)"


def test_an_empty_images_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "images").mkdir()
    _, masks = make_folders(tmp_path / "other")
    with pytest.raises(DataError) as caught:
        FolderSegmentation(tmp_path / "images", masks)
    assert str(caught.value).startswith(f"{tmp_path / 'images'}: no image files")


def test_a_folder_of_sub_folders_says_they_are_not_searched(tmp_path):
    # a per-city layout (images/aachen/..., images/bochum/...): one folder of files is wanted
    make_folders(tmp_path / "images" / "aachen")
    make_folders(tmp_path / "images" / "bochum")
    _, masks = make_folders(tmp_path / "other")
    with pytest.raises(DataError) as caught:
        FolderSegmentation(tmp_path / "images", masks)
    assert str(caught.value) == (f"{tmp_path / 'images'}: no image files ({LISTED_EXTENSIONS}) in this folder, and "
                                 f"its sub-folders (aachen, bochum) are not searched: put their files in one folder "
                                 f"(links will do)")
    from fcnlite.cli import image_paths   # predict.py's folders: each sub-folder may be named
    with pytest.raises(DataError) as caught:
        image_paths([str(tmp_path / "images")])
    assert str(caught.value).endswith("sub-folders (aachen, bochum) are not searched: name the sub-folders themselves")


def test_an_empty_masks_folder_is_an_error_naming_it(tmp_path):
    images, _ = make_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no mask files"):
        FolderSegmentation(images, tmp_path / "empty")


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    _, masks = make_folders(tmp_path)
    with pytest.raises(DataError) as caught:
        FolderSegmentation(tmp_path / "nowhere", masks)
    assert str(caught.value) == f"{tmp_path / 'nowhere'}: image folder does not exist"


def test_class_names_from_a_text_file_of_one_name_per_line(tmp_path):
    names_file = tmp_path / "classes.txt"
    names_file.write_text("# as CVAT writes them\n\nbackground\nroad\n\n# cars and vans\ncar\n\n")
    assert load_class_names(str(names_file)) == ["background", "road", "car"]
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(DataError, match=r"empty.txt: class-name file lists no class names$"):
        load_class_names(str(tmp_path / "empty.txt"))


@pytest.mark.parametrize("text", ['["background", "road", "road"]', "background\nroad\nroad\n"],
                         ids=["json", "txt"])
def test_a_class_name_given_twice_is_refused(tmp_path, text):
    names_file = tmp_path / ("names.json" if text.startswith("[") else "names.txt")
    names_file.write_text(text)
    with pytest.raises(DataError, match=r"class name 'road' is given twice: each class needs a name of its own$"):
        load_class_names(str(names_file))


def test_an_empty_class_name_in_json_is_refused(tmp_path):
    names_file = tmp_path / "names.json"
    names_file.write_text('["background", "", "car"]')
    with pytest.raises(DataError) as caught:
        load_class_names(str(names_file))
    assert str(caught.value) == f"{names_file}: class 1 has an empty name: each class needs a name of its own"
