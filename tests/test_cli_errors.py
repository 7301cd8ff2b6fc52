"""What the programs say about options and data that cannot work, and about odd but usable data.

fcnlite.cli.run_main is what examples/*.py call; calling it here is the same code path without
a new interpreter per case. Each case fails before any training, or trains a few steps of a
tiny model on a folder the test makes.
"""
import argparse
import json
import os
import shutil
import sys

import numpy
import pytest
from PIL import Image

import fcnlite
from fcnlite import cli, predictions, run_options

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


def test_a_run_on_colour_coded_masks_draws_its_classes_in_the_tables_colours(tmp_path, capsys):
    # they were drawn in VOC's palette: the road the user knows as purple came out black and red
    data = make_folder(tmp_path, road_and_car_masks(), color=True)
    out = tmp_path / "run"
    options = [*data, "--mask-format", "color", "--color-table", str(tmp_path / "colors.json"), *TINY[:-2],
               "--eval-every", "2", "--max-iter", "2"]
    for classes, colors in ((["--classes", "car"], [COLORS["background"], COLORS["car"]]),
                            (["--class-map", "road:vehicle,car:vehicle,*:rest"], [[0, 0, 0], COLORS["road"]])):
        shutil.rmtree(out, ignore_errors=True)
        status, _, stderr = run(cli.main_train, [*options, *classes, "--out", str(out)], capsys)
        assert status == 0, stderr
        # the rest class of the map has no colour of its own: the default palette's, class 0's black
        assert fcnlite.model_from_file(out / "final.h5").class_colors == colors
    strip = numpy.asarray(Image.open(out / "progress" / sorted(os.listdir(out / "progress"))[0]))
    truth = strip[fcnlite.visualize.TITLE_HEIGHT:, :].reshape(-1, 3)   # the panels: vehicles in road's colour
    assert (truth == COLORS["road"]).all(axis=1).any() and not (truth == [128, 0, 0]).all(axis=1).any()


def test_class_names_that_contradict_the_colour_table_are_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks(), color=True)
    status, _, stderr = run(cli.main_train, [*data, "--mask-format", "color", "--color-table",
                                             str(tmp_path / "colors.json"), "--class-names", "background,car,road",
                                             "--classes", "car", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: --class-names (background, car, road) differs from the classes of "
                      f"{tmp_path / 'colors.json'} (background, road, car): the colour table names them; "
                      f"leave --class-names out\n")


def test_classes_by_number_work_on_unnamed_index_masks_and_names_ask_for_class_names(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    status, _, stderr = run(cli.main_train, [*data, "--classes", "2", *TINY, "--max-iter", "1", "--out", str(out)],
                            capsys)
    assert status == 0, stderr
    assert fcnlite.model_from_file(out / "final.h5").class_names == ["background", "class2"]
    status, _, stderr = run(cli.main_train, [*data, "--classes", "car", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert "give --class-names to choose them by name" in stderr


def test_masks_of_only_0_and_255_ask_for_a_class_map(tmp_path, capsys):
    masks = [numpy.where(mask > 0, 255, 0).astype(numpy.uint8) for mask in road_and_car_masks()]
    data = make_folder(tmp_path, masks)
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'masks'}: the masks hold only 0 and 255, and 255 means 'ignore' "
                      f"(VOC's outlines): for foreground masks of 0 and 255, pass --class-map "
                      f"'0:background,255:foreground' (name the foreground as you like)\n")
    out = tmp_path / "run"   # the command the message gives
    status, _, stderr = run(cli.main_train, [*data, "--class-map", "0:background,255:foreground", *TINY,
                                             "--max-iter", "1", "--out", str(out)], capsys)
    assert status == 0, stderr
    assert fcnlite.model_from_file(out / "final.h5").class_names == ["background", "foreground"]
    status, _, stderr = run(cli.main_train, [*data, "--class-map", "0:0,255:1", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "numbered")], capsys)
    assert status == 0, stderr
    assert fcnlite.model_from_file(tmp_path / "numbered" / "final.h5").n_classes == 2


@pytest.mark.parametrize("options, fix", [
    (["--class-names", "background,car", "--classes", "car"],
     "pass --class-map '0:background,255:car' instead of --classes"),
    (["--classes", "car"], "pass --class-map '0:background,255:car' instead of --classes"),
    (["--classes", "0"], "pass --class-map '0:background,255:foreground' instead of --classes (name the foreground as "
                         "you like)"),
    (["--class-map", "0:0,*:1"], "name 255 in --class-map ('*' leaves it ignored), e.g. --class-map "
                                 "'0:background,255:foreground' (name the foreground as you like)"),
])
def test_masks_of_only_0_and_255_ask_for_a_map_of_255_whatever_the_class_options(tmp_path, capsys, options, fix):
    # else every foreground pixel is ignored: a run that scores 1.0 on the background alone
    masks = [numpy.where(mask > 0, 255, 0).astype(numpy.uint8) for mask in road_and_car_masks()]
    data = make_folder(tmp_path, masks)
    status, _, stderr = run(cli.main_train, [*data, *options, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'masks'}: the masks hold only 0 and 255, and 255 means 'ignore' (VOC's "
                      f"outlines): for foreground masks of 0 and 255, {fix}\n")
    assert not (tmp_path / "r").exists()


def test_masks_whose_few_foreground_masks_a_sample_misses_are_read_on_before_being_refused(tmp_path, capsys):
    # 40 masks with a 255 "don't care" band; 3 hold the class: the 16 sampled masks held only 0 and 255
    masks = []
    for index in range(40):
        mask = numpy.zeros((12, 16), numpy.uint8)
        mask[:, :2] = 255
        if index in (1, 3, 4):
            mask[4:8, 6:10] = 1
        masks.append(mask)
    data = make_folder(tmp_path, masks)
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background,defect", "--classes", "defect",
                                             *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 0, stderr


def test_class_names_cannot_name_a_mapped_value_past_them(tmp_path, capsys):
    # --class-names names mask values 0 and 1; the map's 255 would become a class called "255"
    masks = [numpy.where(mask > 0, 255, 0).astype(numpy.uint8) for mask in road_and_car_masks()]
    data = make_folder(tmp_path, masks)
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--class-names", "background,road", "--class-map",
                                             "0:0,255:1", "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == ("error: --class-names names mask values 0..1, and --class-map '0:0,255:1' maps 255 too, "
                      "which no name covers: name the classes in the map instead, e.g. --class-map "
                      "'0:background,255:foreground', and leave --class-names out\n")
    assert not (tmp_path / "r").exists()
    # a map that sends 255 to ignore names no class after it: the names cover what it keeps
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--class-names", "background,road", "--class-map",
                                             "0:0,255:ignore,*:1", "--max-iter", "1", "--out", str(tmp_path / "i")],
                            capsys)
    assert status == 0, stderr


def test_colour_masks_without_a_table_is_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks(), color=True)
    status, _, stderr = run(cli.main_train, [*data, "--mask-format", "color", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr == "error: --mask-format color needs --color-table (a JSON file: class name -> [r, g, b])\n"


BAD_NUMBERS = [
    ("train", "--val-fraction", "0"), ("train", "--val-fraction", "1"), ("train", "--accumulate", "0"),
    ("train", "--accumulate", "-1"), ("train", "--crop", "-5"), ("train", "--max-side", "-1"),
    ("train", "--val-limit", "-1"), ("train", "--width", "0"), ("train", "--width", "nan"), ("train", "--lr", "-1"),
    ("train", "--lr", "nan"), ("train", "--momentum", "1.5"), ("train", "--max-iter", "-5"), ("train", "--epochs", "0"),
    ("train", "--resize", "0x0"), ("train", "--mask-channel", "4"), ("train", "--seed", "-1"),
    ("train", "--max-iter", "9" * 400), ("train", "--width", "inf"),
    ("evaluate", "--limit", "-1"), ("evaluate", "--max-side", "-1"), ("evaluate", "--resize", "0x10"),
    ("evaluate", "--beta", "1e308"), ("evaluate", "--beta", "-1"),
    ("predict", "--alpha", "2"), ("predict", "--alpha", "-0.1"), ("predict", "--max-side", "-1"),
]


@pytest.mark.parametrize("program, option, value", BAD_NUMBERS)
def test_a_number_out_of_range_is_refused_before_any_work_naming_the_option(capsys, program, option, value):
    parser = {"train": cli.train_parser, "evaluate": cli.evaluate_parser, "predict": cli.predict_parser}[program]()
    needed = {"train": [], "evaluate": ["--weights", "w.h5"], "predict": ["--weights", "w.h5", "x.png"]}[program]
    extra = [value, value] if option == "--scale" else [value]
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([*needed, option, *extra])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" (--help lists the options)")
    assert lines[0].startswith(f"{parser.prog}: error: argument {option}: expected ") and repr(value) in lines[0]


def test_the_limits_of_the_numbers_themselves_are_accepted():
    args = cli.train_parser().parse_args(["--val-fraction", "0.5", "--momentum", "0", "--crop", "0", "--max-side", "0",
                                          "--accumulate", "1", "--weight-decay", "0", "--mask-channel", "2"])
    assert (args.val_fraction, args.momentum, args.crop, args.accumulate, args.mask_channel) == (0.5, 0.0, 0, 1, 2)
    assert cli.predict_parser().parse_args(["--weights", "w", "x", "--alpha", "1"]).alpha == 1.0


def test_a_gpu_asked_for_on_a_machine_without_one_is_named_as_asked(tmp_path, capsys, weights):
    from fcnlite import backend
    if backend._cupy_or_reason()[0] is not None:
        pytest.skip("CuPy is usable on this machine: --device gpu works here")
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"), "--device",
                                               "gpu", "--out", str(tmp_path / "p")], capsys)
    assert status == 2 and stderr.startswith("error: device 'gpu' requested but ")


def test_the_programs_take_the_device_from_fcnlite_device_unless_given_one(tmp_path, capsys, weights, monkeypatch):
    from fcnlite import backend
    predict = ["--weights", str(weights), str(tmp_path / "photo.png"), "--out", str(tmp_path / "p")]
    monkeypatch.setenv("FCNLITE_DEVICE", "bogus")
    status, _, stderr = run(cli.main_predict, predict, capsys)
    assert status == 2
    assert stderr == "error: FCNLITE_DEVICE='bogus' is not a device: set auto, cpu or gpu (or give --device)\n"
    monkeypatch.setenv("FCNLITE_DEVICE", "gpu")
    assert run(cli.main_predict, [*predict, "--device", "cpu"], capsys)[0] == 0
    if backend._cupy_or_reason()[0] is None:   # no GPU here: the variable's choice is refused as asked
        status, _, stderr = run(cli.main_predict, predict, capsys)
        assert status == 2 and stderr.startswith("error: device 'gpu' requested but ")
    backend.use("cpu")


def test_epochs_and_max_iter_together_are_one_line(tmp_path, capsys):
    status, _, stderr = run(cli.main_train, ["--synthetic", "--epochs", "0.5", "--max-iter", "4",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == "error: give --epochs or --max-iter, not both (--epochs sets the number of iterations)\n"


def test_a_scale_range_the_wrong_way_round_is_one_line(tmp_path, capsys):
    status, _, stderr = run(cli.main_train, ["--synthetic", "--scale", "2", "0.5", "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr == "error: --scale MIN MAX: MIN 2 is larger than MAX 0.5\n"


def test_sbd_with_generated_or_folder_data_is_one_line(tmp_path, capsys, weights):
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(weights), "--synthetic", "--sbd-root", str(tmp_path)],
                            capsys)
    assert status == 2 and stderr.startswith("error: --sbd-root goes with real PASCAL VOC data")
    # every other source too: taken unasked, SBD would be left unread while the run went on without it
    for source in (["--synthetic-road", "--data-root", str(tmp_path / "road")],
                   ["--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks")]):
        status, _, stderr = run(cli.main_evaluate, ["--weights", str(weights), *source, "--sbd-root", str(tmp_path)],
                                capsys)
        assert (status, stderr) == (2, "error: --sbd-root goes with real PASCAL VOC data (--data-root), not with "
                                       "--synthetic, --synthetic-road or --images/--masks\n")
    assert not (tmp_path / "road").exists()   # refused before the generated data is made
    status, _, stderr = run(cli.main_train, ["--synthetic", "--download", *TINY, "--max-iter", "1", "--data-root",
                                             str(tmp_path / "voc"), "--out", str(tmp_path / "r")], capsys)
    assert (status, stderr) == (2, "error: --download goes with real PASCAL VOC data (--data-root), not with "
                                   "--synthetic, --synthetic-road or --images/--masks\n")


def test_a_chosen_class_that_never_occurs_is_reported_not_a_traceback(tmp_path, capsys):
    masks = [numpy.where(mask == 2, 0, mask) for mask in road_and_car_masks()]   # no car anywhere
    data = make_folder(tmp_path, masks)
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", "--classes", "car",
                                                  *TINY, "--max-iter", "2", "--out", str(tmp_path / "run")], capsys)
    assert status == 0, stderr
    assert "foreground IoU n/a" in stdout
    assert "warning: no pixel of 'car' in the validation masks or the predictions" in stdout
    assert os.path.exists(tmp_path / "run" / "final.h5")


@pytest.mark.parametrize("class_map, rest", [("1:road,2:car", "background"), ("1:1,2:2", "0")])
@pytest.mark.parametrize("skip_bad", [[], ["--skip-bad"]])
def test_a_class_map_that_leaves_values_of_most_masks_unmapped_is_refused_before_the_run(tmp_path, capsys, class_map,
                                                                                           rest, skip_bad):
    # --skip-bad would skip every mask: no help to offer
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, "--class-map", class_map, *skip_bad, *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'masks' / '00.png'}: value 0 is not in --class-map '{class_map}', which "
                      f"leaves mask values 0 unmapped: add '*:{rest}' (the rest as background) or '*:ignore'\n")
    assert not (tmp_path / "r").exists()


