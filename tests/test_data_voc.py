"""PASCAL VOC and SBD readers: pixels come back as written, and bad data is named precisely.

Each test builds a tiny dataset in tmp_path in the real layout (palette PNG
labels with 255 borders, JPEG images) and reads it through the public API.
"""
import os
import sys

import numpy
import pytest
from PIL import Image

from fcnlite.data import DataError, SkipBad, VOCSegmentation, VOC_CLASSES, voc_palette
from fcnlite.data.sbd import SBDSegmentation, find_sbd_root, import_loadmat, seg11valid_ids


# ---- building small datasets ------------------------------------------------------------------

def smooth_image(height, width, seed):
    """A smooth RGB picture: JPEG keeps it within a few levels, so read-back can be compared."""
    rng = numpy.random.default_rng(seed)
    rows, cols = numpy.mgrid[0:height, 0:width]
    base = rng.uniform(40, 200, size=3)
    image = base + 0.5 * rows[..., None] + 0.3 * cols[..., None]
    return numpy.clip(image, 0, 255).astype(numpy.uint8)


def bordered_label(height, width, class_index):
    """Background with one rectangle of class_index, and VOC's 255 band around it."""
    label = numpy.zeros((height, width), dtype=numpy.uint8)
    label[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 255
    label[height // 4 + 1: 3 * height // 4 - 1, width // 4 + 1: 3 * width // 4 - 1] = class_index
    return label


def write_label_png(path, label):
    picture = Image.fromarray(label)
    picture.putpalette(voc_palette().ravel().tolist())
    picture.save(path)


def make_voc(root, samples, splits):
    """samples: {id: (image, label)}; splits: {name: [ids]}. Returns the VOC2012 folder."""
    voc_dir = os.path.join(root, "VOCdevkit", "VOC2012")
    for folder in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(voc_dir, folder), exist_ok=True)
    for sample_id, (image, label) in samples.items():
        Image.fromarray(image).save(os.path.join(voc_dir, "JPEGImages", f"{sample_id}.jpg"), quality=95)
        write_label_png(os.path.join(voc_dir, "SegmentationClass", f"{sample_id}.png"), label)
    for split, ids in splits.items():
        with open(os.path.join(voc_dir, "ImageSets", "Segmentation", f"{split}.txt"), "w") as file:
            file.write("".join(f"{sample_id}\n" for sample_id in ids))
    return voc_dir


@pytest.fixture
def voc(tmp_path):
    """A 3-image VOC tree: returns (root, {id: (image, label)})."""
    samples = {
        "2007_000032": (smooth_image(30, 40, 0), bordered_label(30, 40, 1)),
        "2007_000039": (smooth_image(36, 28, 1), bordered_label(36, 28, 15)),
        "2008_000002": (smooth_image(32, 32, 2), bordered_label(32, 32, 20)),
    }
    make_voc(tmp_path, samples, {"train": ["2007_000032", "2007_000039"], "val": ["2008_000002"],
                                 "trainval": list(samples)})
    return tmp_path, samples


# ---- classes and palette ----------------------------------------------------------------------

def test_voc_has_21_classes_from_background_to_tvmonitor():
    assert len(VOC_CLASSES) == 21
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[15] == "person" and VOC_CLASSES[20] == "tvmonitor"


def test_voc_palette_is_the_devkits_bit_interleaving():
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == numpy.uint8
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0]
    assert palette[8].tolist() == [64, 0, 0]
    assert palette[15].tolist() == [192, 128, 128]
    assert palette[20].tolist() == [0, 64, 128]
    assert palette[255].tolist() == [224, 224, 192]
    assert len({tuple(colour) for colour in palette}) == 256


# ---- reading a good dataset -------------------------------------------------------------------

def test_voc_reads_back_labels_exactly_and_images_closely(voc):
    root, samples = voc
    dataset = VOCSegmentation(root, "trainval")
    assert dataset.ids == list(samples) and len(dataset) == 3
    assert dataset.n_classes == 21 and dataset.class_names == VOC_CLASSES
    assert "trainval" in dataset.name and "3 images" in dataset.name
    for index, sample_id in enumerate(dataset.ids):
        image, label = dataset.load(index)
        expected_image, expected_label = samples[sample_id]
        assert image.dtype == numpy.uint8 and image.shape == expected_image.shape
        assert label.dtype == numpy.uint8 and label.shape == expected_label.shape
        numpy.testing.assert_array_equal(label, expected_label)
        assert numpy.abs(image.astype(int) - expected_image).mean() < 3   # JPEG, quality 95
        assert dataset.image_path(index).endswith(os.path.join("JPEGImages", f"{sample_id}.jpg"))
        assert dataset.label_path(index).endswith(os.path.join("SegmentationClass", f"{sample_id}.png"))
    numpy.testing.assert_array_equal(dataset[1][1], dataset.load(1)[1])


