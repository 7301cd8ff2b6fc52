"""What the programs say about options and data that cannot work, and about odd but usable data.

fcnlite.cli.run_main is what examples/*.py call; calling it here is the same code path without
a new interpreter per case. Each case fails before any training, or trains a few steps of a
tiny model on a folder the test makes.
"""
import json
import os

import numpy
import pytest
from PIL import Image

import fcnlite
from fcnlite import cli

TINY = ["--model", "fcn8s", "--width", "0.0625", "--lr", "0.01", "--momentum", "0.9", "--loss-normalize",
        "--no-progress", "--device", "cpu", "--eval-every", "0"]
COLORS = {"background": [0, 0, 0], "road": [128, 64, 128], "car": [0, 0, 142]}


def run(main, argv, capsys):
    """(exit status, stdout, stderr) of one program."""
    status = cli.run_main(main, argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def make_folder(root, masks, color=False):
    """images/ and masks/ of 12x16 pictures, one pair per index mask given (colour-coded when color)."""
    os.makedirs(root / "images")
    os.makedirs(root / "masks")
    palette = numpy.array(list(COLORS.values()), dtype=numpy.uint8)
    for index, mask in enumerate(masks):
        image = numpy.random.default_rng(index).integers(0, 255, mask.shape + (3,), dtype=numpy.uint8)
        Image.fromarray(image).save(root / "images" / f"{index:02d}.png")
        Image.fromarray(palette[mask] if color else mask).save(root / "masks" / f"{index:02d}.png")
    with open(root / "colors.json", "w") as file:
        json.dump(COLORS, file)
    return ["--images", str(root / "images"), "--masks", str(root / "masks")]


def road_and_car_masks(count=6):
    masks = []
    for index in range(count):
        mask = numpy.zeros((12, 16), numpy.uint8)
        mask[6:] = 1           # road below
        mask[2:5, index:index + 4] = 2   # a car
        masks.append(mask)
    return masks


def test_classes_may_be_named_from_the_colour_table(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks(), color=True)
    out = tmp_path / "run"
    status, stdout, stderr = run(cli.main_train, [*data, "--mask-format", "color", "--color-table",
                                                  str(tmp_path / "colors.json"), "--classes", "car", *TINY,
                                                  "--max-iter", "2", "--out", str(out)], capsys)
    assert status == 0, stderr
    model = fcnlite.model_from_file(out / "final.h5")
    assert model.class_names == ["background", "car"]


def test_colour_masks_without_a_table_is_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks(), color=True)
    status, _, stderr = run(cli.main_train, [*data, "--mask-format", "color", *TINY, "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr == "error: --mask-format color needs --color-table (a JSON file: class name -> [r, g, b])\n"


@pytest.mark.parametrize("fraction", ["0", "1", "-0.5"])
def test_a_validation_fraction_outside_zero_to_one_is_one_line(tmp_path, capsys, fraction):
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, "--val-fraction", fraction, *TINY, "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr.startswith("error: --val-fraction must be between 0 and 1") and stderr.count("\n") == 1


def test_a_chosen_class_that_never_occurs_is_reported_not_a_traceback(tmp_path, capsys):
    masks = [numpy.where(mask == 2, 0, mask) for mask in road_and_car_masks()]   # no car anywhere
    data = make_folder(tmp_path, masks)
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", "--classes", "car",
                                                  *TINY, "--max-iter", "2", "--out", str(tmp_path / "run")], capsys)
    assert status == 0, stderr
    assert "foreground IoU n/a" in stdout
    assert "warning: no pixel of 'car' in the validation masks or the predictions" in stdout
    assert os.path.exists(tmp_path / "run" / "final.h5")


def test_a_stray_mask_value_is_warned_about_naming_the_mask(tmp_path, capsys):
    masks = road_and_car_masks()
    masks[3][0, 0] = 9     # one pixel of a value no other mask has
    data = make_folder(tmp_path, masks)
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "run")],
                                 capsys)
    assert status == 0, stderr
    expected_mask = os.path.join(str(tmp_path / "masks"), "03.png")
    assert (f"warning: {tmp_path / 'masks'}: the largest mask value is 9 (in {expected_mask}), so the model gets "
            f"10 classes, but 3..8 never occur") in stdout
    assert "data: folder" in stdout and "(6 images, 10 classes): 5 training, 1 validation images" in stdout


def test_masks_using_every_value_up_to_the_largest_give_no_warning(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "run")],
                                 capsys)
    assert status == 0, stderr
    assert "warning" not in stdout


def test_value_ranges_are_written_compactly():
    assert cli.value_ranges([3, 4, 5, 6, 7, 8]) == "3..8"
    assert cli.value_ranges([1, 2, 3, 7, 9, 10]) == "1..3, 7, 9..10"
    assert cli.value_ranges([5]) == "5"


@pytest.fixture
def weights(tmp_path):
    model = fcnlite.FCN8s(n_classes=3, width=1 / 16)
    path = tmp_path / "model.h5"
    fcnlite.save_weights(model, path)
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(numpy.full((10, 12, 3), 200, numpy.uint8)).save(tmp_path / "photo.jpg")
    return path


@pytest.mark.parametrize("alpha", ["2", "-0.1"])
def test_predict_with_an_opacity_outside_zero_to_one_is_one_line(tmp_path, capsys, weights, alpha):
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"),
                                               "--alpha", alpha, "--out", str(tmp_path / "p")], capsys)
    assert status == 2
    assert stderr == f"error: --alpha is the overlay's opacity, between 0 and 1, not {float(alpha):g}\n"


def test_predict_into_a_file_instead_of_a_folder_is_one_line(tmp_path, capsys, weights):
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"),
                                               "--out", str(tmp_path / "photo.jpg")], capsys)
    assert status == 2
    assert stderr == f"error: --out {tmp_path / 'photo.jpg'} is a file: give a folder for the predictions\n"


def test_predict_keeps_apart_two_images_that_share_a_stem(tmp_path, capsys, weights):
    out = tmp_path / "p"
    status, stdout, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"),
                                                    str(tmp_path / "photo.jpg"), "--out", str(out)], capsys)
    assert status == 0, stderr
    assert sorted(os.listdir(out)) == ["photo.jpg_labels.png", "photo.jpg_overlay.png",
                                       "photo.png_labels.png", "photo.png_overlay.png"]


def test_evaluate_checks_where_its_json_goes_before_evaluating(tmp_path, capsys, weights):
    target = tmp_path / "no" / "such" / "folder" / "metrics.json"
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(weights), "--synthetic", "--json", str(target)],
                                 capsys)
    assert status == 2
    assert stderr == f"error: --json {target}: folder {target.parent} does not exist\n"
    assert stdout == ""   # nothing was loaded or evaluated


def test_the_training_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        cli.train_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: True)" not in text and "(default: False)" not in text
    assert "(default: 0.1)" not in text        # --val-fraction's help says "default 0.1" itself
    assert "(default: train)" in text          # --split's default, from the parser
