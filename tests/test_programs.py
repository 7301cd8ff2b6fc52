"""examples/evaluate_voc.py and examples/predict.py run as a user runs them, on files the test makes."""
import json

import numpy
import pytest
from PIL import Image

import fcnlite
from fcnlite.data.synthetic import make_synthetic_voc
from fcnlite.data.voc import VOCSegmentation
from fcnlite.evaluate import predict_image
from programs import run_example


def run(script, args, cwd):
    return run_example(script, args, cwd, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny FCN-8s with random (non-zero) score layers, saved with class names, and a VOC-layout tree."""
    folder = tmp_path_factory.mktemp("programs")
    make_synthetic_voc(str(folder / "voc"), n_train=2, n_val=4, size=(30, 44), seed=5)
    fcnlite.rng.seed(1)
    model = fcnlite.FCN8s(n_classes=21, width=1 / 16)
    for name, value, _ in model.named_parameters():
        if name.startswith("score"):
            value[...] = numpy.random.default_rng(len(name)).normal(0, 0.5, value.shape)
    # background, most of the synthetic labels, wins about half the pixels: without it no prediction matched a
    # label, and evaluate's metrics were 0 whatever it predicted
    model.layers["score_fr"].params["b"][0] += 250
    model.class_names = list(fcnlite.data.VOC_CLASSES)
    weights = str(folder / "model.h5")
    fcnlite.save_weights(model, weights)
    return folder, weights


def labels_from_scores(model, image):
    """Each pixel's most probable class, from the model's scores of the photo preprocessed here: not by
    fcnlite.evaluate.predict_image, which the programs themselves call (a fault in it would be on both sides)."""
    scores = model.predict_scores(fcnlite.data.preprocess(image, model.preprocessing)[None])[0]
    return scores.argmax(axis=0)


def papers_metrics(matrix):
    """Pixel accuracy, mean accuracy, mean IU and frequency-weighted IU of a confusion matrix (rows truth),
    by the FCN paper's formulas; classes of no pixel (0/0) are left out of the means."""
    correct, truth, predicted = numpy.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        accuracy = correct / truth
        iu = correct / (truth + predicted - correct)
    present = ~numpy.isnan(iu)
    return {"pixel_accuracy": correct.sum() / truth.sum(), "mean_accuracy": numpy.nanmean(accuracy),
            "mean_iu": numpy.nanmean(iu), "fwiu": (truth[present] / truth.sum() * iu[present]).sum()}


def test_evaluate_writes_the_papers_metrics_equal_to_an_independent_count(trained):
    folder, weights = trained
    result = run("evaluate_voc.py", ["--weights", weights, "--data-root", str(folder / "voc"), "--device", "cpu",
                                     "--json", str(folder / "metrics.json")], folder)
    assert result.returncode == 0, result.stderr
    assert "mean IU" in result.stdout or "mean_iu" in result.stdout
    with open(folder / "metrics.json") as file:
        metrics = json.load(file)
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fwiu", "per_class_iu"):
        assert key in metrics
    assert set(metrics["per_class_iu"]) == set(fcnlite.data.VOC_CLASSES)

    # the count made here from the model's scores and numpy.bincount, not by predict_image and ConfusionMatrix,
    # which evaluate_voc.py runs: a photo preprocessed wrongly there (its channels in the other order) was
    # counted the same wrong way here, and the test passed
    model = fcnlite.model_from_file(weights)
    dataset = VOCSegmentation(str(folder / "voc"), "val")
    matrix = numpy.zeros((21, 21), dtype=numpy.int64)
    for index in range(len(dataset)):
        image, label = dataset.load(index)
        counted = label != 255
        matrix += numpy.bincount(21 * label[counted].astype(numpy.int64) + labels_from_scores(model, image)[counted],
                                 minlength=21 * 21).reshape(21, 21)
    expected = papers_metrics(matrix)
    assert 0.1 < expected["pixel_accuracy"] < 0.9 and expected["mean_iu"] > 0   # pixels right and wrong: metrics that tell
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fwiu"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-12)
    assert "evaluate:" in result.stderr   # the progress bar, which --no-progress leaves out as train_voc.py does
    quiet = run("evaluate_voc.py", ["--weights", weights, "--data-root", str(folder / "voc"), "--device", "cpu",
                                    "--no-progress"], folder)
    assert quiet.returncode == 0 and "evaluate:" not in quiet.stderr and "mean IU" in quiet.stdout


def test_predict_writes_a_palette_label_map_and_an_overlay_for_images_of_any_size(trained):
    folder, weights = trained
    Image.fromarray(numpy.random.default_rng(0).integers(0, 255, (23, 57, 3), dtype=numpy.uint8)).save(folder / "a.jpg")
    Image.fromarray(numpy.random.default_rng(1).integers(0, 255, (9, 5), dtype=numpy.uint8)).save(folder / "b.png")
    out = folder / "pred"
    result = run("predict.py", ["--weights", weights, str(folder / "a.jpg"), str(folder / "b.png"),
                                "--out", str(out), "--device", "cpu"], folder)
    assert result.returncode == 0, result.stderr
    model = fcnlite.model_from_file(weights)
    for stem, (height, width) in (("a", (23, 57)), ("b", (9, 5))):
        labels = Image.open(out / f"{stem}_labels.png")
        assert labels.mode == "P" and labels.size == (width, height)
        image = numpy.asarray(Image.open(folder / ("a.jpg" if stem == "a" else "b.png")).convert("RGB"))
        # against the scores' argmax made here: predict_image is what predict.py itself runs
        numpy.testing.assert_array_equal(numpy.asarray(labels), labels_from_scores(model, image))
        overlay = Image.open(out / f"{stem}_overlay.png")
        assert overlay.width > width and overlay.height >= height   # photo plus legend


def test_predict_writes_class_probabilities_whose_most_probable_class_is_the_label(trained, tmp_path):
    folder, weights = trained
    photo = numpy.random.default_rng(2).integers(0, 255, (23, 31, 3), dtype=numpy.uint8)
    Image.fromarray(photo).save(tmp_path / "c.png")
    result = run("predict.py", ["--weights", weights, str(tmp_path / "c.png"), "--out", str(tmp_path / "pred"),
                                "--device", "cpu", "--probabilities"], folder)
    assert result.returncode == 0, result.stderr
    probabilities = numpy.load(tmp_path / "pred" / "c_probabilities.npy")
    assert probabilities.dtype == numpy.float16 and probabilities.shape == (21, 23, 31)
    numpy.testing.assert_allclose(probabilities.astype(numpy.float64).sum(axis=0), 1, atol=2e-2)
    # the softmax of the scores, computed here in float64 from the model's own forward pass
    model = fcnlite.model_from_file(weights)
    x = fcnlite.data.preprocess(photo, model.preprocessing)[None]
    scores = model.predict_scores(x)[0].astype(numpy.float64)
    expected = numpy.exp(scores - scores.max(axis=0)) / numpy.exp(scores - scores.max(axis=0)).sum(axis=0)
    numpy.testing.assert_allclose(probabilities, expected, atol=1e-3)
    numpy.testing.assert_array_equal(numpy.asarray(Image.open(tmp_path / "pred" / "c_labels.png")),
                                     predict_image(model, photo))
    assert not (tmp_path / "pred" / "c_foreground.png").exists()   # 21 classes: no single foreground


def test_predict_probabilities_of_two_classes_give_a_foreground_map_at_the_photos_size(tmp_path):
    fcnlite.rng.seed(2)   # (a random model that labels about half the photo foreground)
    model = fcnlite.FCN8s(n_classes=2, width=1 / 16)
    model.preprocessing = dict(fcnlite.data.TORCHVISION_PREPROCESSING)   # unit-scale inputs: no saturated softmax
    for name, value, _ in model.named_parameters():
        if name.startswith("score"):
            value[...] = numpy.random.default_rng(len(name)).normal(0, 0.2, value.shape)
    fcnlite.save_weights(model, tmp_path / "road.h5")
    Image.fromarray(numpy.random.default_rng(3).integers(0, 255, (40, 60, 3), dtype=numpy.uint8)).save(
        tmp_path / "d.png")
    result = run("predict.py", ["--weights", str(tmp_path / "road.h5"), "d.png", "--out", "pred", "--device", "cpu",
                                "--probabilities", "--max-side", "30"], tmp_path)
    assert result.returncode == 0, result.stderr
    probabilities = numpy.load(tmp_path / "pred" / "d_probabilities.npy")
    foreground = numpy.asarray(Image.open(tmp_path / "pred" / "d_foreground.png"))
    assert probabilities.shape == (2, 40, 60) and foreground.shape == (40, 60)   # back at the photo's size
    # the same map in grey: within one level (the .npy holds float16, the PNG was made from float32)
    assert numpy.abs(foreground - probabilities[1].astype(numpy.float64) * 255).max() <= 1
    # and the labels are its most probable classes, also where --max-side shrank the photo (not the
    # small picture's labels enlarged, which differ along the edges)
    labels = numpy.asarray(Image.open(tmp_path / "pred" / "d_labels.png"))
    decided = probabilities[0] != probabilities[1]   # (float16 ties aside)
    numpy.testing.assert_array_equal(labels[decided], probabilities.argmax(axis=0)[decided])
    assert 0 < labels.mean() < 1


def test_predict_turns_a_photo_as_its_exif_orientation_says_and_labels_it_as_shown(trained):
    folder, weights = trained
    stored = numpy.random.default_rng(2).integers(0, 255, (17, 40, 3), dtype=numpy.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6   # a phone's portrait photo: stored sideways, to be turned 90 degrees clockwise
    Image.fromarray(stored).save(folder / "portrait.png", exif=exif.tobytes())
    out = folder / "pred-portrait"
    result = run("predict.py", ["--weights", weights, str(folder / "portrait.png"), "--out", str(out),
                                "--device", "cpu"], folder)
    assert result.returncode == 0, result.stderr
    labels = numpy.asarray(Image.open(out / "portrait_labels.png"))
    upright = numpy.ascontiguousarray(numpy.rot90(stored, k=-1))   # 40 rows, 17 columns
    numpy.testing.assert_array_equal(labels, labels_from_scores(fcnlite.model_from_file(weights), upright))


def test_predict_given_a_folder_segments_each_image_in_it(trained):
    folder, weights = trained
    photos = folder / "photos"
    (photos / "album.png").mkdir(parents=True)   # a folder with an image's name: not an image
    for name, seed in (("b.PNG", 3), ("a.jpg", 4), ("album.png/c.png", 5)):
        Image.fromarray(numpy.random.default_rng(seed).integers(0, 255, (12, 15, 3), dtype=numpy.uint8)).save(photos / name)
    (photos / "notes.txt").write_text("not an image")
    (photos / ".hidden.png").write_bytes(b"")
    out = folder / "pred-folder"
    result = run("predict.py", ["--weights", weights, str(photos), "--out", str(out), "--device", "cpu"], folder)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines() if "->" in line] == \
        [str(photos / "a.jpg"), str(photos / "b.PNG")]   # name order; not the subfolder's, nor other files
    assert sorted(path.name for path in out.iterdir()) == ["a_labels.png", "a_overlay.png", "b_labels.png",
                                                            "b_overlay.png"]
    result = run("predict.py", ["--weights", weights, str(photos / "a.jpg"), str(photos), "--out", str(out),
                                "--device", "cpu"], folder)
    assert result.returncode == 0, result.stderr   # a.jpg named twice: segmented once
    assert [line.split(":")[0] for line in result.stdout.splitlines() if "->" in line] == \
        [str(photos / "a.jpg"), str(photos / "b.PNG")]
    result = run("predict.py", ["--weights", weights, str(photos / "a.jpg"), str(folder / "nothere.png"),
                                "--device", "cpu"], folder)
    assert result.returncode == 2 and "->" not in result.stdout   # refused before any image is segmented
    assert result.stderr.strip() == f"error: {folder / 'nothere.png'}: no such image file or folder"
    (folder / "no-photos").mkdir()
    result = run("predict.py", ["--weights", weights, str(folder / "no-photos"), "--device", "cpu"], folder)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {folder / 'no-photos'}: no image files (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp) in this folder"


def test_predict_names_an_unreadable_image_in_one_line(trained):
    folder, weights = trained
    (folder / "broken.jpg").write_bytes(b"no picture here")
    result = run("predict.py", ["--weights", weights, str(folder / "broken.jpg"), "--out", str(folder / "x")], folder)
    assert result.returncode == 2
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_host_thread_count_is_one_line_naming_the_variable(trained, monkeypatch):
    folder, weights = trained
    Image.fromarray(numpy.zeros((8, 8, 3), dtype=numpy.uint8)).save(folder / "c.png")
    monkeypatch.setenv("FCNLITE_HOST_THREADS", "two")
    # on the CPU, where the host's threads do the copies (a GPU run never reads the variable)
    result = run("predict.py", ["--weights", weights, str(folder / "c.png"), "--out", str(folder / "y"),
                                "--device", "cpu"], folder)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: FCNLITE_HOST_THREADS='two': expected a whole number of threads, "
                                     "1 or more")


