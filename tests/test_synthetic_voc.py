"""The synthetic dataset: exact VOC layout, only its chosen classes, same bytes for the same seed, made once."""
import filecmp
import json
import os

import numpy
import pytest
from PIL import Image

from fcnlite.data import (DataError, SYNTHETIC_CLASSES, VOCSegmentation, ensure_synthetic_voc, make_synthetic_voc,
                          voc_palette)
from fcnlite.data import synthetic
from fcnlite.data.synthetic import SYNTHETIC_OBJECTS


@pytest.fixture(scope="module")
def default_dataset(tmp_path_factory):
    """The dataset with default settings (200 train + 50 val), made once for this file."""
    root = tmp_path_factory.mktemp("synthetic")
    ensure_synthetic_voc(root)
    return root


def all_files(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


def test_layout_is_exactly_vocs(default_dataset):
    voc_dir = default_dataset / "VOCdevkit" / "VOC2012"
    splits = voc_dir / "ImageSets" / "Segmentation"
    train = (splits / "train.txt").read_text().split()
    val = (splits / "val.txt").read_text().split()
    assert len(train) == 200 and len(val) == 50 and not set(train) & set(val)
    assert (splits / "trainval.txt").read_text().split() == train + val
    for sample_id in train + val:
        assert (voc_dir / "JPEGImages" / f"{sample_id}.jpg").is_file()
        assert (voc_dir / "SegmentationClass" / f"{sample_id}.png").is_file()


def test_files_are_jpegs_and_voc_palette_pngs(default_dataset):
    voc_dir = default_dataset / "VOCdevkit" / "VOC2012"
    sample_id = (voc_dir / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[0]
    with Image.open(voc_dir / "JPEGImages" / f"{sample_id}.jpg") as picture:
        assert picture.format == "JPEG" and picture.mode == "RGB"
    with Image.open(voc_dir / "SegmentationClass" / f"{sample_id}.png") as picture:
        assert picture.format == "PNG" and picture.mode == "P"
        palette = numpy.array(picture.getpalette(), dtype=numpy.uint8).reshape(-1, 3)
    numpy.testing.assert_array_equal(palette, voc_palette())


def test_reads_back_through_vocsegmentation_with_only_the_chosen_classes(default_dataset):
    dataset = VOCSegmentation(default_dataset, "train")
    assert len(dataset) == 200 and "synthetic" in dataset.name
    counts = numpy.zeros(256, dtype=numpy.int64)
    sizes = set()
    for index in range(len(dataset)):
        image, label = dataset.load(index)
        assert image.shape[:2] == label.shape and 64 <= min(label.shape) and max(label.shape) <= 96
        assert (label == 255).any() and (label != 0).sum() > 0     # every image: an object and its void border
        sizes.add(label.shape)
        counts += numpy.bincount(label.ravel(), minlength=256)
    present = set(numpy.nonzero(counts)[0].tolist())
    assert present == set(SYNTHETIC_CLASSES) | {255}
    assert len(sizes) > 50                                          # sizes vary from image to image
    object_share = counts[list(SYNTHETIC_OBJECTS)].sum() / counts.sum()
    assert 0.05 < object_share < 0.5


def test_void_border_surrounds_objects():
    image, label = synthetic.synthetic_sample(seed=0, number=0)
    # no object pixel touches background directly: a 255 band always lies between
    horizontal = numpy.stack([label[:, 1:], label[:, :-1]])
    vertical = numpy.stack([label[1:, :], label[:-1, :]])
    for pair in (horizontal, vertical):
        touching = (pair[0] != pair[1]) & (pair[0] != 255) & (pair[1] != 255)
        assert not touching.any()


def nearest_colour_prediction(image):
    """Classify each pixel by its nearest object colour, or background when no colour is close."""
    colours = numpy.array([colour for _, colour in SYNTHETIC_OBJECTS.values()], dtype=numpy.float64)
    distances = numpy.linalg.norm(image[..., None, :].astype(numpy.float64) - colours, axis=-1)
    classes = numpy.array(list(SYNTHETIC_OBJECTS))
    return numpy.where(distances.min(-1) < 80, classes[distances.argmin(-1)], 0)


def test_content_is_learnable_a_per_pixel_colour_rule_scores_high_mean_iu(default_dataset):
    """The classes are separable by colour alone, so an FCN has an easy signal to find."""
    dataset = VOCSegmentation(default_dataset, "val")
    confusion = numpy.zeros((21, 21), dtype=numpy.int64)
    for index in range(len(dataset)):
        image, label = dataset.load(index)
        valid = label != 255
        prediction = nearest_colour_prediction(image)
        pairs = 21 * label[valid].astype(int) + prediction[valid]     # (true, predicted) as one index
        confusion += numpy.bincount(pairs, minlength=21 * 21).reshape(21, 21)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        iu = numpy.diag(confusion) / (confusion.sum(0) + confusion.sum(1) - numpy.diag(confusion))
    assert numpy.nanmean(iu) > 0.9     # FCN's mean IU: classes absent from both are NaN and left out


def test_same_seed_gives_the_same_bytes(tmp_path):
    make_synthetic_voc(tmp_path / "a", n_train=6, n_val=3, seed=5)
    make_synthetic_voc(tmp_path / "b", n_train=6, n_val=3, seed=5)
    files = all_files(tmp_path / "a")
    assert files == all_files(tmp_path / "b") and len(files) == 2 * 9 + 3 + 1
    _, mismatches, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
    assert mismatches == [] and errors == []
    make_synthetic_voc(tmp_path / "c", n_train=6, n_val=3, seed=6)
    _, mismatches, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "c", files, shallow=False)
    assert len(mismatches) > 2 * 9 - 2    # another seed: other pictures


def test_ensure_makes_it_once(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    assert ensure_synthetic_voc(root, n_train=4, n_val=2) == root
    assert os.listdir(root) == ["VOCdevkit"]          # no staging folder left behind
    monkeypatch.setattr(synthetic, "make_synthetic_voc", lambda *args, **kwargs: pytest.fail("made twice"))
    ensure_synthetic_voc(root, n_train=4, n_val=2)
    assert len(VOCSegmentation(root, "trainval")) == 6


def test_interrupted_creation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    made = []
    real_sample = synthetic.synthetic_sample

    def interrupted(seed, number, size):
        if number == 3:
            raise KeyboardInterrupt
        made.append(number)
        return real_sample(seed, number, size)

    monkeypatch.setattr(synthetic, "synthetic_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_voc(tmp_path, n_train=4, n_val=2)
    assert made == [0, 1, 2]
    assert not (tmp_path / "VOCdevkit" / "VOC2012").exists()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []
    monkeypatch.setattr(synthetic, "synthetic_sample", real_sample)
    ensure_synthetic_voc(tmp_path, n_train=4, n_val=2)
    assert len(VOCSegmentation(tmp_path, "val")) == 2


def test_ensure_refuses_a_dataset_made_with_other_settings(tmp_path):
    ensure_synthetic_voc(tmp_path, n_train=4, n_val=2)
    with pytest.raises(DataError, match="synthetic dataset was made with other settings") as caught:
        ensure_synthetic_voc(tmp_path, n_train=5, n_val=2)
    assert str(caught.value).startswith(str(tmp_path / "VOCdevkit" / "VOC2012" / "synthetic.json"))
    settings = json.loads((tmp_path / "VOCdevkit" / "VOC2012" / "synthetic.json").read_text())
    assert settings["n_train"] == 4 and settings["classes"]["15"] == "person"
