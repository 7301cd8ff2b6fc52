"""Photos whose camera wrote an EXIF orientation instead of turning the pixels (a phone's portrait
photo is stored sideways): predict and the folder datasets read them as a viewer shows them; VOC
(and SBD, through the same reader) read the stored pixels, which their labels were drawn on."""
import warnings

import numpy
import pytest
from PIL import Image

from fcnlite.data import VOCSegmentation
from fcnlite.data.errors import DataError
from fcnlite.data.folder import FolderSegmentation
from fcnlite.data.images import read_image

STORED = numpy.arange(4 * 6 * 3, dtype=numpy.uint8).reshape(4, 6, 3) * 3   # 4 rows, 6 columns, all distinct

# orientation -> the upright picture, by numpy (the EXIF standard's eight cases)
AS_SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                     # mirrored left to right
    3: lambda a: a[::-1, ::-1],                  # turned 180 degrees
    4: lambda a: a[::-1],                        # mirrored top to bottom
    5: lambda a: numpy.swapaxes(a, 0, 1),        # mirrored along the main diagonal: [i, j] = a[j, i]
    6: lambda a: numpy.rot90(a, k=-1),           # to be turned 90 degrees clockwise
    7: lambda a: numpy.rot90(a, k=2).swapaxes(0, 1),   # along the other diagonal: [i, j] = a[H-1-j, W-1-i]
    8: lambda a: numpy.rot90(a, k=1),            # to be turned 90 degrees counter-clockwise
}


def save_with_orientation(path, array, orientation, mode=None):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array, mode=mode).save(path, exif=exif.tobytes())
    return str(path)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_is_read_as_a_viewer_shows_it(tmp_path, orientation):
    path = save_with_orientation(tmp_path / "photo.png", STORED, orientation)
    numpy.testing.assert_array_equal(read_image(path), AS_SHOWN[orientation](STORED))
    numpy.testing.assert_array_equal(read_image(path, upright=False), STORED)


DAMAGED_EXIF = {   # Pillow warns as it parses the first and third, and raises on the second
    "truncated-entry": (b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00", 1),
    "bad-byte-order": (b"Exif\x00\x00XX*\x00", 1),
    "orientation-6-then-a-tag-past-the-end": (b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x02\x00\x12\x01\x03\x00"
                                              b"\x01\x00\x00\x00\x06\x00\x00\x00\x0e\x01\x02\x00\xff\x00\x00"
                                              b"\x00\x30\x00\x00\x00", 6),
}


@pytest.mark.parametrize("name", DAMAGED_EXIF)
def test_a_damaged_exif_block_gives_what_it_can_without_a_warning(tmp_path, name):
    block, orientation = DAMAGED_EXIF[name]   # the orientation where it can be read; else as stored
    path = tmp_path / "photo.png"
    Image.fromarray(STORED).save(path, exif=block)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        numpy.testing.assert_array_equal(read_image(str(path)), AS_SHOWN[orientation](STORED))


def test_a_tiff_comes_turned_once_and_one_turned_a_quarter_is_refused(tmp_path):
    # Pillow's TIFF decoder turns the pixels itself: turned again, a half turn would undo itself
    path = save_with_orientation(tmp_path / "photo.tif", STORED, 3)
    numpy.testing.assert_array_equal(read_image(path), AS_SHOWN[3](STORED))
    grey = save_with_orientation(tmp_path / "grey.tif", STORED[:, :, 0], 6, mode="L")   # Pillow 13 scrambles it
    with pytest.raises(DataError, match=r"grey\.tif: a TIFF turned a quarter by its EXIF orientation \(6\) "
                                        r"cannot be read reliably: save it turned, without the tag \(or as PNG\)"):
        read_image(grey)


def folders(tmp_path, mask, mask_orientation=1):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    save_with_orientation(tmp_path / "images" / "a.png", STORED, 6)
    save_with_orientation(tmp_path / "masks" / "a.png", mask, mask_orientation, mode="L")
    return FolderSegmentation(str(tmp_path / "images"), str(tmp_path / "masks"), class_names=["rest", "thing"])


def test_folder_data_pairs_a_turned_photo_with_a_mask_drawn_on_it_as_shown(tmp_path):
    mask = numpy.zeros((6, 4), numpy.uint8)   # upright: 6 rows, 4 columns
    mask[0, 0] = 1   # the top-left pixel as shown: stored pixel (3, 0), bottom-left
    image, label = folders(tmp_path, mask).load(0)
    assert image.shape == (6, 4, 3)
    numpy.testing.assert_array_equal(image[0, 0], STORED[3, 0])
    numpy.testing.assert_array_equal(label, mask)


def test_a_mask_with_the_same_tag_is_turned_with_its_image(tmp_path):
    stored_mask = numpy.zeros((4, 6), numpy.uint8)
    stored_mask[3, 0] = 1   # under stored pixel (3, 0), which shows top left
    image, label = folders(tmp_path, stored_mask, mask_orientation=6).load(0)
    expected = numpy.zeros((6, 4), numpy.uint8)
    expected[0, 0] = 1
    numpy.testing.assert_array_equal(label, expected)
    numpy.testing.assert_array_equal(image[0, 0], STORED[3, 0])


def test_a_mask_drawn_on_the_stored_pixels_is_an_error_that_names_the_orientation(tmp_path):
    with pytest.raises(DataError) as error:
        folders(tmp_path, numpy.zeros((4, 6), numpy.uint8)).load(0)
    message = str(error.value)
    assert message.startswith(str(tmp_path / "masks" / "a.png") + ": mask is 4x6 (HxW) but its image ")
    assert message.endswith("is 6x4 as shown; its EXIF orientation (6) turns the stored 4x6 pixels, which the "
                            "mask matches: save the image without the tag, or turn the mask as the tag says")


def test_a_mask_of_neither_size_gets_no_word_on_the_orientation(tmp_path):
    with pytest.raises(DataError) as error:
        folders(tmp_path, numpy.zeros((5, 5), numpy.uint8)).load(0)
    assert str(error.value).endswith("mask is 5x5 (HxW) but its image " + str(tmp_path / "images" / "a.png")
                                     + " is 6x4")


def test_voc_reads_the_stored_pixels_its_labels_were_drawn_on(tmp_path):
    from test_data_voc import make_voc
    voc_dir = make_voc(str(tmp_path), {"2007_000032": (STORED, numpy.zeros((4, 6), numpy.uint8))},
                       {"train": ["2007_000032"]})
    save_with_orientation(f"{voc_dir}/JPEGImages/2007_000032.jpg", STORED, 6)
    image, label = VOCSegmentation(str(tmp_path), "train").load(0)
    assert image.shape == (4, 6, 3) and label.shape == (4, 6)