def test_a_value_past_the_named_classes_in_a_few_masks_is_refused_up_front_or_skipped_with_skip_bad(tmp_path, capsys):
    masks = road_and_car_masks()
    masks[3][0, 0] = 9
    data = make_folder(tmp_path, masks)
    common = [*data, "--class-names", "background,road,car", *TINY, "--max-iter", "6"]
    status, _, stderr = run(cli.main_train, [*common, "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'masks' / '03.png'}: value 9 is past the 3 classes that --class-names "
                      f"names (0..2): name every class the masks hold; or, if the masks holding it (1 of the 6 read) "
                      f"are wrong, fix them or pass --skip-bad\n")
    assert not (tmp_path / "r").exists()
    status, stdout, stderr = run(cli.main_train, [*common, "--skip-bad", "--out", str(tmp_path / "s")], capsys)
    assert status == 0, stderr
    assert f"skipped: {tmp_path / 'masks' / '03.png'}: value 9 is not a class (0..2) or 255" in stdout


def test_channel_masks_take_the_simulators_classes_with_a_note_and_values_past_them_are_refused_up_front(
        tmp_path, capsys):
    masks = road_and_car_masks()
    for mask in masks:
        mask[0, 0] = 20   # not one of the simulator's 13 classes
    data = make_folder(tmp_path, masks)   # grey masks: in the channel format, their one channel holds the class
    status, stdout, stderr = run(cli.main_train, [*data, "--mask-format", "channel", "--classes", "road", *TINY,
                                                  "--max-iter", "1",
                                                  "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert ("note: --mask-format channel without --class-names takes the driving simulator's 13 classes (unlabeled, "
            "building, fence, other, pedestrian, pole, road_line, road, sidewalk, vegetation, vehicle, wall, "
            "traffic_sign); give --class-names for classes of your own\n") in stdout
    assert stderr == (f"error: {tmp_path / 'masks' / '00.png'}: value 20 is past the driving simulator's 13 classes "
                      f"(0..12), which --mask-format channel takes without --class-names: name your classes with "
                      f"--class-names\n")
    assert not (tmp_path / "r").exists()
    names = ",".join(f"c{value}" for value in range(21))   # the classes named: the masks are taken as they are
    status, stdout, stderr = run(cli.main_train, [*data, "--mask-format", "channel", "--class-names", names,
                                                  "--classes", "c20", *TINY, "--max-iter", "1",
                                                  "--out", str(tmp_path / "named")], capsys)
    assert status == 0, stderr
    assert "note: --mask-format channel" not in stdout


def test_binary_channel_masks_are_read_once_before_they_are_refused(tmp_path, capsys, monkeypatch):
    # the channel format without --class-names reads every mask up front: that reading is what the
    # 0-and-255 check weighs, not a sample it has to read on from
    from fcnlite.data.folder import FolderSegmentation
    masks = [numpy.where(mask > 0, 255, 0).astype(numpy.uint8) for mask in road_and_car_masks()]
    data = make_folder(tmp_path, masks)
    reads = []
    raw_mask = FolderSegmentation.raw_mask
    monkeypatch.setattr(FolderSegmentation, "raw_mask", lambda self, index: reads.append(index) or raw_mask(self, index))
    status, _, stderr = run(cli.main_train, [*data, "--mask-format", "channel", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2 and "the masks hold only 0 and 255" in stderr
    assert sorted(reads) == list(range(len(masks)))


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
    assert "data: folder" in stdout and "(6 images): 5 training, 1 validation image, 10 classes\n" in stdout
    # the warning is for the run that sets the class count: evaluating its weights on those masks has
    # nothing left to fix, and says nothing of it
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "run" / "final.h5"), *data,
                                                     "--device", "cpu", "--no-progress"], capsys)
    assert status == 0, stderr
    assert "data: folder" in stdout and "never occur" not in stdout and "\nwarning:" not in "\n" + stdout


def test_no_stray_value_warning_where_every_value_occurs_or_a_class_map_decides(tmp_path, capsys):
    masks = road_and_car_masks()
    data = make_folder(tmp_path, masks)
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "a")],
                                 capsys)
    assert status == 0, stderr
    assert "\nwarning:" not in "\n" + stdout
    Image.fromarray(numpy.where(masks[0] == 2, 9, masks[0]).astype(numpy.uint8)).save(tmp_path / "masks" / "00.png")
    status, stdout, stderr = run(cli.main_train, [*data, "--class-map", "2:1,9:1,*:0", *TINY, "--max-iter", "1",
                                                  "--out", str(tmp_path / "b")], capsys)
    assert status == 0, stderr
    assert "\nwarning:" not in "\n" + stdout and "(6 images): 5 training, 1 validation image, 2 classes" in stdout


def test_value_ranges_are_written_compactly():
    from fcnlite.data.options import value_ranges
    assert value_ranges([3, 4, 5, 6, 7, 8]) == "3..8"
    assert value_ranges([1, 2, 3, 7, 9, 10]) == "1..3, 7, 9..10"
    assert value_ranges([5]) == "5"


@pytest.fixture
def weights(tmp_path):
    model = fcnlite.FCN8s(n_classes=3, width=1 / 16)
    path = tmp_path / "model.h5"
    fcnlite.save_weights(model, path)
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(numpy.full((10, 12, 3), 200, numpy.uint8)).save(tmp_path / "photo.jpg")
    return path


def test_predict_into_a_file_instead_of_a_folder_is_one_line(tmp_path, capsys, weights):
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"),
                                               "--out", str(tmp_path / "photo.jpg")], capsys)
    assert status == 2
    assert stderr == f"error: --out {tmp_path / 'photo.jpg'} is a file: give a folder for the predictions\n"


def test_predict_keeps_apart_images_that_share_a_stem_or_a_name(tmp_path, capsys, weights):
    (tmp_path / "other").mkdir()
    Image.fromarray(numpy.full((10, 12, 3), 90, numpy.uint8)).save(tmp_path / "other" / "photo.png")
    out = tmp_path / "p"
    status, stdout, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"),
                                                    str(tmp_path / "photo.jpg"), str(tmp_path / "other" / "photo.png"),
                                                    "--out", str(out)], capsys)
    assert status == 0, stderr
    assert sorted(os.listdir(out)) == ["photo.jpg_labels.png", "photo.jpg_overlay.png",
                                       "photo.png-2_labels.png", "photo.png-2_overlay.png",
                                       "photo.png_labels.png", "photo.png_overlay.png"]
    assert predictions.output_stems(["a/x.png", "b/y.png"]) == ["x", "y"]
    # one file on macOS's and Windows' file systems
    assert predictions.output_stems(["Photo.jpg", "photo.png", "a/PHOTO.PNG"]) == ["Photo.jpg", "photo.png",
                                                                                    "PHOTO.PNG-2"]


def test_predict_writes_over_no_image_it_is_given_and_not_among_a_folder_of_them(tmp_path, capsys, weights):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(photos / "cat.png")
    Image.fromarray(numpy.full((10, 12, 3), 90, numpy.uint8)).save(photos / "cat_labels.png")
    before = (photos / "cat_labels.png").read_bytes()
    for given in ([photos / "cat.png", photos / "cat_labels.png"], [photos / "cat.png"]):
        status, _, stderr = run(cli.main_predict, ["--weights", str(weights), *map(str, given), "--out",
                                                   str(photos)], capsys)
        assert status == 2
        assert stderr == (f"error: --out {photos} holds {photos / 'cat.png'}, an image to segment: the predictions "
                          f"would be written among the images (and read as images by the next run): choose another "
                          f"--out\n")
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(photos), "--out",
                                               str(photos) + os.sep], capsys)
    assert status == 2
    assert stderr == (f"error: --out {photos}{os.sep} is also a folder of images to segment: the predictions would "
                      f"be written among the images (and read as images by the next run): choose another --out\n")
    assert sorted(os.listdir(photos)) == ["cat.png", "cat_labels.png"]
    assert (photos / "cat_labels.png").read_bytes() == before


def test_predict_replaces_its_own_earlier_outputs_and_nothing_else(tmp_path, capsys, weights):
    out = tmp_path / "p"
    predict = ["--weights", str(weights), str(tmp_path / "photo.png"), "--out", str(out)]
    assert run(cli.main_predict, predict, capsys)[0] == 0
    earlier = (out / "photo_overlay.png").stat().st_mtime_ns
    os.utime(out / "photo_overlay.png", ns=(0, 0))
    assert run(cli.main_predict, predict, capsys)[0] == 0   # an earlier run's outputs: replaced
    assert (out / "photo_overlay.png").stat().st_mtime_ns >= earlier
    refused = ("is there already, and is no output of predict.py as it wrote it (changed since, another program's, "
               "or written before predict.py marked its outputs): move it, or choose another --out")
    labels = Image.open(out / "photo_labels.png")
    corrected = numpy.asarray(labels).copy()
    corrected[2:5, 2:5] = 1 - corrected[2:5, 2:5].clip(0, 1)
    edited = Image.fromarray(corrected)   # the label map corrected by hand, in a tool that kept the mark
    edited.putpalette(labels.getpalette())
    from PIL.PngImagePlugin import PngInfo
    kept_text = PngInfo()
    for key, value in labels.text.items():
        kept_text.add_text(key, value)
    edited.save(out / "photo_labels.png", pnginfo=kept_text)
    own = Image.fromarray(numpy.ones((10, 12), numpy.uint8))   # any other file: an annotation of one's own
    for name, picture, options in (("photo_labels.png", edited, {"pnginfo": kept_text}),
                                   ("photo_overlay.png", own, {})):
        picture.save(out / name, **options)
        kept = (out / name).read_bytes()
        status, stdout, stderr = run(cli.main_predict, predict, capsys)
        assert (status, stdout, stderr) == (2, "", f"error: --out {out}: {name} {refused}\n")
        assert (out / name).read_bytes() == kept
        (out / name).unlink()
    (out / "photo_labels.png").mkdir()
    status, _, stderr = run(cli.main_predict, predict, capsys)
    assert stderr == (f"error: --out {out}: photo_labels.png is there already, as a folder: move it, or choose another "
                      f"--out\n")
    (out / "photo_labels.png").rmdir()
    os.mkfifo(out / "photo_labels.png")   # never opened: reading it would wait for a writer
    status, _, stderr = run(cli.main_predict, predict, capsys)
    assert stderr == f"error: --out {out}: photo_labels.png {refused}\n"
    (out / "photo_labels.png").unlink()
    assert run(cli.main_predict, [*predict, "--probabilities"], capsys)[0] == 0
    numpy.save(out / "photo_probabilities.npy", numpy.zeros((2, 10, 12)))   # float64: not predict's
    status, _, stderr = run(cli.main_predict, [*predict, "--probabilities"], capsys)
    assert stderr == f"error: --out {out}: photo_probabilities.npy {refused}\n"


def test_predict_writes_no_outputs_beside_an_image_reached_through_a_link(tmp_path, capsys, weights):
    for folder in ("photos", "out", "out2"):
        (tmp_path / folder).mkdir()
    os.replace(tmp_path / "photo.png", tmp_path / "photos" / "a.png")
    os.symlink(tmp_path / "photos" / "a.png", tmp_path / "out" / "link.png")   # an image named in --out
    os.replace(tmp_path / "photo.jpg", tmp_path / "out2" / "c.jpg")
    os.symlink(tmp_path / "out2" / "c.jpg", tmp_path / "b.jpg")                # an image in --out, named elsewhere
    for given, out, shown in ((tmp_path / "out" / "link.png", tmp_path / "out", tmp_path / "out" / "link.png"),
                              (tmp_path / "b.jpg", tmp_path / "out2", tmp_path / "out2" / "c.jpg")):
        status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(given), "--out", str(out)], capsys)
        assert (status, stderr) == (2, f"error: --out {out} holds {shown}, an image to segment: the predictions "
                                       f"would be written among the images (and read as images by the next run): "
                                       f"choose another --out\n")
        assert len(os.listdir(out)) == 1


@pytest.mark.parametrize("answer, longest", [(-1, sys.maxsize), (AttributeError, 255), (143, 143)])
def test_the_longest_file_name_is_what_the_file_system_says_or_255_where_it_cannot_say(tmp_path, monkeypatch,
                                                                                       answer, longest):
    def pathconf(folder, name):   # -1: POSIX's "no limit"; Windows has no os.pathconf
        if answer is AttributeError:
            raise AttributeError("module 'os' has no attribute 'pathconf'")
        return answer
    monkeypatch.setattr(os, "pathconf", pathconf)
    assert predictions.longest_file_name(tmp_path / "not" / "made" / "yet") == longest


def test_predict_refuses_an_image_whose_outputs_name_is_too_long_before_segmenting_any(tmp_path, capsys, weights):
    long_stem = "n" * (predictions.longest_file_name(tmp_path) - len("_overlay.png") - 4)   # fits, and its outputs not
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(tmp_path / f"{long_stem}.png")
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"),
                                               str(tmp_path / f"{long_stem}.png"), "--out", str(tmp_path / "p")],
                            capsys)
    assert status == 2
    assert stderr.startswith(f"error: {tmp_path / long_stem}.png: the name of its output {long_stem}_labels.png is "
                             f"longer than the file system takes (")
    assert not os.path.exists(tmp_path / "p" / "photo_labels.png")


def test_predict_keeps_an_earlier_output_whole_when_stopped_while_writing_it(tmp_path, capsys, weights, monkeypatch):
    out = tmp_path / "p"
    predict = ["--weights", str(weights), str(tmp_path / "photo.png"), "--out", str(out)]
    assert run(cli.main_predict, predict, capsys)[0] == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    save = Image.Image.save

    def interrupted(self, path, *args, **kwargs):   # Ctrl-C with half of the overlay written
        save(self, path, *args, **kwargs)
        with open(path, "r+b") as file:
            file.truncate(8)
        raise KeyboardInterrupt
    monkeypatch.setattr(Image.Image, "save", interrupted)
    status, _, stderr = run(cli.main_predict, predict, capsys)
    assert (status, stderr) == (130, "error: interrupted\n")
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before   # no temporary file left


def test_predict_notes_the_memory_a_photo_of_many_pixels_needs_and_not_a_long_thin_one(tmp_path, capsys, weights,
                                                                                       monkeypatch):
    monkeypatch.setattr(cli, "BIG_IMAGE_PIXELS", 40 * 30)   # a small stand-in for 2000x1500
    Image.fromarray(numpy.zeros((30, 40, 3), numpy.uint8)).save(tmp_path / "big.png")
    Image.fromarray(numpy.zeros((1, 1000, 3), numpy.uint8)).save(tmp_path / "thin.png")
    status, stdout, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "big.png"),
                                                    str(tmp_path / "thin.png"), "--out", str(tmp_path / "p")], capsys)
    assert status == 0, stderr
    assert (f"note: {tmp_path / 'big.png'} is 40x30: the network's memory and time grow with the pixel count "
            f"(gigabytes at this size); --max-side 20 downscales it first\n") in stdout
    assert "thin.png is" not in stdout