def test_voc_splits_list_their_own_ids(voc):
    root, _ = voc
    assert VOCSegmentation(root, "train").ids == ["2007_000032", "2007_000039"]
    assert VOCSegmentation(root, "val").ids == ["2008_000002"]


@pytest.mark.parametrize("level", ["parent", "VOCdevkit", "VOC2012"])
def test_voc_root_may_be_the_parent_vocdevkit_or_voc2012(voc, level):
    root, _ = voc
    folder = {"parent": root, "VOCdevkit": root / "VOCdevkit", "VOC2012": root / "VOCdevkit" / "VOC2012"}[level]
    assert len(VOCSegmentation(folder, "train")) == 2


def test_voc_split_may_be_a_file_of_ones_own(voc, tmp_path):
    root, _ = voc
    own = tmp_path / "mine.txt"
    own.write_text("2008_000002\n\n")
    assert VOCSegmentation(root, str(own)).ids == ["2008_000002"]


def test_voc_reads_greyscale_label_pngs_too(voc):
    root, samples = voc
    dataset = VOCSegmentation(root, "val")
    Image.fromarray(samples["2008_000002"][1]).save(dataset.label_path(0))   # mode L
    numpy.testing.assert_array_equal(dataset.load(0)[1], samples["2008_000002"][1])


# ---- bad data: every error names the file and the problem -------------------------------------

def test_folder_without_voc_says_what_it_expected(tmp_path):
    with pytest.raises(DataError, match="no PASCAL VOC 2012 data found") as caught:
        VOCSegmentation(tmp_path)
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(DataError, match="does not exist"):
        VOCSegmentation(tmp_path / "nowhere")