def test_evaluate_rejects_a_file_that_is_not_weights_in_one_line(trained):
    folder, _ = trained
    (folder / "fake.h5").write_text("hello")
    result = run("evaluate_voc.py", ["--weights", str(folder / "fake.h5"), "--data-root", str(folder / "voc")], folder)
    assert result.returncode == 2
    assert "fake.h5" in result.stderr and "Traceback" not in result.stderr


def test_predict_goes_on_past_an_unreadable_image_and_says_how_many_it_could_not_read(trained):
    folder, weights = trained
    photos = folder / "mixed"
    photos.mkdir()
    for name, seed in (("a.png", 6), ("c.png", 7)):
        Image.fromarray(numpy.random.default_rng(seed).integers(0, 255, (12, 15, 3), dtype=numpy.uint8)).save(photos / name)
    (photos / "b.jpg").write_text("<html>not a photo</html>")
    out = folder / "pred-mixed"
    result = run("predict.py", ["--weights", weights, str(photos), "--out", str(out), "--device", "cpu"], folder)
    assert result.returncode == 2
    assert sorted(path.name for path in out.iterdir()) == ["a_labels.png", "a_overlay.png", "c_labels.png",
                                                            "c_overlay.png"]
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {photos / 'b.jpg'}: cannot be decoded as an image")
    assert lines[1:] == ["error: 1 of 3 images could not be read (listed above); the others were segmented"]