def test_predict_puts_pillows_decompression_bomb_guard_in_one_line_and_no_raw_warning(tmp_path, capsys, weights,
                                                                                     monkeypatch, recwarn):
    # Pillow warns of an image over MAX_IMAGE_PIXELS (89 million) and refuses one over twice that:
    # 1200 pixels stand in for its limit here
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 30)
    Image.fromarray(numpy.zeros((30, 50, 3), numpy.uint8)).save(tmp_path / "large.png")   # 1500: warned of
    Image.fromarray(numpy.zeros((30, 100, 3), numpy.uint8)).save(tmp_path / "huge.png")   # 3000: refused
    status, stdout, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "large.png"),
                                                    str(tmp_path / "huge.png"), "--out", str(tmp_path / "p")], capsys)
    assert status == 2
    assert stderr.splitlines()[0] == (f"error: {tmp_path / 'huge.png'}: is 3,000 pixels, more than Pillow opens "
                                      f"(2,400, its guard against decompression bombs): downscale it with an image "
                                      f"tool first")
    assert os.path.exists(tmp_path / "p" / "large_labels.png")
    assert not [warning for warning in recwarn if issubclass(warning.category, Image.DecompressionBombWarning)]


def test_predict_and_evaluate_on_a_full_disk_stop_in_one_line(tmp_path, capsys, weights, monkeypatch):
    import errno
    import shutil
    from fcnlite import io

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(Image.Image, "save", full)
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"), "--out",
                                               str(tmp_path / "p")], capsys)
    assert (status, stderr) == (2, f"error: cannot write {tmp_path / 'p' / 'photo_labels.png'} (no space left on "
                                   f"device)\n")
    monkeypatch.undo()
    from fcnlite.data.synthetic import make_synthetic_voc
    make_synthetic_voc(str(tmp_path / "voc"), n_train=1, n_val=1, size=(24, 30), seed=2)
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=21, width=1 / 16), tmp_path / "voc21.h5")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "voc21.h5"), "--data-root",
                                                str(tmp_path / "voc"), "--json", str(tmp_path / "m.json")], capsys)
    assert status == 2 and stderr.endswith(f"\nerror: cannot write {tmp_path / 'm.json'} (no space left on device: "
                                           f"it needs 1.0 MB, 0.0 MB are free)\n")
    assert not [name for name in os.listdir(tmp_path) if name.endswith("json")]


def test_predict_names_a_broken_or_looping_link_as_one(tmp_path, capsys, weights):
    os.symlink(tmp_path / "gone.png", tmp_path / "broken.png")
    os.symlink(tmp_path / "loop.png", tmp_path / "loop.png")
    for name, target in (("broken.png", tmp_path / "gone.png"), ("loop.png", tmp_path / "loop.png")):
        status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / name), "--out",
                                                   str(tmp_path / "p")], capsys)
        assert (status, stderr) == (2, f"error: {tmp_path / name}: a link to {target}, which is not there (or links "
                                       f"back)\n")


def test_evaluate_checks_where_its_json_goes_before_evaluating(tmp_path, capsys, weights):
    target = tmp_path / "no" / "such" / "folder" / "metrics.json"
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(weights), "--synthetic", "--json", str(target)],
                                 capsys)
    assert status == 2
    assert stderr == f"error: --json {target}: folder {target.parent} does not exist\n"
    assert stdout == ""   # nothing was loaded or evaluated
    # a folder named as the file: said as such (not as a file that is not metrics, to be given another name)
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(weights), "--synthetic", "--json",
                                                     str(tmp_path)], capsys)
    assert (status, stderr, stdout) == (2, f"error: --json {tmp_path} is a folder, not a file name\n", "")


def test_evaluate_replaces_an_earlier_runs_json_but_no_other_file(tmp_path, capsys, weights):
    from fcnlite.data.synthetic import make_synthetic_voc
    make_synthetic_voc(str(tmp_path / "voc"), n_train=1, n_val=1, size=(24, 30), seed=2)
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=21, width=1 / 16), tmp_path / "voc21.h5")
    common = ["--data-root", str(tmp_path / "voc"), "--no-progress", "--json"]
    weights_bytes = (tmp_path / "voc21.h5").read_bytes()
    mask = tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClass" / os.listdir(
        tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClass")[0]
    mask_bytes = mask.read_bytes()
    colours = tmp_path / "colors.json"   # JSON, but a colour table's
    colours.write_text('{"background": [0, 0, 0], "road": [128, 64, 128]}')
    os.mkfifo(tmp_path / "pipe.json")   # never opened: reading it would wait for a writer
    for target, kept in ((tmp_path / "voc21.h5", weights_bytes), (mask, mask_bytes),
                         (colours, colours.read_bytes()), (tmp_path / "pipe.json", None)):
        status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "voc21.h5"), *common,
                                                         str(target)], capsys)
        assert (status, stdout) == (2, "")   # refused before anything was evaluated
        assert stderr == (f"error: --json {target}: a file is there that is not an earlier evaluation's metrics, and "
                          f"this would replace it: give another name\n")
        assert kept is None or target.read_bytes() == kept
    # it says what it evaluated, on the screen and in the JSON
    status, stdout, _ = run(cli.main_evaluate, ["--weights", str(tmp_path / "voc21.h5"), *common,
                                                str(tmp_path / "m.json"), "--limit", "1"], capsys)
    name = "synthetic VOC-layout val (1 image)"
    assert status == 0 and f"data: {name}\n" in stdout
    assert {key: json.loads((tmp_path / "m.json").read_text())[key] for key in ("data", "images")} == {
        "data": name, "images": 1}
    for earlier in ('{"pixel_accuracy": 0.5, "mean_iu": 0.5}', ""):   # an earlier run's, or an empty file
        (tmp_path / "metrics.json").write_text(earlier)
        status, stdout, _ = run(cli.main_evaluate, ["--weights", str(tmp_path / "voc21.h5"), *common,
                                                    str(tmp_path / "metrics.json")], capsys)
        assert status == 0 and stdout.endswith(f"metrics written to {tmp_path / 'metrics.json'}\n")
        assert json.loads((tmp_path / "metrics.json").read_text())["mean_iu"] != 0.5


def test_training_writes_over_no_earlier_runs_weights_even_without_its_checkpoint(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)[0] == 0
    # with its checkpoint: said in the program's words (--resume), before a step is trained or a file replaced
    before = {name: (out / name).read_bytes() for name in ("checkpoint.h5", "final.h5", "log.jsonl")}
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)
    assert (status, stderr) == (2, f"error: {out} already holds a run: pass --resume to continue it, or choose "
                                   f"another --out\n")
    assert "training fcn8s" not in stdout
    assert {name: (out / name).read_bytes() for name in before} == before
    (out / "checkpoint.h5").unlink()
    before = (out / "final.h5").read_bytes()
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)
    assert status == 2
    assert stderr == (f"error: {out} holds final.h5 and best.h5 of an earlier run (and no checkpoint to resume): "
                      f"choose another --out, or move them away first\n")
    assert (out / "final.h5").read_bytes() == before


def test_resuming_with_init_is_refused_rather_than_its_weights_loaded_and_replaced(tmp_path, capsys):
    # it said "init: 35 tensors from ...", then went on from the checkpoint's weights
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)[0] == 0
    before = (out / "checkpoint.h5").read_bytes()
    status, stdout, stderr = run(cli.main_train, ["--resume", "--out", str(out), "--init", str(out / "final.h5"),
                                                  "--max-iter", "2"], capsys)
    assert (status, stderr) == (2, f"error: --init {out / 'final.h5'}: {out}'s checkpoint holds the run's weights, "
                                   f"which --resume goes on from: leave out --init (or start a new run from it in "
                                   f"another --out)\n")
    assert "init:" not in stdout and (out / "checkpoint.h5").read_bytes() == before


def test_resuming_with_epochs_sets_the_last_iteration_anew_and_says_what_the_run_had(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())   # 5 training images, 1 validation
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "2", "--out", str(out)], capsys)[0] == 0
    status, stdout, stderr = run(cli.main_train, ["--resume", "--out", str(out), "--epochs", "1"], capsys)
    assert status == 0, stderr
    # the run's --max-iter 2 is not taken with the rest: --epochs 1 of 5 images is 5 steps
    assert (f"note: resuming {out} with options that differ from the run's, from its checkpoint on: --epochs 1 (it "
            f"sets --max-iter anew; the run had 2)\n") in stdout
    assert " for 5 iterations," in stdout
    assert [json.loads(line)["iteration"] for line in (out / "log.jsonl").read_text().splitlines()
            if '"loss"' in line][-1] == 5


def test_resuming_a_run_at_or_past_its_last_iteration_says_there_is_nothing_to_train(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "3", "--out", str(out)], capsys)[0] == 0
    before = (out / "final.h5").read_bytes()
    status, stdout, stderr = run(cli.main_train, ["--resume", "--out", str(out)], capsys)   # finished
    assert status == 0, stderr
    assert stdout.endswith(f"note: --resume: {out}'s checkpoint is at iteration 3, and the run stops at --max-iter 3: "
                           f"nothing to train (give a larger --max-iter to go on); its weights: {out / 'final.h5'}\n")
    status, _, stderr = run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "2"], capsys)
    assert status == 2
    assert stderr == (f"error: --resume: {out}'s checkpoint is at iteration 3, and the run stops at --max-iter 2: "
                      f"nothing to train (give a larger --max-iter to go on)\n")
    assert (out / "final.h5").read_bytes() == before
    (out / "final.h5").unlink()   # as a run stopped before its end leaves it
    status, _, stderr = run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "2"], capsys)
    assert status == 2 and stderr.startswith(f"error: --resume: {out}'s checkpoint is at iteration 3, and the run ")
    # the checkpoint given to evaluate (or predict) says how to have the weights of a run stopped early
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(out / "checkpoint.h5")], capsys)
    assert status == 2
    assert stderr == (f"error: {out / 'checkpoint.h5'}: a training checkpoint, not a weight file: use the final.h5 (or "
                      f"best.h5) that training writes; for a run stopped early, train_voc.py --resume --out {out} "
                      f"--max-iter 3 writes its final.h5 at once\n")
    assert run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "3"], capsys)[0] == 0
    assert fcnlite.model_from_file(out / "final.h5").n_classes == 3
    assert run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "4"], capsys)[0] == 0


def test_an_empty_path_or_json_is_refused_rather_than_taken_as_not_given(tmp_path, capsys, weights):
    (tmp_path / "afile").write_text("a file")
    for main, argv, message in (
            (cli.main_train, ["--images", "", "--masks", "", *TINY], "--images is empty: give a path"),
            (cli.main_train, ["--synthetic", "--init", "", *TINY], "--init is empty: give a path"),
            (cli.main_evaluate, ["--weights", str(weights), "--data-root", ""], "--data-root is empty: give a path"),
            (cli.main_evaluate, ["--weights", str(weights), "--json", ""], "--json is empty: give a file name"),
            (cli.main_evaluate, ["--weights", ""], "--weights is empty: give a path"),
            (cli.main_evaluate, ["--weights", str(weights), "--split", ""], "--split is empty: give a split's name"),
            (cli.main_train, ["--synthetic", "--val-split", "", *TINY], "--val-split is empty: give a split's name"),
            (cli.main_predict, ["--weights", "", str(tmp_path / "photo.png")], "--weights is empty: give a path"),
            (cli.main_predict, ["--weights", str(weights), ""], "an image argument is empty: give a file or a folder"),
            (cli.main_evaluate, ["--weights", str(weights), "--json", str(tmp_path / "afile" / "m.json")],
             f"--json {tmp_path / 'afile' / 'm.json'}: {tmp_path / 'afile'} is a file, not a folder")):
        status, _, stderr = run(main, argv, capsys)
        assert (status, stderr) == (2, f"error: {message}\n"), argv


def test_missing_voc_data_is_one_line_that_says_how_each_program_gets_it(tmp_path, capsys, weights):
    root = tmp_path / "nothing"
    status, _, stderr = run(cli.main_train, ["--data-root", str(root), *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")],
                            capsys)
    assert (status, stderr) == (2, f"error: no PASCAL VOC 2012 data under {root}/ (expected {root}/VOCdevkit/VOC2012): "
                                   f"add --download to fetch it (2 GB), or --synthetic for the built-in quickstart "
                                   f"data\n")
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(weights), "--data-root", str(root)], capsys)
    assert (status, stderr) == (2, f"error: no PASCAL VOC 2012 data under {root}/ (expected {root}/VOCdevkit/VOC2012): "
                                   f"train_voc.py --download --data-root {root} fetches it (2 GB), or --synthetic "
                                   f"for the built-in quickstart data\n")


def test_a_width_whose_model_cannot_fit_in_memory_is_refused_before_it_is_built(tmp_path, capsys, monkeypatch):
    data = make_folder(tmp_path, road_and_car_masks())
    sizes = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2 ** 20}   # a machine of 4 GiB
    monkeypatch.setattr(cli.os, "sysconf", lambda name: sizes[name])
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--width", "2", "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == ("error: --width 2: a model of about 0.5 billion parameters needs 6 GiB for its weights, "
                      "gradients and momentum alone, and this machine has 4 GiB (--width 1 is VGG16's)\n")
    assert not (tmp_path / "r").exists()

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 94.0 GiB")
    monkeypatch.setattr(fcnlite.models, "build_model", no_memory)
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == ("error: --width 0.0625: the model does not fit in the CPU's memory (its size grows "
                      "as the width squared)\n")


def test_a_diverging_run_stops_in_one_line_without_numpys_overflow_warnings(tmp_path, capsys):
    import warnings
    data = make_folder(tmp_path, road_and_car_masks())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, _, stderr = run(cli.main_train, [*data, *TINY, "--lr", "1e10", "--max-iter", "20", "--out",
                                                 str(tmp_path / "r")], capsys)
    assert status == 2 and stderr.startswith("error: loss became ") and stderr.endswith("(try a lower --lr)\n")
    assert [str(warning.message) for warning in caught if warning.category is RuntimeWarning] == []