def test_undecodable_image_is_named(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")
    with open(dataset.image_path(0), "wb") as file:
        file.write(b"this is not a jpeg")
    with pytest.raises(DataError, match="cannot be decoded as an image") as caught:
        dataset.load(0)
    assert str(caught.value).startswith(dataset.image_path(0) + ": ")
    assert "\n" not in str(caught.value)


def test_truncated_jpeg_is_named(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")
    data = open(dataset.image_path(1), "rb").read()
    with open(dataset.image_path(1), "wb") as file:
        file.write(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot be decoded") as caught:
        dataset.load(1)
    assert caught.value.path == dataset.image_path(1)


def test_label_of_another_size_says_both_sizes(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")       # image 0 is 40 wide, 30 tall
    write_label_png(dataset.label_path(0), bordered_label(20, 25, 1))
    with pytest.raises(DataError) as caught:
        dataset.load(0)
    assert str(caught.value) == (f"{dataset.label_path(0)}: label is 25x20 but image 2007_000032.jpg is 40x30 "
                                 f"(width x height)")


def test_label_value_that_is_no_class_is_named(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")
    label = bordered_label(30, 40, 1)
    label[0, 0] = 37
    write_label_png(dataset.label_path(0), label)
    with pytest.raises(DataError) as caught:
        dataset.load(0)
    assert str(caught.value) == f"{dataset.label_path(0)}: value 37 is not a class (0..20) or 255"


def test_several_bad_label_values_are_all_named(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")
    label = bordered_label(30, 40, 1)
    label[0, :3] = [21, 254, 100]
    write_label_png(dataset.label_path(0), label)
    with pytest.raises(DataError, match=r"values 21, 100, 254 are not classes \(0..20\) or 255"):
        dataset.load(0)


def test_colour_label_is_refused_with_its_mode(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")
    Image.new("RGB", (40, 30), (128, 0, 0)).save(dataset.label_path(0))
    with pytest.raises(DataError, match="label is a mode RGB image; expected an 8-bit palette"):
        dataset.load(0)


def test_undecodable_label_is_named(voc):
    root, _ = voc
    dataset = VOCSegmentation(root, "train")
    with open(dataset.label_path(0), "wb") as file:
        file.write(b"\x89PNG garbage")
    with pytest.raises(DataError, match="cannot be decoded as a label image") as caught:
        dataset.load(0)
    assert caught.value.path == dataset.label_path(0)


@pytest.mark.parametrize("folder, extension", [("JPEGImages", "jpg"), ("SegmentationClass", "png")])
def test_listed_id_with_a_missing_file_fails_at_construction(voc, folder, extension):
    root, _ = voc
    missing = root / "VOCdevkit" / "VOC2012" / folder / f"2007_000039.{extension}"
    os.remove(missing)
    with pytest.raises(DataError) as caught:
        VOCSegmentation(root, "train")
    message = str(caught.value)
    assert message.startswith(f"{missing}: file is missing (id 2007_000039 is listed in ")
    assert message.endswith("train.txt)")


def test_missing_split_file_is_named(voc):
    root, _ = voc
    with pytest.raises(DataError, match=r"test\.txt: split file is missing"):
        VOCSegmentation(root, "test")


def test_empty_split_file_is_named(voc):
    root, _ = voc
    (root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt").write_text("\n \n")
    with pytest.raises(DataError, match=r"val\.txt: split file lists no ids"):
        VOCSegmentation(root, "val")


def test_an_id_listed_twice_in_a_split_is_refused_not_counted_twice(voc):
    root, _ = voc
    split = root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    split.write_text("2008_000002\n2007_000039\n2008_000002\n")
    with pytest.raises(DataError) as caught:
        VOCSegmentation(root, "val")
    assert str(caught.value) == f"{split}: id '2008_000002' is listed twice: each image goes in a split once"


# ---- skip_bad and SkipBad ---------------------------------------------------------------------

def test_skip_bad_drops_ids_with_missing_files_and_notes_them(voc):
    root, _ = voc
    os.remove(root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2007_000032.jpg")
    dataset = VOCSegmentation(root, "trainval", skip_bad=True)
    assert dataset.ids == ["2007_000039", "2008_000002"]
    assert len(dataset.skipped) == 1 and "2007_000032.jpg: file is missing" in dataset.skipped[0]


def test_skip_bad_still_fails_when_nothing_is_left(voc):
    root, _ = voc
    os.remove(root / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2008_000002.png")
    with pytest.raises(DataError, match="none of the 1 listed ids has both its image and its label"):
        VOCSegmentation(root, "val", skip_bad=True)


def test_skipbad_returns_none_for_a_bad_sample_and_notes_it_once(voc):
    root, samples = voc
    dataset = VOCSegmentation(root, "trainval", skip_bad=True)
    with open(dataset.image_path(1), "wb") as file:
        file.write(b"broken")
    data = SkipBad(dataset)
    assert len(data) == 3 and data.n_classes == 21 and data.ids == dataset.ids   # the dataset's attributes
    image, label = data.load_or_skip(0)
    numpy.testing.assert_array_equal(label, samples["2007_000032"][1])
    assert data.load_or_skip(1) is None
    assert data.load_or_skip(1) is None
    assert len(data.skipped) == 1 and data.skipped[0].startswith(dataset.image_path(1) + ": cannot be decoded")
    assert data.check_all() == data.skipped and data.bad_indices == {1}
    with pytest.raises(DataError):   # the dataset itself still raises
        dataset.load(1)


def test_skipbad_makes_the_evaluation_and_the_trainer_skip_a_sample_that_cannot_be_read(voc, tmp_path):
    # the docstring's "wrap the dataset in SkipBad to skip those too": the library's own loops ask the dataset's
    # skip_bad, which SkipBad passed on from the dataset (False), and stopped at the broken file
    import fcnlite
    from fcnlite.evaluate import evaluate_dataset
    root, _ = voc
    dataset = VOCSegmentation(root, "trainval")
    with open(dataset.image_path(1), "wb") as file:
        file.write(b"broken")
    model = fcnlite.FCN32s(n_classes=21, width=1 / 16)
    matrix = evaluate_dataset(model, SkipBad(dataset), progress=False)
    assert len(matrix.skipped) == 1 and matrix.skipped[0].startswith(dataset.image_path(1) + ": cannot be decoded")
    reads = []
    load = dataset.load
    dataset.load = lambda index: reads.append(index) or load(index)
    trainer = fcnlite.Trainer(model, fcnlite.SGD(model, lr=1e-10), SkipBad(dataset), None,
                              fcnlite.TrainConfig(out=str(tmp_path / "run"), max_iter=6, progress=False),
                              log=lambda text: None)
    trainer.run()
    assert trainer.iteration == 6 and len(trainer.skipped) == 1
    # three epochs of two good images: the broken file was read in the first alone
    assert trainer.samples_read == 9 and reads.count(1) == 1


# ---- SBD --------------------------------------------------------------------------------------

@pytest.fixture
def scipy_io():
    return pytest.importorskip("scipy.io", reason="SciPy is needed to write and read SBD .mat files")


def make_sbd(root, samples, splits, scipy_io):
    dataset_dir = os.path.join(root, "benchmark_RELEASE", "dataset")
    os.makedirs(os.path.join(dataset_dir, "img"))
    os.makedirs(os.path.join(dataset_dir, "cls"))
    for sample_id, (image, label) in samples.items():
        Image.fromarray(image).save(os.path.join(dataset_dir, "img", f"{sample_id}.jpg"), quality=95)
        # SBD's layout: a struct GTcls with Boundaries, Segmentation, CategoriesPresent
        scipy_io.savemat(os.path.join(dataset_dir, "cls", f"{sample_id}.mat"),
                         {"GTcls": {"Segmentation": label, "Boundaries": numpy.zeros(1),
                                    "CategoriesPresent": numpy.unique(label)}})
    for split, ids in splits.items():
        with open(os.path.join(dataset_dir, f"{split}.txt"), "w") as file:
            file.write("".join(f"{sample_id}\n" for sample_id in ids))
    return dataset_dir


def sbd_label(height, width, class_index):
    label = numpy.zeros((height, width), dtype=numpy.uint8)     # SBD: no void border
    label[2:height - 3, 4:width - 2] = class_index
    return label


def test_sbd_reads_gtcls_segmentation_from_mat_files(tmp_path, scipy_io):
    samples = {"2008_000002": (smooth_image(24, 30, 3), sbd_label(24, 30, 7)),
               "2008_000003": (smooth_image(20, 22, 4), sbd_label(20, 22, 12))}
    make_sbd(tmp_path, samples, {"train": list(samples), "val": ["2008_000003"]}, scipy_io)
    for root in (tmp_path, tmp_path / "benchmark_RELEASE", tmp_path / "benchmark_RELEASE" / "dataset"):
        dataset = SBDSegmentation(root, "train")
        assert dataset.ids == list(samples) and dataset.n_classes == 21 and "SBD train" in dataset.name
    for index, sample_id in enumerate(dataset.ids):
        image, label = dataset.load(index)
        assert label.dtype == numpy.uint8
        numpy.testing.assert_array_equal(label, samples[sample_id][1])
        assert image.shape == samples[sample_id][0].shape
        assert dataset.label_path(index).endswith(os.path.join("cls", f"{sample_id}.mat"))
    assert SBDSegmentation(tmp_path, "val").ids == ["2008_000003"]


def test_sbd_mat_without_gtcls_is_named(tmp_path, scipy_io):
    samples = {"2008_000002": (smooth_image(24, 30, 3), sbd_label(24, 30, 7))}
    dataset_dir = make_sbd(tmp_path, samples, {"train": list(samples)}, scipy_io)
    path = os.path.join(dataset_dir, "cls", "2008_000002.mat")
    scipy_io.savemat(path, {"GTinst": {"Segmentation": samples["2008_000002"][1]}})
    with pytest.raises(DataError) as caught:
        SBDSegmentation(tmp_path).load(0)
    assert str(caught.value) == f"{path}: has no GTcls struct (is it a file from SBD's cls/ folder?)"


def test_sbd_label_checks_size_and_values(tmp_path, scipy_io):
    samples = {"2008_000002": (smooth_image(24, 30, 3), sbd_label(24, 30, 7))}
    dataset_dir = make_sbd(tmp_path, samples, {"train": list(samples)}, scipy_io)
    path = os.path.join(dataset_dir, "cls", "2008_000002.mat")
    scipy_io.savemat(path, {"GTcls": {"Segmentation": sbd_label(10, 30, 7)}})
    with pytest.raises(DataError, match="label is 30x10 but image 2008_000002.jpg is 30x24"):
        SBDSegmentation(tmp_path).load(0)
    scipy_io.savemat(path, {"GTcls": {"Segmentation": sbd_label(24, 30, 40)}})
    with pytest.raises(DataError, match="value 40 is not a class"):
        SBDSegmentation(tmp_path).load(0)


def test_sbd_without_scipy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.io", None)   # makes `from scipy.io import ...` fail
    with pytest.raises(ImportError) as caught:
        import_loadmat()
    assert "pip install scipy" in str(caught.value) and "pip install fcnlite[sbd]" in str(caught.value)


def test_seg11valid_is_voc_val_minus_sbd_train(tmp_path, scipy_io):
    val_ids = ["2007_000033", "2008_000005", "2010_000001", "2011_000002"]
    voc_samples = {sample_id: (smooth_image(16, 16, k), bordered_label(16, 16, 1))
                   for k, sample_id in enumerate(val_ids)}
    make_voc(tmp_path / "voc", voc_samples, {"val": val_ids})
    sbd_samples = {"2008_000005": (smooth_image(16, 16, 9), sbd_label(16, 16, 2))}
    make_sbd(tmp_path / "sbd", sbd_samples, {"train": ["2008_000005", "2009_000001"]}, scipy_io)
    expected = ["2007_000033", "2010_000001", "2011_000002"]
    assert seg11valid_ids(tmp_path / "voc", tmp_path / "sbd") == expected
    dataset = VOCSegmentation(tmp_path / "voc", "seg11valid", sbd_root=tmp_path / "sbd")
    assert dataset.ids == expected and "seg11valid" in dataset.name
    # with VOC 2011's own val list beside VOC2012 it is used instead of VOC 2012's
    voc2011 = tmp_path / "voc" / "VOCdevkit" / "VOC2011" / "ImageSets" / "Segmentation"
    voc2011.mkdir(parents=True)
    (voc2011 / "val.txt").write_text("2007_000033\n2008_000005\n")
    assert seg11valid_ids(tmp_path / "voc", tmp_path / "sbd") == ["2007_000033"]
    # an SBD train.txt that covers all of val (SBD's train and val lists joined) leaves nothing to validate on
    train_txt = find_sbd_root(tmp_path / "sbd") + os.sep + "train.txt"
    with open(train_txt, "a") as file:
        file.write("2007_000033\n")
    with pytest.raises(DataError) as caught:
        seg11valid_ids(tmp_path / "voc", tmp_path / "sbd")
    assert str(caught.value) == (f"{train_txt}: lists every id of {voc2011 / 'val.txt'}: seg11valid, VOC val minus "
                                 f"SBD train, is empty (is it SBD's train.txt, or its train and val together?)")


def test_seg11valid_needs_the_sbd_folder(voc):
    root, _ = voc
    with pytest.raises(ValueError, match="sbd_root"):
        VOCSegmentation(root, "seg11valid")


def test_sbd_with_skip_bad_drops_a_sample_whose_image_is_missing(tmp_path, scipy_io):
    samples = {"2008_000002": (smooth_image(24, 30, 3), sbd_label(24, 30, 7)),
               "2008_000003": (smooth_image(20, 22, 4), sbd_label(20, 22, 12))}
    dataset_dir = make_sbd(tmp_path, samples, {"train": list(samples)}, scipy_io)
    os.remove(os.path.join(dataset_dir, "img", "2008_000003.jpg"))
    with pytest.raises(DataError, match="2008_000003.jpg"):
        SBDSegmentation(tmp_path, "train")
    dataset = SBDSegmentation(tmp_path, "train", skip_bad=True)
    assert dataset.ids == ["2008_000002"] and len(dataset.skipped) == 1 and "2008_000003" in dataset.skipped[0]


def test_the_programs_pass_skip_bad_to_sbd(tmp_path, scipy_io):
    from fcnlite.cli import resolve_options, train_parser
    from fcnlite.data.options import datasets_from_args
    from fcnlite.data.synthetic import make_synthetic_voc
    make_synthetic_voc(str(tmp_path / "voc"), n_train=2, n_val=2, size=(20, 24), seed=4)
    samples = {"2008_000002": (smooth_image(24, 30, 3), sbd_label(24, 30, 7)),
               "2008_000003": (smooth_image(20, 22, 4), sbd_label(20, 22, 12))}
    dataset_dir = make_sbd(tmp_path / "sbd", samples, {"train": list(samples)}, scipy_io)
    os.remove(os.path.join(dataset_dir, "img", "2008_000003.jpg"))
    arguments = ["--data-root", str(tmp_path / "voc"), "--sbd-root", str(tmp_path / "sbd"), "--skip-bad"]
    train_set, _ = datasets_from_args(resolve_options(train_parser().parse_args(arguments)))
    assert train_set.ids == ["2008_000002"] and len(train_set.skipped) == 1


def test_a_class_map_keeps_some_of_vocs_classes_and_still_checks_the_labels(voc):
    from fcnlite.data.classmap import class_map_from_names
    root, samples = voc
    dataset = VOCSegmentation(str(root), "train").use_class_map(class_map_from_names(["person"], VOC_CLASSES))
    assert dataset.class_names == ["background", "person"] and dataset.n_classes == 2 and dataset.palette is None
    image, label = dataset.load(1)   # 2007_000039: a person (15) inside a void border
    raw = samples["2007_000039"][1]
    assert numpy.array_equal(label, numpy.where(raw == 15, 1, numpy.where(raw == 255, 255, 0)))
    label_path = dataset.label_path(0)
    Image.fromarray(numpy.full((30, 40), 21, numpy.uint8)).save(label_path)   # 21: not a VOC class
    with pytest.raises(DataError, match="value 21 is not a class"):
        dataset.load(0)


def datasets_of(arguments):
    """(train_set, val_set) as train_voc.py builds them for these options."""
    from fcnlite.cli import resolve_options, train_parser
    from fcnlite.data.options import datasets_from_args
    return datasets_from_args(resolve_options(train_parser().parse_args(arguments)))


def test_seg11valid_without_voc_2011s_list_is_noted_as_voc_2012_val_minus_sbd_train(tmp_path, scipy_io, capsys):
    val_ids = ["2007_000033", "2008_000005", "2010_000001"]
    samples = {sample_id: (smooth_image(16, 16, k), bordered_label(16, 16, 1)) for k, sample_id in enumerate(val_ids)}
    voc_dir = make_voc(tmp_path / "voc", samples, {"train": ["2007_000033"], "val": val_ids})
    make_sbd(tmp_path / "sbd", {"2008_000005": (smooth_image(16, 16, 9), sbd_label(16, 16, 2))},
             {"train": ["2008_000005"]}, scipy_io)
    arguments = ["--data-root", str(tmp_path / "voc"), "--sbd-root", str(tmp_path / "sbd")]
    _, val_set = datasets_of(arguments)
    where = os.path.join(os.path.dirname(voc_dir), "VOC2011", "ImageSets", "Segmentation", "val.txt")
    assert val_set.ids == ["2007_000033", "2010_000001"]
    assert capsys.readouterr().out == (
        f"note: seg11valid here is VOC 2012 val minus SBD train (2 images), not the reference's 736 (VOC 2011 val "
        f"minus SBD train): VOC 2011's list is not at {where}; put VOC 2011's ImageSets/Segmentation/val.txt there "
        f"to validate on those\n")
    os.makedirs(os.path.dirname(where))   # where the note says: then the reference's set, and no note
    with open(where, "w") as file:
        file.write("2007_000033\n2008_000005\n")
    _, val_set = datasets_of(arguments)
    assert val_set.ids == ["2007_000033"] and capsys.readouterr().out == ""


def test_validation_images_that_also_train_are_noted_with_their_count(tmp_path, voc, scipy_io, capsys):
    root, _ = voc
    datasets_of(["--data-root", str(root), "--split", "trainval"])   # VOC's trainval holds val
    assert capsys.readouterr().out == (
        "note: 1 of the 1 validation images is a training image too (e.g. 2008_000002; validation: PASCAL VOC 2012 "
        "val (1 image), training: PASCAL VOC 2012 trainval (3 images)): the evaluations and best.h5 are then "
        "measured on images trained on; --split train keeps them apart\n")
    datasets_of(["--data-root", str(root)])   # train and val: apart
    assert capsys.readouterr().out == ""
    # SBD val overlaps seg11valid (VOC val minus SBD train); VOC 2011's list beside VOC2012 keeps the other note away
    voc2011 = root / "VOCdevkit" / "VOC2011" / "ImageSets" / "Segmentation"
    voc2011.mkdir(parents=True)
    (voc2011 / "val.txt").write_text("2007_000039\n2008_000002\n")
    make_sbd(tmp_path / "sbd", {"2008_000002": (smooth_image(16, 16, 9), sbd_label(16, 16, 2))},
             {"train": ["2007_000032"], "val": ["2008_000002"]}, scipy_io)
    train_set, val_set = datasets_of(["--data-root", str(root), "--sbd-root", str(tmp_path / "sbd"),
                                      "--split", "val"])
    assert val_set.ids == ["2007_000039", "2008_000002"]
    assert capsys.readouterr().out.startswith("note: 1 of the 2 validation images is a training image too (e.g. "
                                              "2008_000002; validation: PASCAL VOC 2012 seg11valid (2 images), "
                                              "training: SBD val (1 image))")