def test_a_folder_predict_cannot_list_is_one_line(tmp_path, monkeypatch):
    from fcnlite import cli
    from fcnlite.data.errors import DataError

    def refuse(folder):
        raise PermissionError(13, "Permission denied", folder)
    monkeypatch.setattr(cli.os, "listdir", refuse)   # root may list anything: the refusal is made up
    with pytest.raises(DataError, match=r": cannot list the folder \(permission denied\)$"):
        cli.image_paths([str(tmp_path)])


@pytest.mark.parametrize("command", ["fcnlite-train", "fcnlite-evaluate", "fcnlite-predict"])
def test_the_installed_commands_are_the_example_programs(command, trained):
    import shutil
    import subprocess
    path = shutil.which(command)
    if path is None:
        pytest.skip(f"{command} is not on PATH: pip install . puts it there")
    folder, weights = trained
    result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout
    if command == "fcnlite-predict":   # and it runs: one photo segmented, one line per photo
        Image.fromarray(numpy.zeros((12, 16, 3), numpy.uint8)).save(folder / "cmd.png")
        result = subprocess.run([path, "--weights", weights, str(folder / "cmd.png"), "--out",
                                 str(folder / "cmd"), "--device", "cpu"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert (folder / "cmd" / "cmd_labels.png").exists()