def test_an_init_whose_classes_are_named_otherwise_than_the_datas_is_warned_of(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    first = tmp_path / "first"
    assert run(cli.main_train, [*data, "--class-names", "bg,cat,dog", *TINY, "--max-iter", "1", "--out", str(first)],
               capsys)[0] == 0
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", "bg,dog,cat", *TINY, "--max-iter", "1",
                                                  "--init", str(first / "final.h5"), "--out", str(tmp_path / "r")],
                                 capsys)
    assert status == 0, stderr
    assert (f"warning: {first / 'final.h5'} scores the classes bg, cat, dog; the data's are bg, dog, cat: its score "
            f"layers start from the first, class by class (give the data's classes in the weights' order to keep "
            f"what they learnt)\n") in stdout
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", "bg,cat,dog", *TINY, "--max-iter", "1",
                                                  "--init", str(first / "final.h5"), "--out", str(tmp_path / "s")],
                                 capsys)
    assert status == 0 and "warning" not in stdout


def test_an_init_file_gives_its_width_and_architecture_where_they_are_not_given(tmp_path, capsys):
    # the architecture came from the file, the width did not: "cannot start a model of width 1.0 (pass --width ...)"
    data = make_folder(tmp_path, road_and_car_masks())
    first = tmp_path / "first"
    assert run(cli.main_train, [*data, *TINY, "--model", "fcn16s", "--max-iter", "1", "--out", str(first)],
               capsys)[0] == 0
    untuned = [option for option in TINY if option not in ("--model", "fcn8s", "--width", "0.0625")]
    status, stdout, stderr = run(cli.main_train, [*data, *untuned, "--max-iter", "1", "--init",
                                                  str(first / "final.h5"), "--out", str(tmp_path / "r")], capsys)
    assert status == 0, stderr
    assert "training fcn16s (width 0.0625," in stdout
    status, _, stderr = run(cli.main_train, [*data, *untuned, "--width", "0.125", "--max-iter", "1", "--init",
                                             str(first / "final.h5"), "--out", str(tmp_path / "s")], capsys)
    assert (status, stderr) == (2, f"error: {first / 'final.h5'}: weights of width 0.0625 cannot start a model of "
                                   f"width 0.125 (pass --width 0.0625)\n")
    # over a preset's width too (quickstart's: 0.125), which no model of the file's weights can have
    status, stdout, stderr = run(cli.main_train, [*data, "--preset", "quickstart", "--max-iter", "1", "--no-progress",
                                                  "--device", "cpu", "--eval-every", "0", "--init",
                                                  str(first / "final.h5"), "--out", str(tmp_path / "t")], capsys)
    assert status == 0, stderr
    assert "(width 0.0625," in stdout


def test_a_second_training_into_a_folder_in_use_is_refused_and_the_first_goes_on(tmp_path, capsys):
    fcntl = pytest.importorskip("fcntl", reason="advisory locks are POSIX's")
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)[0] == 0
    before = {name: (out / name).read_bytes() for name in ("checkpoint.h5", "final.h5", "log.jsonl")}
    with open(out / ".lock", "a+") as lock:   # as the first run's process holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.truncate(0)
        lock.write("4242")
        lock.flush()
        for more in (["--max-iter", "1"], ["--max-iter", "2", "--resume"]):
            status, _, stderr = run(cli.main_train, [*data, *TINY, "--out", str(out), *more], capsys)
            assert (status, stderr) == (2, f"error: {out} is in use by another training (process 4242): wait for it "
                                           f"to end, or choose another --out\n")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "2", "--out", str(out), "--resume"], capsys)[0] == 0
    # a run before its first checkpoint: a --resume into its folder is told it is in use, not that it holds none
    early = tmp_path / "early"
    early.mkdir()
    with open(early / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4343")
        lock.flush()
        status, _, stderr = run(cli.main_train, [*data, *TINY, "--out", str(early), "--resume"], capsys)
        assert (status, stderr) == (2, f"error: {early} is in use by another training (process 4343): wait for it "
                                       f"to end, or choose another --out\n")


def test_a_folder_that_cannot_be_locked_trains_unlocked_with_a_note(tmp_path, capsys, monkeypatch):
    import errno
    fcntl = pytest.importorskip("fcntl", reason="advisory locks are POSIX's")

    def no_locks(file, operation):   # as on a network mount without flock
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)
    assert status == 0, stderr
    assert (f"note: {out / '.lock'} cannot be locked (no locks available): nothing stops a second run into {out} "
            f"meanwhile\n") in stdout


def test_a_resume_on_other_validation_data_does_not_compare_its_scores_with_the_runs_best(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    common = [*data, *TINY, "--out", str(out)]
    assert run(cli.main_train, [*common, "--max-iter", "2"], capsys)[0] == 0
    status, stdout, stderr = run(cli.main_train, [*common, "--max-iter", "3", "--resume"], capsys)
    assert status == 0, stderr
    assert "best.h5 starts again" not in stdout   # the same validation images
    status, stdout, stderr = run(cli.main_train, [*common, "--max-iter", "4", "--resume", "--val-fraction", "0.5"],
                                 capsys)
    assert status == 0, stderr
    assert "note: the validation data differ from those of the run's best evaluation (mean IU " in stdout
    assert "best.h5 starts again at the next evaluation" in stdout
    import h5py   # a checkpoint of a version before the fingerprint: its split may have moved
    with h5py.File(out / "checkpoint.h5", "r+") as file:
        state = json.loads(file.attrs["state"])
        del state["validation"]
        file.attrs["state"] = json.dumps(state)
    status, stdout, stderr = run(cli.main_train, [*common, "--max-iter", "5", "--resume"], capsys)
    assert status == 0, stderr
    assert "note: the checkpoint is older than the validation fingerprint, and a folder's split" in stdout


def test_a_resume_whose_data_moved_says_to_give_the_data_options_anew(tmp_path, capsys):
    make_folder(tmp_path / "old", road_and_car_masks())
    out = tmp_path / "run"
    data = ["--images", str(tmp_path / "old" / "images"), "--masks", str(tmp_path / "old" / "masks")]
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)[0] == 0
    os.rename(tmp_path / "old", tmp_path / "new")
    status, _, stderr = run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "2"], capsys)
    assert (status, stderr) == (2, f"error: {tmp_path / 'old' / 'images'}: image folder does not exist (--resume took "
                                   f"the run's data options: where the data moved, give --images anew, and the "
                                   f"options of its other folders)\n")
    moved = ["--images", str(tmp_path / "new" / "images"), "--masks", str(tmp_path / "new" / "masks")]
    assert run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "2", *moved], capsys)[0] == 0


def test_accumulating_more_images_than_the_training_set_holds_is_noted(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())   # 6 images: 5 train
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--accumulate", "7", "--max-iter", "1", "--out",
                                                  str(tmp_path / "r")], capsys)
    assert status == 0, stderr
    assert ("note: --accumulate 7 sums more images per step than the training set holds (5): each step reads some of "
            "them more than once\n") in stdout


def test_training_into_a_file_instead_of_a_folder_is_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "taken").write_text("a file")
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "taken")], capsys)
    assert status == 2
    assert stderr == f"error: --out {tmp_path / 'taken'} is a file: give a folder for the run\n"


def test_the_training_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        cli.train_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())   # argparse's line wrapping undone
    assert "(default: None)" not in text and "(default: True)" not in text and "(default: False)" not in text
    assert "(default: 0.1)" not in text        # --val-fraction's help says "default 0.1" itself
    for option, default in [("--split SPLIT", "(default: train)"),
                            ("--device {auto,cpu,gpu}", "(default: $FCNLITE_DEVICE, else auto)"),
                            ("--seed SEED", "(default 0)"), ("--accumulate ACCUMULATE", "(default 1)"),
                            ("--width WIDTH", "default 1.0"), ("--max-side MAX_SIDE", "default: no limit"),
                            ("--lr-policy {fixed,poly}", "the default"), ("--mask-format {index,channel,color}",
                                                                          "default index")]:
        start = text.index(f" {option} ") + len(option) + 2   # the option's entry, not the usage line's [...]
        assert default in text[start:text.find(" --", start)], (option, default)


def test_a_bad_validation_mask_met_at_the_end_keeps_the_training_done(tmp_path, capsys):
    masks = road_and_car_masks()
    data = make_folder(tmp_path, masks)
    # of another size than its image: found when it is read (a value that is not a class is refused up front)
    Image.fromarray(numpy.zeros((16, 12), numpy.uint8)).save(tmp_path / "masks" / "05.png")
    (tmp_path / "val.txt").write_text("05\n")
    out = tmp_path / "run"
    common = [*data, "--class-names", "background,road,car", "--split-file", str(tmp_path / "val.txt"), *TINY,
              "--out", str(out)]
    status, _, stderr = run(cli.main_train, [*common, "--max-iter", "3"], capsys)
    assert status == 2
    assert "05.png: mask is 16x12 (HxW) but its image" in stderr
    assert "; met evaluating at iteration 3, checkpoint saved to" in stderr
    assert stderr.count("\n") == 1 and (out / "checkpoint.h5").exists()
    Image.fromarray(masks[5]).save(tmp_path / "masks" / "05.png")   # fixed: the run finishes without training again
    status, stdout, stderr = run(cli.main_train, [*common, "--resume"], capsys)
    assert status == 0, stderr
    assert "resumed from" in stdout and "final: mean IU" in stdout and (out / "final.h5").exists()
    with open(out / "log.jsonl") as file:
        assert [json.loads(line).get("iteration") for line in file if "loss" in line] == [1, 2, 3]


def test_a_fresh_run_drops_the_log_of_one_killed_before_its_first_checkpoint(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text("".join(json.dumps({"iteration": i, "loss": 9.0}) + "\n" for i in (1, 2)))
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "2", "--out", str(out)], capsys)
    assert status == 0, stderr
    with open(out / "log.jsonl") as file:
        records = [json.loads(line) for line in file]
    assert [r["iteration"] for r in records if "loss" in r] == [1, 2] and all(r.get("loss") != 9.0 for r in records)


def test_class_names_and_splits_with_a_byte_order_mark_are_read(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "names.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(["background", "road", "car"]).encode())
    (tmp_path / "val.txt").write_bytes(b"\xef\xbb\xbf04\r\n05\r\n")
    out = tmp_path / "run"
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", str(tmp_path / "names.json"), "--split-file",
                                                  str(tmp_path / "val.txt"), *TINY, "--max-iter", "1",
                                                  "--out", str(out)], capsys)
    assert status == 0, stderr
    assert "4 training, 2 validation images" in stdout
    assert fcnlite.model_from_file(out / "final.h5").class_names == ["background", "road", "car"]


def test_class_names_that_are_not_json_are_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "names.json").write_text('["background", "road",')
    status, _, stderr = run(cli.main_train, [*data, "--class-names", str(tmp_path / "names.json"), *TINY,
                                             "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and stderr.startswith(f"error: {tmp_path / 'names.json'}: is not valid JSON")


def test_an_output_folder_under_a_file_is_one_line(tmp_path, capsys, weights):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "afile").write_text("x")
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "afile" / "run")], capsys)
    assert status == 2
    assert stderr == f"error: --out {tmp_path / 'afile' / 'run'}: {tmp_path / 'afile'} is a file, not a folder\n"
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"), "--out",
                                               str(tmp_path / "afile" / "p")], capsys)
    assert status == 2 and "is a file, not a folder" in stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder: nothing to refuse")
def test_a_read_only_output_folder_is_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(locked / "run")], capsys)
    finally:
        locked.chmod(0o755)
    assert status == 2 and stderr.endswith(f"no permission to write in {locked}\n")


def test_a_single_class_left_by_the_options_is_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", "--classes", "car",
                                             "--others", "ignore", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert "a model needs two classes at least, and these options leave 1 (car)" in stderr


def test_masks_that_are_all_0_are_refused_for_what_they_are_not_as_a_single_class(tmp_path, capsys, weights):
    # RGB masks read in the wrong channel, say: the class count the masks set is 1, and the general
    # "needs two classes" line would send the user to --class-names instead of --mask-format
    data = make_folder(tmp_path, [numpy.zeros((12, 16), numpy.uint8)] * 3)
    for program, extra in ((cli.main_train, [*TINY, "--out", str(tmp_path / "r")]),
                           (cli.main_evaluate, ["--weights", str(weights), "--device", "cpu"])):
        status, _, stderr = run(program, [*data, *extra], capsys)
        assert (status, stderr) == (2, f"error: {tmp_path / 'masks'}: every mask is all 0: nothing to tell apart "
                                       f"(check --mask-format)\n")
    assert not (tmp_path / "r").exists()


def test_jpeg_masks_are_warned_about(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    for index in range(2):
        mask = tmp_path / "masks" / f"{index:02d}.png"
        Image.open(mask).save(mask.with_suffix(".jpg"), quality=100)
        mask.unlink()
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", *TINY,
                                                  "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert f"warning: {tmp_path / 'masks'}: 2 of 6 masks are JPEG files (e.g. 00.jpg)" in stdout


def test_masks_that_no_reader_can_take_say_why(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    for index in range(6):   # 16-bit masks holding values a uint8 label cannot
        Image.fromarray((road_and_car_masks()[index].astype(numpy.uint16) * 300)).save(
            tmp_path / "masks" / f"{index:02d}.png")
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    # the why itself: a message that named the folder and nothing else passed the test before
    assert status == 2 and stderr == f"error: {tmp_path / 'masks' / '00.png'}: value 600 does not fit a label (0..255)\n"


def test_predict_with_max_side_gives_labels_at_the_photos_size(tmp_path, capsys, weights):
    Image.fromarray(numpy.random.default_rng(3).integers(0, 255, (60, 90, 3), dtype=numpy.uint8)).save(
        tmp_path / "wide.png")
    status, stdout, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "wide.png"),
                                                    "--max-side", "30", "--out", str(tmp_path / "p")], capsys)
    assert status == 0, stderr
    labels = Image.open(tmp_path / "p" / "wide_labels.png")
    assert labels.size == (90, 60)


def folder_with_a_bad_validation_mask(tmp_path):
    """(masks, data options): folder data whose one validation image, 05, has a mask of another size."""
    masks = road_and_car_masks()
    data = make_folder(tmp_path, masks)
    Image.fromarray(numpy.zeros((16, 12), numpy.uint8)).save(tmp_path / "masks" / "05.png")
    (tmp_path / "val.txt").write_text("05\n")
    return masks, [*data, "--class-names", "background,road,car", "--split-file", str(tmp_path / "val.txt")]


