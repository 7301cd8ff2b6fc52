"""The synthetic driving scenes: simulator layout, determinism, and labels that hold a road."""
import os

import numpy
import pytest
from PIL import Image

from fcnlite.data.classmap import DRIVING_CLASSES
from fcnlite.data.errors import DataError
from fcnlite.data.road import (DEFAULT_SIZE, ensure_synthetic_road, make_synthetic_road, render_scene,
                               road_dataset)

ROAD = DRIVING_CLASSES.index("road")


def read_bytes(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def test_layout_is_the_simulators_with_the_class_id_in_red(tmp_path):
    make_synthetic_road(tmp_path, n_images=3, size=(48, 64))
    assert sorted(os.listdir(tmp_path / "CameraRGB")) == ["00000.png", "00001.png", "00002.png"]
    assert sorted(os.listdir(tmp_path / "CameraSeg")) == ["00000.png", "00001.png", "00002.png"]
    with Image.open(tmp_path / "CameraRGB" / "00001.png") as image:
        assert image.mode == "RGB" and image.size == (64, 48)
    with Image.open(tmp_path / "CameraSeg" / "00001.png") as mask:
        assert mask.mode == "RGB"
        seg = numpy.asarray(mask)
    assert seg[..., 0].max() < len(DRIVING_CLASSES)
    assert not seg[..., 1].any() and not seg[..., 2].any()


def test_the_same_seed_writes_byte_identical_files(tmp_path):
    make_synthetic_road(tmp_path / "first", n_images=3, size=(48, 64), seed=5)
    make_synthetic_road(tmp_path / "second", n_images=3, size=(48, 64), seed=5)
    for folder in ("CameraRGB", "CameraSeg"):
        assert read_bytes(tmp_path / "first" / folder) == read_bytes(tmp_path / "second" / folder)
    make_synthetic_road(tmp_path / "other", n_images=3, size=(48, 64), seed=6)
    assert read_bytes(tmp_path / "first" / "CameraRGB") != read_bytes(tmp_path / "other" / "CameraRGB")


def test_more_images_leave_the_first_ones_unchanged(tmp_path):
    make_synthetic_road(tmp_path / "few", n_images=2, size=(48, 64))
    make_synthetic_road(tmp_path / "more", n_images=4, size=(48, 64))
    few, more = read_bytes(tmp_path / "few" / "CameraRGB"), read_bytes(tmp_path / "more" / "CameraRGB")
    assert all(more[name] == content for name, content in few.items())


def test_ensure_makes_the_dataset_once_and_then_leaves_it_alone(tmp_path):
    root = tmp_path / "data" / "synthetic-road"
    assert ensure_synthetic_road(root, n_images=2, size=(48, 64)) == str(root)
    marker = root / "CameraRGB" / "mine.txt"
    marker.write_text("kept")
    ensure_synthetic_road(root, n_images=2, size=(48, 64))
    assert marker.read_text() == "kept"
    assert len(os.listdir(root / "CameraSeg")) == 2
    assert os.listdir(tmp_path / "data") == ["synthetic-road"]   # no temporary folder left behind


def test_road_dataset_gives_road_against_the_rest(tmp_path):
    make_synthetic_road(tmp_path, n_images=2, size=(48, 64))
    dataset = road_dataset(tmp_path)
    assert dataset.class_names == ["background", "road"] and dataset.n_classes == 2
    image, label = dataset.load(0)
    assert image.shape == (48, 64, 3) and label.shape == (48, 64)
    assert set(numpy.unique(label)) == {0, 1}
    assert road_dataset(tmp_path, classes=None).n_classes == 13


def test_nearly_every_scene_has_a_road_covering_a_good_part_of_it():
    height, width = DEFAULT_SIZE
    road_fractions, class_counts = [], numpy.zeros(len(DRIVING_CLASSES), dtype=int)
    for index in range(40):
        image, label = render_scene(numpy.random.default_rng([0, index]), height, width)
        assert image.shape == (height, width, 3) and image.dtype == numpy.uint8
        road_fractions.append(float((label == ROAD).mean()))
        class_counts += numpy.bincount(label.ravel(), minlength=len(DRIVING_CLASSES)) > 0
    road_fractions = numpy.array(road_fractions)
    assert (road_fractions > 0.05).mean() >= 0.95
    assert 0.15 < road_fractions.mean() < 0.6     # a large class, but not the whole picture
    for name in ("sidewalk", "road_line", "vehicle", "building", "vegetation"):
        assert class_counts[DRIVING_CLASSES.index(name)] >= 10, name


def test_sidewalks_are_a_grey_close_to_the_road():
    """Colour alone must not find the road: sidewalk and road means differ by little."""
    height, width = DEFAULT_SIZE
    differences = []
    for index in range(20):
        image, label = render_scene(numpy.random.default_rng([0, index]), height, width)
        road = image[label == ROAD].astype(float).mean(axis=0)
        sidewalk = image[label == DRIVING_CLASSES.index("sidewalk")].astype(float).mean(axis=0)
        differences.append(numpy.abs(road - sidewalk).max())
    assert numpy.median(differences) < 50


def test_ensure_refuses_a_folder_holding_something_else(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="folder exists but has no CameraRGB and CameraSeg folders"):
        ensure_synthetic_road(tmp_path, n_images=1, size=(48, 64))