def test_an_evaluation_that_met_bad_data_mid_run_is_done_first_on_resume_and_a_finished_run_is_not_redone(
        tmp_path, capsys):
    masks, data = folder_with_a_bad_validation_mask(tmp_path)
    out = tmp_path / "run"
    common = [*data, *TINY, "--eval-every", "2", "--out", str(out)]
    status, _, stderr = run(cli.main_train, [*common, "--max-iter", "4"], capsys)
    assert status == 2 and "met evaluating at iteration 2" in stderr
    Image.fromarray(masks[5]).save(tmp_path / "masks" / "05.png")
    status, _, stderr = run(cli.main_train, [*common, "--resume"], capsys)
    assert status == 0, stderr

    def evaluated_at():
        with open(out / "log.jsonl") as file:
            return [record["iteration"] for record in map(json.loads, file) if record.get("type") == "eval"]
    assert evaluated_at() == [2, 4]
    status, _, stderr = run(cli.main_train, [*common, "--resume"], capsys)   # finished: nothing to evaluate again
    assert status == 0, stderr
    assert evaluated_at() == [2, 4]


def test_a_final_evaluation_that_met_bad_data_is_done_on_resume(tmp_path, capsys):
    masks, data = folder_with_a_bad_validation_mask(tmp_path)
    out = tmp_path / "run"
    common = [*data, *TINY, "--max-iter", "2", "--out", str(out)]
    status, _, stderr = run(cli.main_train, common, capsys)
    assert status == 2 and "met evaluating at iteration 2" in stderr
    Image.fromarray(masks[5]).save(tmp_path / "masks" / "05.png")
    status, stdout, stderr = run(cli.main_train, [*common, "--resume"], capsys)
    assert status == 0, stderr
    assert "final: mean IU" in stdout and (out / "final.h5").exists()


def test_a_validation_set_whose_every_image_is_skipped_as_bad_stops_instead_of_scoring_nan(tmp_path, capsys):
    masks = road_and_car_masks()
    data = make_folder(tmp_path, masks)
    Image.fromarray(masks[5].T.copy()).save(tmp_path / "masks" / "05.png")   # 16x12 for a 12x16 image
    (tmp_path / "val.txt").write_text("05\n")
    out = tmp_path / "run"
    common = [*data, "--class-names", "background,road,car", "--split-file", str(tmp_path / "val.txt"), "--skip-bad"]
    status, _, stderr = run(cli.main_train, [*common, *TINY, "--max-iter", "2", "--out", str(out)], capsys)
    assert status == 2
    assert stderr.startswith(f"error: no validation pixel of folder {tmp_path / 'images'} (6 images) could be "
                             f"evaluated at iteration 2: every image was skipped as bad (the first: ")
    assert stderr.endswith(f"checkpoint saved to {out / 'checkpoint.h5'}: fix the validation data, then rerun with "
                           f"--resume --out {out}\n")
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=3, width=1 / 16), tmp_path / "w.h5")
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "w.h5"), *common, "--json",
                                                str(tmp_path / "m.json")], capsys)
    assert status == 2
    assert f"\nerror: folder {tmp_path / 'images'} (6 images): no pixel could be evaluated: every image was " \
           f"skipped as bad (the first: " in stderr   # after the progress bar
    assert not (tmp_path / "m.json").exists()
    Image.fromarray(masks[5]).save(tmp_path / "masks" / "05.png")
    status, stdout, stderr = run(cli.main_train, ["--resume", "--out", str(out)], capsys)
    assert status == 0, stderr
    assert "final: mean IU" in stdout


def test_a_log_line_cut_off_by_a_kill_does_not_stop_the_next_run(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text(json.dumps({"iteration": 1, "loss": 9.0}) + '\n{"iteration": 2, "lo')
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(out)], capsys)
    assert status == 0, stderr


def test_masks_that_no_reader_can_take_say_why_with_skip_bad_too(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    for index in range(6):
        Image.fromarray((road_and_car_masks()[index].astype(numpy.uint16) * 300)).save(
            tmp_path / "masks" / f"{index:02d}.png")
    status, _, stderr = run(cli.main_train, [*data, "--skip-bad", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and "does not fit a label" in stderr and stderr.count("\n") == 1


def test_a_single_class_from_the_class_names_points_at_them(tmp_path, capsys):
    data = make_folder(tmp_path, [numpy.zeros((12, 16), numpy.uint8)] * 3)
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background", *TINY, "--max-iter", "1", "--out",
                                             str(tmp_path / "r")], capsys)
    assert status == 2 and stderr.endswith("leave 1 (background): check --class-names and --class-map\n")


def test_an_output_path_through_a_file_is_one_line_even_with_dots(tmp_path, capsys, weights):
    (tmp_path / "afile").write_text("x")
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"), "--out",
                                               str(tmp_path / "afile" / ".." / "new")], capsys)
    assert status == 2 and stderr.endswith(f"{tmp_path / 'afile'} is a file, not a folder\n")
    status, _, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "photo.png"), "--out", ""],
                            capsys)
    assert status == 2 and stderr == "error: --out is empty: give a folder for the predictions\n"


def test_seg11valid_without_sbd_is_one_line(tmp_path, capsys):
    status, _, stderr = run(cli.main_train, ["--synthetic", "--data-root", str(tmp_path / "voc"), "--val-split",
                                             "seg11valid", *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr == "error: split seg11valid is VOC val minus SBD train: it needs --sbd-root <SBD folder>\n"


def test_classes_chosen_on_voc_layout_data_train_those_and_folder_options_are_refused(tmp_path, capsys):
    from fcnlite.data.synthetic import make_synthetic_voc
    root = tmp_path / "voc"
    make_synthetic_voc(str(root), n_train=4, n_val=2, size=(24, 30), seed=2)
    out = tmp_path / "run"
    status, stdout, stderr = run(cli.main_train, ["--data-root", str(root), "--classes", "person,cat", *TINY,
                                                  "--max-iter", "1", "--out", str(out)], capsys)
    assert status == 0, stderr
    assert "4 training, 2 validation images, 3 classes" in stdout
    assert fcnlite.model_from_file(out / "final.h5").class_names == ["background", "person", "cat"]
    refused = [*TINY, "--max-iter", "1", "--out", str(tmp_path / "refused")]   # (a run, should a check fail)
    status, _, stderr = run(cli.main_train, ["--data-root", str(root), "--mask-format", "color", *refused], capsys)
    assert status == 2
    assert stderr == ("error: --mask-format is for your own folders of images and masks (--images, --masks); "
                      "VOC-layout data has its splits and VOC's 21 classes (choose some with --classes)\n")
    status, _, stderr = run(cli.main_train, ["--data-root", str(root), "--val-fraction", "0.3", *refused], capsys)
    assert status == 2 and stderr.startswith("error: --val-fraction is for your own folders")
    status, _, stderr = run(cli.main_train, ["--data-root", str(root), "--classes", "persn", *refused], capsys)
    assert status == 2 and stderr.startswith("error: class map: source 'persn' is neither a number nor a class name")
    status, _, stderr = run(cli.main_train, ["--data-root", str(root), "--class-map", "15:1,0:0", *refused], capsys)
    assert status == 2
    assert stderr == ("error: --class-map '15:1,0:0' leaves VOC's aeroplane (1), bicycle (2), bird (3) and 16 more "
                      "unmapped: add '*:0' (the rest as background) or '*:ignore'\n")


def test_samples_dropped_or_skipped_by_skip_bad_are_reported(tmp_path, capsys, weights):
    from fcnlite.data.synthetic import make_synthetic_voc
    from fcnlite.data.voc import find_voc_root
    root = tmp_path / "voc"
    make_synthetic_voc(str(root), n_train=4, n_val=3, size=(24, 30), seed=2)
    voc = find_voc_root(str(root))
    with open(os.path.join(voc, "ImageSets", "Segmentation", "train.txt")) as file:
        first_train = file.readline().strip()
    with open(os.path.join(voc, "ImageSets", "Segmentation", "val.txt")) as file:
        first_val = file.readline().strip()
    os.remove(os.path.join(voc, "JPEGImages", f"{first_train}.jpg"))                       # missing: dropped at listing
    with open(os.path.join(voc, "JPEGImages", f"{first_val}.jpg"), "wb") as file:          # broken: skipped at load
        file.write(b"not a picture")
    status, stdout, stderr = run(cli.main_train, ["--data-root", str(root), "--skip-bad", *TINY, "--max-iter", "1",
                                                  "--out", str(tmp_path / "run")], capsys)
    assert status == 0, stderr
    assert "skipped 1 listed sample(s) of " in stdout and f"{first_train}.jpg" in stdout
    assert f"skipped: {os.path.join(voc, 'JPEGImages', first_val)}.jpg" in stdout
    model = fcnlite.FCN8s(n_classes=21, width=1 / 16)
    fcnlite.save_weights(model, tmp_path / "voc21.h5")
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "voc21.h5"), "--data-root", str(root),
                                                     "--skip-bad", "--json", str(tmp_path / "m.json")], capsys)
    assert status == 0, stderr
    assert f"skipped 1 bad image(s): {os.path.join(voc, 'JPEGImages', first_val)}.jpg" in stdout
    with open(tmp_path / "m.json") as file:
        assert json.load(file)["skipped"] == 1


def test_images_dropped_for_want_of_a_mask_are_reported(tmp_path, capsys, weights):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "masks" / "02.png").unlink()
    status, stdout, stderr = run(cli.main_train, [*data, "--skip-bad", *TINY, "--max-iter", "1",
                                                  "--out", str(tmp_path / "r")], capsys)
    assert status == 0, stderr
    line = (f"skipped 1 listed sample(s) of folder {tmp_path / 'images'} (5 images): {tmp_path / 'images' / '02.png'}:"
            f" has no mask 02.png (or another of ")
    assert stdout.count("skipped 1 listed sample(s)") == 1 and line in stdout, stdout
    # evaluate uses the other half of the folder: the image is reported there too, once, and counted in the JSON
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "r" / "final.h5"), *data,
                                                     "--skip-bad", "--device", "cpu", "--no-progress", "--json",
                                                     str(tmp_path / "m.json")], capsys)
    assert status == 0, stderr
    assert stdout.count("skipped 1 listed sample(s)") == 1 and line in stdout, stdout
    assert json.loads((tmp_path / "m.json").read_text())["skipped"] == 1


def test_binary_masks_of_0_and_255_with_class_names_still_ask_for_a_class_map(tmp_path, capsys):
    # with --class-names the masks are not scanned for the class count, but a sample of them is looked at
    masks = [numpy.where(mask > 0, 255, 0).astype(numpy.uint8) for mask in road_and_car_masks()]
    data = make_folder(tmp_path, masks)
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--class-names", "background,road",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr.endswith("for foreground masks of 0 and 255, pass --class-map '0:background,255:foreground' "
                           "(name the foreground as you like)\n")
    assert not (tmp_path / "r").exists()   # before any training


def test_resume_where_there_is_no_checkpoint_is_one_line_and_starts_nothing(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "2", "--out", str(out), "--resume"],
                                 capsys)
    assert status == 2 and "training fcn8s" not in stdout
    assert stderr == (f"error: --resume: {out} holds no checkpoint to continue (a run stopped before its first "
                      f"checkpoint, or by a second Ctrl-C, left none): leave out --resume to start there\n")


def test_resume_takes_the_data_options_left_out_from_the_run(tmp_path, capsys):
    masks = road_and_car_masks()
    data = make_folder(tmp_path, masks)
    Image.fromarray(numpy.zeros((5, 5), numpy.uint8)).save(tmp_path / "masks" / "04.png")   # stops the run
    (tmp_path / "val.txt").write_text("01\n05\n")   # two held out: --val-fraction's default would hold out one
    out = tmp_path / "run"
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", "--split-file",
                                             str(tmp_path / "val.txt"), *TINY, "--max-iter", "4",
                                             "--out", str(out)], capsys)   # one epoch: 04 is met
    assert status == 2 and (out / "checkpoint.h5").exists(), stderr
    # the folders moved, and the bad mask is to be skipped: the class names and the split come from the run
    os.rename(tmp_path / "images", tmp_path / "moved-images")
    os.rename(tmp_path / "masks", tmp_path / "moved-masks")
    moved = ["--images", str(tmp_path / "moved-images"), "--masks", str(tmp_path / "moved-masks")]
    status, stdout, stderr = run(cli.main_train, [*moved, "--skip-bad", "--resume", "--out", str(out),
                                                  "--no-progress", "--device", "cpu"], capsys)
    assert status == 0, stderr
    assert f"data: folder {tmp_path / 'moved-images'} (6 images): 4 training, 2 validation images, 3 classes" \
        in stdout
    assert f"--images {tmp_path / 'moved-images'} (the run had --images {tmp_path / 'images'})" in stdout
    assert "--skip-bad (the run had no --skip-bad)" in stdout and "skipped 1 bad sample" in stdout
    assert fcnlite.model_from_file(out / "final.h5").class_names == ["background", "road", "car"]
    # other classes cannot go on from these weights: one line, before any training
    status, stdout, stderr = run(cli.main_train, [*moved, "--class-names", "background,road,car,bus", "--resume",
                                                  "--max-iter", "4", "--out", str(out), "--device", "cpu"], capsys)
    assert status == 2 and "training fcn8s" not in stdout
    assert stderr == (f"error: {out / 'checkpoint.h5'}: the run trained 3 classes (background, road, car), and "
                      f"this model has 4 classes (background, road, car, bus): resume it with the run's data and "
                      f"class options\n")


def test_masks_without_an_image_are_left_out_with_a_note(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    Image.fromarray(road_and_car_masks()[0]).save(tmp_path / "masks" / "deleted-photo.png")
    status, stdout, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")],
                                 capsys)
    assert status == 0, stderr
    assert (f"note: {tmp_path / 'masks'}: 1 mask has no image in {tmp_path / 'images'} (e.g. deleted-photo.png): "
            f"left out\n") in stdout
    assert "(6 images): 5 training, 1 validation image, 3 classes" in stdout


def test_restoring_data_options_keeps_a_source_of_the_same_kind_and_drops_one_of_another():
    parser = cli.train_parser()
    defaults = {key: parser.get_default(key) for key in run_options.TRAIN_DATA_OPTIONS}
    saved = dict(defaults, data_root="/voc", sbd_root="/sbd", classes="road", others="ignore")

    def given(**options):
        return argparse.Namespace(**dict(dict.fromkeys(defaults, run_options.NOT_GIVEN), **options))
    args = given(data_root="/moved")   # the VOC tree moved: SBD stays
    restored, changed = run_options.restore_data_options(args, saved, defaults)
    assert (args.data_root, args.sbd_root, args.classes, args.others) == ("/moved", "/sbd", "road", "ignore")
    assert changed == ["--data-root /moved (the run had --data-root /voc)"]
    assert restored == ["--sbd-root /sbd", "--classes road", "--others ignore"]
    args = given(class_map="7:1,*:0")   # a map in place of --classes: the rest as the run had them
    restored, changed = run_options.restore_data_options(args, saved, defaults)
    assert (args.data_root, args.sbd_root, args.classes, args.class_map) == ("/voc", "/sbd", None, "7:1,*:0")
    assert changed == ["no --classes (the run had --classes road)",
                       "--class-map 7:1,*:0 (the run had no --class-map)"]
    args = given(images="/i", masks="/m", skip_bad=True)   # other data: none of the run's data options fit it
    restored, changed = run_options.restore_data_options(args, saved, defaults)
    assert (args.data_root, args.sbd_root, args.classes, args.others) == (None, None, None, "background")
    assert "no --sbd-root (the run had --sbd-root /sbd)" in changed and "no --classes (the run had --classes road)" \
        in changed and restored == []
    args = given(images="/i", masks="/m")   # but --skip-bad says how to meet bad data, whichever: it stays
    restored, changed = run_options.restore_data_options(args, dict(saved, skip_bad=True), defaults)
    assert (args.data_root, args.classes, args.skip_bad) == (None, None, True) and restored == ["--skip-bad"]
    saved["val_images"], saved["val_masks"] = "/v", "/vm"   # a unit of a group: one given keeps the other
    args = given(val_images="/moved")
    run_options.restore_data_options(args, saved, defaults)
    assert (args.val_images, args.val_masks) == ("/moved", "/vm")
    parser_args, _ = run_options.parse_noting_given(parser, ["--no-skip-bad"], run_options.TRAIN_DATA_OPTIONS)
    _, changed = run_options.restore_data_options(parser_args, dict(saved, skip_bad=True), defaults)
    assert parser_args.skip_bad is False and "no --skip-bad (the run had --skip-bad)" in changed


def test_resume_without_out_names_the_run_folders_that_hold_checkpoints(tmp_path, capsys, monkeypatch):
    data = make_folder(tmp_path, road_and_car_masks())
    monkeypatch.chdir(tmp_path)
    os.makedirs(os.path.join("runs", "quickstart-fcn8s"))
    open(os.path.join("runs", "quickstart-fcn8s", "checkpoint.h5"), "w").close()
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--resume"], capsys)
    assert status == 2
    assert stderr.endswith(f"leave out --resume to start there; checkpoints are in "
                           f"{os.path.join('runs', 'quickstart-fcn8s')} (pass --out to resume one)\n")


def test_training_from_scratch_at_the_reference_rate_is_warned_about(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    untuned = ["--model", "fcn8s", "--width", "0.0625", "--no-progress", "--device", "cpu", "--eval-every", "0",
               "--max-iter", "1"]
    status, stdout, _ = run(cli.main_train, [*data, *untuned, "--out", str(tmp_path / "a")], capsys)
    assert status == 0
    assert ("warning: training from scratch (no --init) at the reference's learning rate 1e-14, which is meant "
            "for VGG16's weights: the model will barely move.") in stdout
    status, stdout, _ = run(cli.main_train, [*data, *untuned, "--lr", "1e-14", "--out", str(tmp_path / "b")], capsys)
    assert status == 0 and "warning: training from scratch" not in stdout   # asked for: no warning


def test_a_bad_training_mask_met_mid_run_keeps_the_training_done(tmp_path, capsys):
    masks = road_and_car_masks()
    data = make_folder(tmp_path, masks)
    (tmp_path / "val.txt").write_text("05\n")
    # the first epoch's order is 02, 04, 03, 00, 01 (seed 0): the wrong-size mask is the second image of
    # the first step, so the checkpoint must go back to that step's first image
    Image.fromarray(numpy.zeros((5, 5), numpy.uint8)).save(tmp_path / "masks" / "04.png")
    out = tmp_path / "my run"   # a space: the command the message gives must quote it
    common = [*data, "--class-names", "background,road,car", "--split-file", str(tmp_path / "val.txt"), *TINY,
              "--accumulate", "2", "--max-iter", "4", "--out", str(out)]
    status, _, stderr = run(cli.main_train, common, capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert stderr.endswith(f"pass --skip-bad, then rerun with --resume --out '{out}'\n")
    assert "04.png: mask is 5x5 (HxW) but its image" in stderr
    assert "; met in the training data after iteration " in stderr and (out / "checkpoint.h5").exists()
    done = int(stderr.split("after iteration ")[1].split(",")[0])
    assert done == 0
    Image.fromarray(masks[4]).save(tmp_path / "masks" / "04.png")   # fixed: the run goes on from there
    status, stdout, stderr = run(cli.main_train, [*common, "--resume"], capsys)
    assert status == 0, stderr
    assert f"resumed from {out / 'checkpoint.h5'} at iteration {done}" in stdout
    with open(out / "log.jsonl") as file:
        assert [json.loads(line).get("iteration") for line in file if "loss" in line] == [1, 2, 3, 4]
    # the same weights as a run that never met the bad mask: the stopped step was redone from its first image
    status, _, stderr = run(cli.main_train, [*common[:-1], str(tmp_path / "straight")], capsys)
    assert status == 0, stderr
    straight = {name: value for name, value, _ in
                fcnlite.model_from_file(tmp_path / "straight" / "final.h5").named_parameters()}
    for name, value, _ in fcnlite.model_from_file(out / "final.h5").named_parameters():
        numpy.testing.assert_array_equal(value, straight[name], err_msg=name)


def test_images_and_masks_in_one_folder_is_one_line(tmp_path, capsys):
    make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, ["--images", str(tmp_path / "images"), "--masks",
                                             str(tmp_path / "images") + "/", *TINY, "--max-iter", "1", "--out",
                                             str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: --images and --masks both name {tmp_path / 'images'}: images and masks pair by "
                      f"file name, so they need a folder each\n")
    validation = make_folder(tmp_path / "val", road_and_car_masks(2))
    status, _, stderr = run(cli.main_train, ["--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                                             "--val-images", validation[1], "--val-masks", validation[1], *TINY,
                                             "--max-iter", "1", "--out", str(tmp_path / "r")],
                            capsys)
    assert (status, stderr) == (2, f"error: --val-images and --val-masks both name {validation[1]}: images and "
                                   f"masks pair by file name, so they need a folder each\n")


def test_evaluate_names_unnamed_classes_as_the_weights_do_and_warns_of_other_names(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", *TINY, "--max-iter", "1",
                                             "--out", str(out)], capsys)
    assert status == 0, stderr
    weights = str(out / "final.h5")
    json_path = tmp_path / "metrics.json"
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, *data, "--device", "cpu",
                                                     "--json", str(json_path)], capsys)
    assert status == 0, stderr
    assert set(json.loads(json_path.read_text())["per_class_iu"]) == {"background", "road", "car"}
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, *data, "--device", "cpu",
                                                     "--class-names", "bg,cat,dog", "--json", str(json_path)], capsys)
    assert status == 0, stderr
    assert (f"warning: {weights} was trained on classes named background, road, car; the data options name them "
            f"bg, cat, dog: the table uses the data's names") in stdout
    assert set(json.loads(json_path.read_text())["per_class_iu"]) == {"bg", "cat", "dog"}
    # the same classes in another order: each scored against another (mean IU 0.35 where it was 0.63)
    json_path.unlink()

    def evaluated(*args, **kwargs):
        raise AssertionError("refused only after the evaluation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fcnlite.evaluate, "evaluate_dataset", evaluated)
        status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, *data, "--device", "cpu",
                                                         "--class-names", "background,car,Road", "--json",
                                                         str(json_path)], capsys)
    assert status == 2 and not json_path.exists()
    assert stderr == (f"error: {weights} was trained on classes background, road, car, in that order; the data "
                      f"options number them background, car, Road: each class would be scored as another (the "
                      f"model's class 2 is car, the data's is class 1): give the classes in the training's order, on "
                      f"data of those classes\n")
    # a model of two classes of one name (trained before such names were refused): no order to check
    model = fcnlite.model_from_file(weights)
    model.class_names = ["background", "background", "road"]
    fcnlite.save_weights(model, tmp_path / "twice.h5")
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "twice.h5"), *data, "--device",
                                                     "cpu", "--class-names", "other,background,road"], capsys)
    assert status == 0, stderr
    assert "the data options name them other, background, road: the table uses the data's names" in stdout


def test_evaluate_on_data_of_another_class_count_than_the_models_is_one_line(tmp_path, capsys, weights):
    # a 3-class model on --classes road's 2 classes: its class 2 would be scored against no class of the data
    data = make_folder(tmp_path, road_and_car_masks())
    json_path = tmp_path / "metrics.json"
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(weights), *data, "--class-names",
                                                     "background,road,car", "--classes", "road", "--device", "cpu",
                                                     "--json", str(json_path)], capsys)
    assert (status, stderr) == (2, f"error: {weights}: the model predicts 3 classes but folder {tmp_path / 'images'} "
                                   f"(6 images) has 2 (use the same class options as in training)\n")
    assert not json_path.exists() and "mean IU" not in stdout


def test_evaluate_without_data_options_takes_the_data_the_weights_were_trained_on(tmp_path, capsys):
    masks = [numpy.where(mask > 0, 255, 0).astype(numpy.uint8) for mask in road_and_car_masks()]
    data = make_folder(tmp_path, masks)
    options = ["--class-map", "0:background,255:foreground", "--val-fraction", "0.34"]   # 2 of 6 held out
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *options, *TINY, "--max-iter", "1", "--out", str(out)], capsys)[0] == 0
    weights = str(out / "final.h5")
    results = []
    for given in ([*data, *options], []):
        status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, *given, "--device", "cpu", "--json",
                                                         str(tmp_path / "metrics.json")], capsys)
        assert status == 0, stderr
        results.append(json.loads((tmp_path / "metrics.json").read_text()))
    assert (f"note: the data {weights} was trained on: --images {tmp_path / 'images'} --masks {tmp_path / 'masks'} "
            f"--class-map 0:background,255:foreground --val-fraction 0.34 (give data options for other data)\n") \
        in stdout
    assert results[0] == results[1] and results[1]["n_pixels"] == 2 * 12 * 16   # the run's two validation images
    # data named anew: the weights' data options stay out of it
    status, _, stderr = run(cli.main_evaluate, ["--weights", weights, *data, "--device", "cpu"], capsys)
    assert status == 2 and "pass --class-map '0:background,255:foreground'" in stderr


def test_evaluate_without_options_takes_the_runs_validation_split_of_voc_layout_data(tmp_path, capsys):
    from fcnlite.data.synthetic import make_synthetic_voc
    root = tmp_path / "voc"
    make_synthetic_voc(str(root), n_train=4, n_val=3, size=(24, 30), seed=2)
    out = tmp_path / "run"
    assert run(cli.main_train, ["--data-root", str(root), "--val-split", "train", *TINY, "--max-iter", "1",
                                "--out", str(out)], capsys)[0] == 0
    weights = str(out / "final.h5")
    pixels = {}
    for split in ([], ["--split", "train"], ["--split", "val"]):
        json_path = tmp_path / "metrics.json"
        status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, *split, "--json", str(json_path)],
                                     capsys)
        assert status == 0, stderr
        pixels[tuple(split)] = json.loads(json_path.read_text())["n_pixels"]
        assert ("--split train (its --val-split)" in stdout) == (not split)
    # the run validated on its training images (the synthetic masks' object outlines are 255, ignored)
    assert pixels[()] == pixels[("--split", "train")] != pixels[("--split", "val")]
    # folder data has no named splits: a --val-split given to its training is not its evaluation's --split
    data = make_folder(tmp_path / "folder", road_and_car_masks())
    out = tmp_path / "folder-run"
    assert run(cli.main_train, [*data, "--val-split", "holdout", *TINY, "--max-iter", "1", "--out", str(out)],
               capsys)[0] == 0
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(out / "final.h5")], capsys)
    assert status == 0, stderr


def test_the_data_a_run_saved_is_found_again_from_another_working_directory(tmp_path, capsys, monkeypatch):
    make_folder(tmp_path, road_and_car_masks())
    monkeypatch.chdir(tmp_path)
    names = ["--class-names", "background,road,car"]
    assert run(cli.main_train, ["--images", "images", "--masks", "masks", *names, *TINY, "--max-iter", "1",
                                "--out", "run"], capsys)[0] == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(tmp_path / "run" / "final.h5"), "--device",
                                                     "cpu"], capsys)
    assert status == 0, stderr
    assert f"--images {tmp_path / 'images'} --masks {tmp_path / 'masks'}" in stdout


def test_evaluate_on_folder_data_takes_the_val_or_train_split_and_refuses_others(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    names = ["--class-names", "background,road,car"]
    assert run(cli.main_train, [*data, *names, *TINY, "--max-iter", "1", "--out", str(out)], capsys)[0] == 0
    weights = str(out / "final.h5")
    pixels = {}
    for split in ("val", "train"):
        json_path = tmp_path / f"{split}.json"
        status, _, stderr = run(cli.main_evaluate, ["--weights", weights, *data, *names, "--device", "cpu",
                                                    "--split", split, "--json", str(json_path)], capsys)
        assert status == 0, stderr
        pixels[split] = json.loads(json_path.read_text())["n_pixels"]
    assert (pixels["val"], pixels["train"]) == (1 * 12 * 16, 5 * 12 * 16)   # 6 images: 1 held out, 5 trained on
    status, _, stderr = run(cli.main_evaluate, ["--weights", weights, *data, "--split", "banana"], capsys)
    assert status == 2 and stderr == ("error: --split banana: folder data has two splits, val (--val-fraction or "
                                      "--split-file, as in training) and train\n")


def test_data_already_split_in_folders_trains_on_one_and_validates_on_the_other(tmp_path, capsys):
    data = make_folder(tmp_path / "train", road_and_car_masks(6))
    validation = make_folder(tmp_path / "val", road_and_car_masks(2))
    split = ["--val-images", validation[1], "--val-masks", validation[3]]
    out = tmp_path / "run"
    status, stdout, stderr = run(cli.main_train, [*data, *split, *TINY, "--max-iter", "1", "--out", str(out)],
                                 capsys)
    assert status == 0, stderr
    assert f"data: folder {tmp_path / 'train' / 'images'} (6 images): 6 training, 2 validation images, 3 classes" \
        in stdout
    pixels = {}
    for split_name, given in (("val", []), ("train", [])):   # the folders come from the weights
        status, stdout, stderr = run(cli.main_evaluate, ["--weights", str(out / "final.h5"), *given, "--split",
                                                         split_name, "--json", str(tmp_path / "m.json")], capsys)
        assert status == 0, stderr
        pixels[split_name] = json.loads((tmp_path / "m.json").read_text())["n_pixels"]
    assert f"--val-images {validation[1]} --val-masks {validation[3]}" in stdout
    assert pixels == {"val": 2 * 12 * 16, "train": 6 * 12 * 16}


@pytest.mark.parametrize("options, message", [
    (["--val-images", "VAL"], "--val-images and --val-masks go together"),
    (["--val-images", "VAL", "--val-masks", "VALMASKS", "--split-file", "val.txt"],
     "give --split-file or --val-images/--val-masks, not both: each says which images validate"),
    (["--val-images", "IMAGES", "--val-masks", "VALMASKS"], "--val-images names the training images' folder"),
])
def test_validation_folders_that_cannot_work_are_one_line(tmp_path, capsys, options, message):
    data = make_folder(tmp_path, road_and_car_masks())
    names = {"VAL": str(tmp_path / "images"), "IMAGES": str(tmp_path / "images") + "/",
             "VALMASKS": str(tmp_path / "masks"), "val.txt": str(tmp_path / "val.txt")}
    status, _, stderr = run(cli.main_train, [*data, *[names.get(option, option) for option in options], *TINY,
                                             "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and stderr.startswith(f"error: {message}") and stderr.count("\n") == 1


def test_a_validation_mask_value_past_the_training_classes_is_named(tmp_path, capsys):
    data = make_folder(tmp_path / "train", road_and_car_masks())
    masks = road_and_car_masks(2)
    masks[1][0, 0] = 3   # a class the training masks never show
    validation = make_folder(tmp_path / "val", masks)
    status, _, stderr = run(cli.main_train, [*data, "--val-images", validation[1], "--val-masks", validation[3],
                                             *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'val' / 'masks' / '01.png'}: value 3 is larger than any in the training "
                      f"masks {tmp_path / 'train' / 'masks'} (at most 2), so the model would have no such class: "
                      f"give --class-names to fix the classes\n")


@pytest.mark.parametrize("option", ["--classes", "--class-map"])
def test_an_empty_class_option_is_refused_not_taken_for_absent(tmp_path, capsys, option):
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, option, " ", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2 and stderr.startswith(f"error: {option} is empty: name what to keep, e.g. ")


def test_class_names_given_twice_on_the_command_line_are_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background,road,road", *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == "error: --class-names names 'road' twice: each class needs a name of its own\n"


def test_classes_together_with_a_class_map_is_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, "--classes", "1", "--class-map", "1:1,*:0", *TINY, "--max-iter",
                                             "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == "error: give --classes or --class-map, not both (--classes is a short form of a class map)\n"


def test_predict_and_evaluate_see_images_at_the_scale_the_weights_were_trained_at(tmp_path, capsys):
    from fcnlite.evaluate import predict_image
    from fcnlite.train import fit_size
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    status, _, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car", *TINY, "--max-iter", "1",
                                             "--max-side", "10", "--out", str(out)], capsys)
    assert status == 0, stderr
    weights = str(out / "final.h5")
    photo = numpy.random.default_rng(9).integers(0, 255, (30, 45, 3), dtype=numpy.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    note = (f"note: {weights} was trained on images of at most 10 pixels a side: larger ones are downscaled to that "
            f"(--max-side 0 keeps them whole)")
    model = fcnlite.model_from_file(weights)
    for given, side in (([], 10), (["--max-side", "0"], 0)):
        status, stdout, stderr = run(cli.main_predict, ["--weights", weights, str(tmp_path / "photo.png"), "--out",
                                                        str(tmp_path / f"pred{side}"), "--device", "cpu", *given], capsys)
        assert status == 0, stderr
        assert (note in stdout) == (side == 10)
        labels = numpy.asarray(Image.open(tmp_path / f"pred{side}" / "photo_labels.png"))
        expected = predict_image(model, fit_size(photo, None, max_side=side)[0])
        expected = numpy.asarray(Image.fromarray(expected).resize((45, 30), Image.NEAREST))
        numpy.testing.assert_array_equal(labels, expected)
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, *data, "--class-names",
                                                     "background,road,car", "--device", "cpu"], capsys)
    assert status == 0 and note in stdout, stderr


@pytest.mark.parametrize("failing_write, name, kept", [(2, "best.h5", 1), (3, "checkpoint.h5", 1), (4, "final.h5", 2)])
def test_a_disk_that_fills_mid_run_stops_it_in_one_line_keeping_the_last_checkpoint_and_the_run_resumes(
        tmp_path, capsys, monkeypatch, failing_write, name, kept):
    import shutil
    from fcnlite import io
    from fcnlite.checkpoint import read_checkpoint_state
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    common = [*data, *TINY, "--max-iter", "2", "--checkpoint-every", "1", "--out", str(out)]
    disk_usage, writes = shutil.disk_usage, []

    def filling(path):   # the writes: checkpoint 1; at the end best.h5 (the evaluation), checkpoint 2, final.h5
        writes.append(path)
        usage = disk_usage(path)
        return usage._replace(free=usage.free if len(writes) < failing_write else 1000)
    monkeypatch.setattr(io.shutil, "disk_usage", filling)
    status, _, stderr = run(cli.main_train, common, capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: cannot write {out / name} (no space left on device: it needs ")
    assert stderr.endswith(f" MB, 0.0 MB are free); the checkpoint of iteration {kept} is kept: once the file can be "
                           f"written, rerun with --resume --out {out}\n")
    assert not [entry for entry in os.listdir(out) if entry.startswith(".tmp-")]
    assert read_checkpoint_state(out / "checkpoint.h5")["iteration"] == kept
    monkeypatch.undo()   # room again
    status, stdout, stderr = run(cli.main_train, [*common, "--resume"], capsys)
    assert status == 0, stderr
    assert fcnlite.model_from_file(out / "final.h5").n_classes == 3
    with open(out / "log.jsonl") as file:
        assert [json.loads(line).get("iteration") for line in file if "loss" in line] == [1, 2]


def test_a_progress_picture_or_log_line_that_cannot_be_written_stops_the_run_in_one_line(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    out.mkdir()
    (out / "progress").write_text("a file where the pictures' folder goes")
    common = [*data, *TINY, "--max-iter", "2", "--checkpoint-every", "1", "--out", str(out)]
    status, _, stderr = run(cli.main_train, common, capsys)
    assert status == 2
    assert stderr == (f"error: cannot write {out / 'progress'} (file exists); the checkpoint of iteration 1 is kept: "
                      f"once the file can be written, rerun with --resume --out {out}\n")
    (out / "progress").unlink()
    status, stdout, stderr = run(cli.main_train, [*common, "--resume"], capsys)
    assert status == 0, stderr
    assert "final: mean IU" in stdout and (out / "final.h5").exists()


def test_a_full_disk_at_resume_leaves_the_runs_log_whole(tmp_path, capsys, monkeypatch):
    import shutil
    from fcnlite import io
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    assert run(cli.main_train, [*data, *TINY, "--max-iter", "2", "--out", str(out)], capsys)[0] == 0
    log = (out / "log.jsonl").read_text()
    usage = shutil.disk_usage(out)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    status, _, stderr = run(cli.main_train, ["--resume", "--out", str(out), "--max-iter", "3"], capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"error: cannot write {out / 'log.jsonl'} (no space left on device: it needs ")
    assert stderr.endswith(f"; the checkpoint of iteration 2 is kept: once the file can be written, rerun with "
                           f"--resume --out {out}\n")
    assert (out / "log.jsonl").read_text() == log
    assert not [name for name in os.listdir(out) if name.startswith(".tmp-")]


def test_resuming_from_a_weight_file_or_from_a_checkpoint_holding_nan_is_one_line(tmp_path, capsys):
    import shutil
    import h5py
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    common = [*data, *TINY, "--out", str(out)]
    status, _, stderr = run(cli.main_train, [*common, "--max-iter", "1"], capsys)
    assert status == 0, stderr
    shutil.copy(out / "checkpoint.h5", tmp_path / "good.h5")
    shutil.copy(out / "final.h5", out / "checkpoint.h5")
    status, stdout, stderr = run(cli.main_train, [*common, "--max-iter", "2", "--resume"], capsys)
    assert status == 2 and "training fcn8s" not in stdout
    assert stderr == (f"error: {out / 'checkpoint.h5'}: a weight file (as final.h5 is), not a training checkpoint: "
                      f"a run resumes from the checkpoint.h5 it wrote; to start a new run from these weights, "
                      f"pass --init\n")
    shutil.copy(tmp_path / "good.h5", out / "checkpoint.h5")
    with h5py.File(out / "checkpoint.h5", "r+") as file:
        file["model/conv1_1/W"][0, 0, 0, :2] = numpy.nan
    status, stdout, stderr = run(cli.main_train, [*common, "--max-iter", "2", "--resume"], capsys)
    assert status == 2 and "training fcn8s" not in stdout
    assert stderr == (f"error: {out / 'checkpoint.h5'}: checkpoint array model/conv1_1/W holds 2 values that are "
                      f"NaN or infinite: training cannot go on from it\n")


@pytest.mark.parametrize("bad", ["attribute", "folder"])
def test_weights_that_cannot_be_used_stop_predict_evaluate_and_train_init_in_one_line(tmp_path, capsys, weights, bad):
    import h5py
    if bad == "folder":
        path = tmp_path / "imgs"
        path.mkdir()
        message = f"{path} is a folder, not a weight file"
    else:
        with h5py.File(weights, "r+") as file:   # as a user editing a copy of final.h5 might
            file.attrs["std"] = [1.0, 0.0, 1.0]
        path = weights
        message = f"{weights}: attribute std is [1.0, 0.0, 1.0], expected 3 numbers, one per channel, none of them 0"
    data = make_folder(tmp_path / "data", road_and_car_masks())
    for main, argv in [(cli.main_predict, ["--weights", str(path), str(tmp_path / "photo.png"),
                                           "--out", str(tmp_path / "p"), "--device", "cpu"]),
                       (cli.main_evaluate, ["--weights", str(path), *data, "--device", "cpu"]),
                       (cli.main_train, [*data, *TINY, "--init", str(path), "--max-iter", "1",
                                         "--out", str(tmp_path / "run")])]:
        status, _, stderr = run(main, argv, capsys)
        assert (status, stderr) == (2, f"error: {message}\n"), main.__name__


@pytest.mark.parametrize("listed, hint", [
    ("01.png", ": ids are file stems, without folder or extension: write '01'"),
    ("images/01", ": ids are file stems, without folder or extension: write '01'"),
    # a stem with a dot of its own: '01' is not what it means
    ("01.5", " (ids are file stems, without folder or extension, such as '00')")])
def test_a_split_file_of_file_names_or_paths_says_ids_are_stems(tmp_path, capsys, listed, hint):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "val.txt").write_text(f"{listed}\n")
    status, _, stderr = run(cli.main_train, [*data, "--split-file", str(tmp_path / "val.txt"), *TINY, "--max-iter",
                                             "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'val.txt'}: id '{listed}' has no image/mask pair in {tmp_path / 'images'}"
                      f"{hint}\n")


def test_skip_bad_drops_a_listed_validation_image_without_a_mask_as_it_does_any_other(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "masks" / "02.png").unlink()
    (tmp_path / "val.txt").write_text("01\n02\n")
    common = [*data, "--split-file", str(tmp_path / "val.txt"), *TINY, "--max-iter", "1"]
    status, _, stderr = run(cli.main_train, [*common, "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and stderr.startswith(f"error: {tmp_path / 'images' / '02.png'}: has no mask 02.png")
    status, stdout, stderr = run(cli.main_train, [*common, "--skip-bad", "--out", str(tmp_path / "s")], capsys)
    assert status == 0, stderr
    assert "(5 images): 4 training, 1 validation image" in stdout
    assert f"{tmp_path / 'images' / '02.png'}: has no mask 02.png" in stdout   # reported as dropped


def test_a_split_file_whose_every_image_skip_bad_drops_leaves_nothing_to_validate_on_and_trains_nothing(tmp_path,
                                                                                                        capsys):
    # the validation half would otherwise be a folder of no image, or, unsplit, every image trains unchecked
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "masks" / "02.png").unlink()
    (tmp_path / "val.txt").write_text("02\n")
    out = tmp_path / "r"
    status, _, stderr = run(cli.main_train, [*data, "--split-file", str(tmp_path / "val.txt"), "--skip-bad", *TINY,
                                             "--max-iter", "1", "--out", str(out)], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'val.txt'}: none of its images has a mask in {tmp_path / 'masks'}: "
                      f"nothing to validate on\n")
    assert not out.exists()


def test_a_split_file_listing_an_id_twice_is_refused(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    (tmp_path / "val.txt").write_text("04\n05\n04\n")
    status, _, stderr = run(cli.main_train, [*data, "--split-file", str(tmp_path / "val.txt"), *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == f"error: {tmp_path / 'val.txt'}: id '04' is listed twice: each image goes in a split once\n"


@pytest.mark.parametrize("name", ["names.json", "names.txt", os.path.join("lists", "names")])
def test_class_names_naming_a_file_that_is_not_there_say_so(tmp_path, capsys, name):
    data = make_folder(tmp_path, road_and_car_masks())
    missing = str(tmp_path / name)
    status, _, stderr = run(cli.main_train, [*data, "--class-names", missing, *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and stderr == f"error: {missing}: no such file\n"


def test_a_list_of_class_names_may_hold_a_slash(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks())
    status, stdout, stderr = run(cli.main_train, [*data, "--class-names", "background,road,car/truck", *TINY,
                                                  "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 0, stderr
    assert fcnlite.model_from_file(tmp_path / "r" / "final.h5").class_names == ["background", "road", "car/truck"]


@pytest.mark.parametrize("names", ["background,,car", "background,road,", "background, ,car"])
def test_an_empty_class_name_on_the_command_line_is_refused(tmp_path, capsys, names):
    data = make_folder(tmp_path, road_and_car_masks())
    status, _, stderr = run(cli.main_train, [*data, "--class-names", names, *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: --class-names '{names}' has an empty name: each class needs one (names go between "
                      f"commas, e.g. 'background,road')\n")


def test_more_class_names_on_the_command_line_than_a_label_map_holds_are_refused(tmp_path, capsys):
    # class 255 would be the ignore value: a model of 256 classes could never be shown its last one
    data = make_folder(tmp_path, road_and_car_masks())
    common = [*data, *TINY, "--max-iter", "1"]
    names = ",".join(f"c{index}" for index in range(256))
    status, _, stderr = run(cli.main_train, [*common, "--class-names", names, "--out", str(tmp_path / "r")], capsys)
    assert (status, stderr) == (2, "error: --class-names names 256 classes: at most 255 fit an 8-bit label map\n")
    assert not (tmp_path / "r").exists()
    status, _, stderr = run(cli.main_train, [*common, "--class-names", names.rsplit(",", 1)[0], "--out",
                                             str(tmp_path / "s")], capsys)
    assert status == 0, stderr   # 255 names, 0..254: the most that fit
    assert len(fcnlite.model_from_file(tmp_path / "s" / "final.h5").class_names) == 255


@pytest.mark.parametrize("option, file_name, kind", [
    ("--class-names", "names.json", ""), ("--class-names", "names.txt", "class-name file "),
    ("--split-file", "val.txt", "split file "), ("--color-table", "colors.json", "")])
def test_a_text_file_that_is_not_utf8_is_one_line(tmp_path, capsys, option, file_name, kind):
    data = make_folder(tmp_path / "data", road_and_car_masks(), color=option == "--color-table")
    text = {"names.json": '["background", "road", "café"]', "names.txt": "background\nroad\ncafé\n",
            "val.txt": "04\n# café\n05\n", "colors.json": '{"background": [0, 0, 0], "road": [128, 64, 128], '
                                                          '"café": [0, 0, 142]}'}[file_name]
    (tmp_path / file_name).write_bytes(text.encode("latin-1"))
    formats = ["--mask-format", "color"] if option == "--color-table" else []
    status, _, stderr = run(cli.main_train, [*data, *formats, option, str(tmp_path / file_name), *TINY,
                                             "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == f"error: {tmp_path / file_name}: {kind}is not UTF-8 text: save it as UTF-8\n"


def test_a_single_image_cannot_be_split_and_the_message_says_what_to_do(tmp_path, capsys):
    data = make_folder(tmp_path, road_and_car_masks(1))
    status, _, stderr = run(cli.main_train, [*data, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'images'}: holds one image with a mask: too few to hold one out for "
                      f"validation; add images, or give validation images of their own (--val-images, --val-masks)\n")


def test_a_split_file_of_every_image_leaves_none_to_train_on_but_evaluates_them_all(tmp_path, capsys, weights):
    data = make_folder(tmp_path / "data", road_and_car_masks())
    (tmp_path / "val.txt").write_text("".join(f"{index:02d}\n" for index in range(6)))
    split = ["--split-file", str(tmp_path / "val.txt")]
    status, _, stderr = run(cli.main_train, [*data, *split, *TINY, "--max-iter", "1", "--out", str(tmp_path / "r")],
                            capsys)
    assert status == 2
    assert stderr == (f"error: {tmp_path / 'val.txt'}: lists every image of {tmp_path / 'data' / 'images'} for "
                      f"validation: it leaves no image to train on\n")
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(weights), *data, *split, "--class-names",
                                                "background,road,car", "--device", "cpu", "--json",
                                                str(tmp_path / "m.json")], capsys)
    assert status == 0, stderr
    assert json.loads((tmp_path / "m.json").read_text())["n_pixels"] == 6 * 12 * 16


@pytest.mark.parametrize("option", ["--synthetic", "--synthetic-road"])
def test_generated_data_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch, option):
    root = tmp_path / "read-only"
    make_folders = os.makedirs

    def refuse_under_root(path, *args, **kwargs):   # what a read-only --data-root does, for root too
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied", str(path))
        return make_folders(path, *args, **kwargs)
    monkeypatch.setattr(os, "makedirs", refuse_under_root)
    status, _, stderr = run(cli.main_train, [option, "--data-root", str(root), *TINY, "--max-iter", "1",
                                             "--out", str(tmp_path / "r")], capsys)
    assert status == 2
    assert stderr == (f"error: {root}: cannot write the generated data here (permission denied): "
                      f"choose another --data-root\n")


def test_vgg16_weights_are_one_line_for_predict_and_evaluate(tmp_path, capsys):
    # both ended in a traceback from the palette, or promised a class count of None
    path = tmp_path / "vgg16.h5"
    fcnlite.save_weights(fcnlite.VGG16(width=1 / 16, n_classes=1000), path)
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(tmp_path / "photo.png")
    expected = (f"error: {path} holds VGG16's weights (ImageNet classification), not a segmentation model: train an "
                f"FCN from them (train_voc.py --init {path}) and give its final.h5\n")
    status, _, stderr = run(cli.main_predict, ["--weights", str(path), str(tmp_path / "photo.png"),
                                               "--out", str(tmp_path / "p")], capsys)
    assert (status, stderr) == (2, expected)
    status, _, stderr = run(cli.main_evaluate, ["--weights", str(path), "--synthetic",
                                                "--data-root", str(tmp_path / "data")], capsys)
    assert (status, stderr) == (2, expected)


def test_predict_with_a_model_of_more_classes_than_a_label_map_holds_is_one_line(tmp_path, capsys):
    path = tmp_path / "model.h5"
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=300, width=1 / 16), path)
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(tmp_path / "photo.png")
    status, _, stderr = run(cli.main_predict, ["--weights", str(path), str(tmp_path / "photo.png"),
                                               "--out", str(tmp_path / "p")], capsys)
    assert (status, stderr) == (2, f"error: {path}: the model scores 300 classes, more than predict's 8-bit label "
                                   f"maps hold (at most 255, 0..254: 255 is void): segment with "
                                   f"fcnlite.evaluate.predict_image in Python instead\n")


def test_evaluate_sees_images_at_the_size_the_run_resized_them_to_and_scores_as_its_own_evaluation(tmp_path, capsys):
    # it capped the longer side only, keeping the aspect ratio: not what the run was trained and evaluated on
    data = make_folder(tmp_path, road_and_car_masks())
    out = tmp_path / "run"
    names = ["--class-names", "background,road,car"]
    status, _, stderr = run(cli.main_train, [*data, *names, *TINY, "--max-iter", "2", "--resize", "12x20",
                                             "--max-side", "16", "--out", str(out)], capsys)   # (--resize wins)
    assert status == 0, stderr
    weights = str(out / "final.h5")
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, "--device", "cpu", "--no-progress",
                                                     "--json", str(tmp_path / "m.json")], capsys)
    assert status == 0, stderr
    assert (f"note: {weights} was trained on images resized to 12x20: so are these (--max-side 0 keeps them "
            f"whole)") in stdout
    last = [json.loads(line) for line in open(out / "log.jsonl") if '"eval"' in line][-1]
    assert json.load(open(tmp_path / "m.json"))["mean_iu"] == pytest.approx(last["mean_iu"], abs=1e-12)
    status, stdout, stderr = run(cli.main_evaluate, ["--weights", weights, "--device", "cpu", "--no-progress",
                                                     "--max-side", "0"], capsys)
    assert status == 0 and "resized to" not in stdout, stderr
    assert fcnlite.io.read_attributes(weights)["train_max_side"] == 20   # what training saw, not --max-side


def test_predict_sees_photos_at_the_size_the_run_resized_them_to_and_labels_them_at_their_own(tmp_path, capsys,
                                                                                           monkeypatch):
    # it capped the longer side at the run's largest only: a 30x90 photo was seen as 7x20, not 12x20
    weights = tmp_path / "final.h5"
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=3, width=1 / 16), weights,
                         extra_attributes={"train_resize": [12, 20], "train_max_side": 20})   # as --resize 12x20 saves
    Image.fromarray(numpy.zeros((30, 90, 3), numpy.uint8)).save(tmp_path / "wide.png")
    seen = []
    predict_scores = fcnlite.models.base.Model.predict_scores
    monkeypatch.setattr(fcnlite.models.base.Model, "predict_scores",
                        lambda model, x: seen.append(x.shape[2:]) or predict_scores(model, x))
    for options, size in (([], (12, 20)), (["--resize", "10x30"], (10, 30)), (["--max-side", "45"], (15, 45))):
        status, stdout, stderr = run(cli.main_predict, ["--weights", str(weights), str(tmp_path / "wide.png"), "--out",
                                                        str(tmp_path / "p"), "--device", "cpu", *options], capsys)
        assert status == 0, stderr
        assert ("was trained on images resized to 12x20: so are these" in stdout) == (options == [])
        assert seen.pop() == size
        assert Image.open(tmp_path / "p" / "wide_labels.png").size == (90, 30)   # back at the photo's size


def test_predict_draws_the_classes_in_the_colours_the_weights_carry(tmp_path, capsys):
    model = fcnlite.FCN8s(n_classes=3, width=1 / 16)
    model.class_names = ["background", "road", "car"]
    model.class_colors = [[10, 20, 30], [128, 64, 128], [0, 0, 142]]   # a colour table's, as training saves it
    for name, value, _ in model.named_parameters():   # every pixel: road
        if name.startswith("score_fr"):
            value[...] = 0
            if name.endswith("b"):
                value[1] = 1
    fcnlite.save_weights(model, tmp_path / "road.h5")
    Image.fromarray(numpy.zeros((20, 24, 3), numpy.uint8)).save(tmp_path / "street.png")
    status, _, stderr = run(cli.main_predict, ["--weights", str(tmp_path / "road.h5"), str(tmp_path / "street.png"),
                                               "--out", str(tmp_path / "p"), "--device", "cpu", "--alpha", "1"], capsys)
    assert status == 0, stderr
    labels = Image.open(tmp_path / "p" / "street_labels.png")
    assert numpy.asarray(labels).max() == 1 and labels.getpalette()[:9] == [10, 20, 30, 128, 64, 128, 0, 0, 142]
    overlay = numpy.asarray(Image.open(tmp_path / "p" / "street_overlay.png"))
    assert tuple(overlay[10, 12]) == (128, 64, 128)   # the road's colour over the photo, at full opacity


def test_output_piped_into_a_program_that_stops_reading_goes_nowhere_and_the_program_on(tmp_path):
    # evaluate_voc.py ... | head -3 ended in a BrokenPipeError traceback, before writing its --json
    import subprocess
    code = ("import sys\nfrom fcnlite.cli import run_main\n"
            "def main(argv):\n    for line in range(100000):\n        print('metrics', line)\n"
            f"    open({str(tmp_path / 'metrics.json')!r}, 'w').write('{{}}')\n"
            "sys.exit(run_main(main))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, PYTHONPATH=root))
    assert process.stdout.readline() == b"metrics 0\n"
    process.stdout.close()   # as head does, having read its lines
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b"" and (tmp_path / "metrics.json").read_text() == "{}"
    # the same through stderr (tqdm's bars: train_voc.py ... 2>&1 | head -1 stopped at iteration 0), and a
    # last output still in the buffer when the program ends
    (tmp_path / "metrics.json").unlink()
    code = code.replace("print('metrics', line)", "print('metrics', line, file=sys.stderr)")
    code = code.replace("    open(", "    print('done: ' + 'x' * 20000)\n    open(")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=dict(os.environ, PYTHONPATH=root))
    assert process.stdout.readline() == b"metrics 0\n"
    process.stdout.close()
    assert process.wait(timeout=60) == 0 and (tmp_path / "metrics.json").read_text() == "{}"


def test_predict_says_which_probabilities_of_an_earlier_run_lie_beside_labels_it_wrote_anew(tmp_path, capsys):
    # model B's labels lay beside model A's probabilities without a word; they are kept (they may be wanted)
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=2, width=1 / 16), tmp_path / "two.h5")
    Image.fromarray(numpy.zeros((10, 12, 3), numpy.uint8)).save(tmp_path / "photo.png")
    out = tmp_path / "p"
    predict = ["--weights", str(tmp_path / "two.h5"), str(tmp_path / "photo.png"), "--out", str(out)]
    assert run(cli.main_predict, [*predict, "--probabilities"], capsys)[0] == 0
    written = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert sorted(written) == ["photo_foreground.png", "photo_labels.png", "photo_overlay.png",
                               "photo_probabilities.npy"]
    status, stdout, stderr = run(cli.main_predict, predict, capsys)
    assert status == 0, stderr
    assert (f"note: 2 files that an earlier run wrote ({out / 'photo_probabilities.npy'}, ...) lie beside labels "
            f"this run wrote anew: they may be another model's\n") in stdout
    assert {name: (out / name).read_bytes() for name in ("photo_foreground.png", "photo_probabilities.npy")} == {
        name: written[name] for name in ("photo_foreground.png", "photo_probabilities.npy")}
    assert run(cli.main_predict, [*predict, "--probabilities"], capsys)[0] == 0
    status, stdout, _ = run(cli.main_predict, [*predict, "--probabilities"], capsys)   # all written anew: no note
    assert status == 0 and "earlier run" not in stdout
    # only predict's own files are said to be an earlier run's: a grey picture of the user's under that name is not
    (out / "photo_probabilities.npy").unlink()
    Image.fromarray(numpy.full((10, 12), 7, numpy.uint8)).save(out / "photo_foreground.png")
    mine = (out / "photo_foreground.png").read_bytes()
    status, stdout, stderr = run(cli.main_predict, predict, capsys)
    assert status == 0, stderr
    assert "earlier run" not in stdout and (out / "photo_foreground.png").read_bytes() == mine
