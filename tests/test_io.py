"""HDF5 weight files: exact round trips, rebuilding a model from its file, and one-line errors."""
import errno
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy
import pytest

from fcnlite import WeightsError, backend, load_weights, model_from_file, save_weights
from fcnlite.io import read_attributes
from fcnlite.layers import ConvTranspose2d, bilinear_kernel
from fcnlite.models import FCN8s, build_model

SMALL = 1 / 16


def random_model(architecture="fcn8s", n_classes=3, seed=0, **kwargs):
    """A width-1/16 model with every parameter random (score and upsampling layers included)."""
    model = build_model(architecture, n_classes=n_classes, width=SMALL, **kwargs)
    generator = numpy.random.default_rng(seed)
    for _, value, _ in model.named_parameters():
        value[...] = backend.to_device(generator.standard_normal(value.shape), dtype=value.dtype)
    return model


def host_parameters(model):
    return {name: backend.to_numpy(value).copy() for name, value, _ in model.named_parameters()}


def assert_one_line_naming(error, *parts):
    message = str(error)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, (part, message)


@pytest.mark.parametrize("architecture", ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"])
def test_save_then_load_restores_every_parameter_exactly(xp, tmp_path, architecture):
    path = tmp_path / "model.h5"
    saved = random_model(architecture, seed=1)
    save_weights(saved, path)
    loaded = random_model(architecture, seed=2)
    report = load_weights(loaded, path)
    assert report["loaded"] == [name for name, _, _ in loaded.named_parameters()]
    assert report["missing"] == report["unexpected"] == report["reinitialized"] == []
    expected = host_parameters(saved)
    for name, value in host_parameters(loaded).items():
        numpy.testing.assert_array_equal(value, expected[name], err_msg=name)
    for _, value, _ in loaded.named_parameters():
        assert backend.array_module(value) is xp and value.dtype == numpy.float32


def test_weight_file_layout_is_one_group_per_layer(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn32s"), path)
    with h5py.File(path, "r") as file:
        assert file["conv1_1/W"].shape == (4, 3, 3, 3) and file["conv1_1/W"].dtype == numpy.float32
        assert sorted(file["upscore"]) == ["W"]
        assert file.attrs["architecture"] == "fcn32s" and file.attrs["n_classes"] == 3


@pytest.mark.parametrize("architecture, n_classes", [("fcn32s", 3), ("fcn16s", 5), ("fcn8s", 21),
                                                     ("fcn8s-atonce", 2), ("vgg16", 0), ("vgg16", 7)])
def test_model_from_file_rebuilds_architecture_width_and_classes(tmp_path, architecture, n_classes):
    path = tmp_path / "model.h5"
    saved = random_model(architecture, n_classes=n_classes)
    save_weights(saved, path)
    rebuilt = model_from_file(path)
    assert type(rebuilt) is type(saved)
    assert rebuilt.architecture == architecture
    assert rebuilt.config() == saved.config()
    assert rebuilt.width == SMALL
    expected = host_parameters(saved)
    assert list(host_parameters(rebuilt)) == list(expected)
    for name, value in host_parameters(rebuilt).items():
        numpy.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_model_from_file_rebuilds_a_vgg16_with_its_own_conv1_padding(tmp_path):
    # the original VGG16's padding of 1 (ImageNet checks on 224x224) came back as the FCN's 100: the same
    # weights, another network (fc8 scored a 7x7 map instead of one 1x1 answer)
    path = tmp_path / "vgg16.h5"
    saved = random_model("vgg16", n_classes=5, conv1_padding=1)
    save_weights(saved, path)
    rebuilt = model_from_file(path)
    assert rebuilt.conv1_padding == 1 and rebuilt.config() == saved.config()
    x = numpy.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(numpy.float32)
    numpy.testing.assert_array_equal(rebuilt.predict_scores(x), saved.predict_scores(x))
    save_weights(random_model("vgg16", n_classes=0), path)   # the FCN encoder's (the converters' files)
    assert model_from_file(path).conv1_padding == 100 and "conv1_padding" not in read_attributes(path)


@pytest.mark.parametrize("architecture", ["fcn32s", "fcn8s-atonce"])
def test_model_from_file_rebuilds_an_fcn_that_trains_its_upsampling_as_one(tmp_path, architecture):
    # the file said nothing of it: the model came back with frozen upscore layers, and training it on in
    # Python left them as they were without a word
    path = tmp_path / "fcn.h5"
    save_weights(random_model(architecture, n_classes=3, learnable_upsampling=True), path)
    rebuilt = model_from_file(path)
    upscores = [layer for name, layer in rebuilt.layers.items() if name.startswith("upscore")]
    assert rebuilt.learnable_upsampling and upscores and not any(layer.frozen for layer in upscores)
    save_weights(random_model(architecture, n_classes=3), path)   # the reference's recipe: the files as before
    rebuilt = model_from_file(path)
    assert "learnable_upsampling" not in read_attributes(path)
    assert not rebuilt.learnable_upsampling and all(layer.frozen for layer in rebuilt.layers.values()
                                                    if isinstance(layer, ConvTranspose2d))


def test_preprocessing_and_class_names_round_trip(tmp_path):
    path = tmp_path / "model.h5"
    saved = random_model("fcn16s")
    saved.preprocessing = {"channel_order": "RGB", "input_scale": 1 / 255,
                           "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    saved.class_names = ["background", "cat", "dog"]
    save_weights(saved, path, extra_attributes={"source": "unit test"})
    for loaded in (model_from_file(path), random_model("fcn16s", seed=3)):
        load_weights(loaded, path)
        assert loaded.preprocessing == saved.preprocessing
        assert loaded.class_names == saved.class_names
    attributes = read_attributes(path)
    assert attributes["source"] == "unit test" and attributes["fcnlite_format"] == 1


def test_default_preprocessing_is_caffe_vgg16_and_round_trips(tmp_path):
    path = tmp_path / "model.h5"
    saved = random_model("fcn32s")
    save_weights(saved, path)
    loaded = model_from_file(path)
    assert loaded.preprocessing == saved.preprocessing
    assert loaded.preprocessing["channel_order"] == "BGR"
    assert loaded.preprocessing["mean"] == pytest.approx((104.00698793, 116.66876762, 122.67891434))


def test_missing_layer_raises_weights_error_naming_it(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn8s"), path)
    with h5py.File(path, "a") as file:
        del file["score_pool3"]
    with pytest.raises(WeightsError) as raised:
        load_weights(random_model("fcn8s"), path)
    assert_one_line_naming(raised.value, str(path), "score_pool3/W", "(3, 16, 1, 1)")


def test_extra_layer_raises_weights_error_naming_it(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn8s"), path)
    with h5py.File(path, "a") as file:
        file.create_dataset("score_pool2/W", data=numpy.zeros((3, 8, 1, 1), dtype=numpy.float32))
    with pytest.raises(WeightsError) as raised:
        load_weights(random_model("fcn8s"), path)
    assert_one_line_naming(raised.value, str(path), "score_pool2/W", "(3, 8, 1, 1)")


def test_shape_mismatch_raises_weights_error_naming_the_layer_and_both_shapes(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn8s", n_classes=4), path)
    model = random_model("fcn8s", n_classes=3, seed=1)
    before = host_parameters(model)
    with pytest.raises(WeightsError) as raised:
        load_weights(model, path)
    assert_one_line_naming(raised.value, str(path), "score_fr/W", "(4, 256, 1, 1)", "(3, 256, 1, 1)")
    # a load that fails leaves the model as it was, not half overwritten
    for name, value in host_parameters(model).items():
        numpy.testing.assert_array_equal(value, before[name], err_msg=name)


def test_shape_mismatch_in_the_encoder_is_named_too(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn32s"), path)
    with h5py.File(path, "a") as file:
        del file["conv3_2/b"]
        file.create_dataset("conv3_2/b", data=numpy.zeros(17, dtype=numpy.float32))
    with pytest.raises(WeightsError) as raised:
        load_weights(random_model("fcn32s"), path)
    assert_one_line_naming(raised.value, "conv3_2/b", "(17,)", "(16,)")


def test_a_file_that_is_not_hdf5_raises_weights_error(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_text("these are not weights\n")
    with pytest.raises(WeightsError) as raised:
        load_weights(random_model("fcn32s"), path)
    assert_one_line_naming(raised.value, str(path))
    with pytest.raises(WeightsError):
        model_from_file(path)


def test_a_truncated_hdf5_file_raises_weights_error(tmp_path):
    path = tmp_path / "weights.h5"
    save_weights(random_model("fcn8s"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as raised:
        load_weights(random_model("fcn8s"), path)
    assert_one_line_naming(raised.value, str(path))
    with pytest.raises(WeightsError):
        model_from_file(path)


def test_a_missing_file_raises_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_weights(random_model("fcn32s"), tmp_path / "absent.h5")


def test_a_file_without_architecture_cannot_build_a_model(tmp_path):
    path = tmp_path / "bare.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("conv1_1/W", data=numpy.zeros((4, 3, 3, 3), dtype=numpy.float32))
    with pytest.raises(WeightsError, match="architecture"):
        model_from_file(path)


def test_vgg16_weights_fill_the_fcn_encoder_and_leave_the_head_untouched(xp, tmp_path):
    path = tmp_path / "vgg16.h5"
    vgg = random_model("vgg16", n_classes=10)          # with the ImageNet classifier fc8, which FCNs drop
    save_weights(vgg, path)
    fcn = FCN8s(n_classes=3, width=SMALL)
    head_before = {name: value for name, value in host_parameters(fcn).items() if name.split("/")[0] not in fcn.encoder_names}
    report = load_weights(fcn, path)
    encoder = host_parameters(vgg)
    loaded = host_parameters(fcn)
    assert report["loaded"] == [name for name in loaded if name.split("/")[0] in fcn.encoder_names]
    assert len(report["loaded"]) == 30                    # conv1_1 ... conv5_3, fc6, fc7: W and b
    for name in report["loaded"]:
        numpy.testing.assert_array_equal(loaded[name], encoder[name], err_msg=name)
    for name, value in head_before.items():
        numpy.testing.assert_array_equal(loaded[name], value, err_msg=name)
    assert not loaded["score_fr/W"].any()                 # still the reference initialisation
    numpy.testing.assert_array_equal(loaded["upscore8/W"][1, 1], bilinear_kernel(16))


def test_vgg16_file_missing_an_encoder_layer_is_an_error(tmp_path):
    path = tmp_path / "vgg16.h5"
    save_weights(random_model("vgg16", n_classes=0), path)
    with h5py.File(path, "a") as file:
        del file["fc7"]
    with pytest.raises(WeightsError) as raised:
        load_weights(build_model("fcn32s", n_classes=3, width=SMALL), path)
    assert_one_line_naming(raised.value, "fc7/W", "(256, 256, 1, 1)")


def test_non_strict_load_with_other_classes_keeps_the_head_initialised_and_warns(tmp_path, capsys):
    path = tmp_path / "voc.h5"
    trained = random_model("fcn8s", n_classes=21)
    save_weights(trained, path)
    model = FCN8s(n_classes=3, width=SMALL)
    fresh = host_parameters(model)
    capsys.readouterr()
    report = load_weights(model, path, strict=False)
    output = capsys.readouterr().out
    warnings = [line for line in output.splitlines() if "warning" in line]
    assert len(warnings) == 1 and len(output.strip().splitlines()) == 1, output
    for layer in ("score_fr", "score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"):
        assert layer in warnings[0], layer
    loaded = host_parameters(model)
    saved = host_parameters(trained)
    for name, value in loaded.items():
        layer = name.split("/")[0]
        if layer in model.encoder_names:
            numpy.testing.assert_array_equal(value, saved[name], err_msg=name)
        else:
            numpy.testing.assert_array_equal(value, fresh[name], err_msg=name)
            assert name in report["reinitialized"]


def test_non_strict_load_reports_missing_layers_without_raising(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn16s"), path)
    with h5py.File(path, "a") as file:
        del file["score_pool4"]
    model = random_model("fcn16s", seed=5)
    untouched = host_parameters(model)["score_pool4/W"]
    report = load_weights(model, path, strict=False)
    assert report["missing"] == ["score_pool4/W", "score_pool4/b"]
    numpy.testing.assert_array_equal(host_parameters(model)["score_pool4/W"], untouched)


def test_saving_over_a_file_replaces_it_atomically(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn32s", seed=1), path)
    second = random_model("fcn32s", seed=2)
    save_weights(second, path)
    assert os.listdir(tmp_path) == ["model.h5"]          # no temporary file left behind
    numpy.testing.assert_array_equal(host_parameters(model_from_file(path))["fc7/W"], host_parameters(second)["fc7/W"])


def damage(path, dataset_name):
    """Overwrite 16 bytes in the middle of one dataset's stored data, as a bad disk sector would."""
    with h5py.File(path, "r") as file:
        dataset = file[dataset_name]
        chunk = dataset.id.get_chunk_info(0)
        offset = chunk.byte_offset + chunk.size // 2
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(bytes(range(7, 23)))


def test_a_damaged_weight_file_is_an_error_naming_the_layer_not_garbage_loaded(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn32s"), path)
    damage(path, "fc6/W")
    model = random_model("fcn32s", seed=9)
    before = host_parameters(model)
    with pytest.raises(WeightsError) as raised:
        load_weights(model, path)
    assert_one_line_naming(raised.value, str(path), "fc6/W", "damaged")
    after = host_parameters(model)
    for name in before:   # nothing was loaded
        numpy.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_the_checkpoint_is_checksummed_too(tmp_path):
    from fcnlite.checkpoint import load_checkpoint, save_checkpoint
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    path = tmp_path / "checkpoint.h5"
    save_checkpoint(path, model, SGD(model, lr=0.1), {"iteration": 3})
    load_checkpoint(path, model, SGD(model, lr=0.1))   # whole: it reads
    damage(path, "model/conv2_1/W")
    with pytest.raises(WeightsError) as raised:
        load_checkpoint(path, model, SGD(model, lr=0.1))
    assert_one_line_naming(raised.value, str(path), "checkpoint array model/conv2_1/W cannot be read", "damaged")


def test_weights_holding_nan_are_refused_naming_the_layer_and_the_count_when_saved_and_when_loaded(tmp_path):
    from fcnlite.io import write_arrays, model_attributes
    model = random_model("fcn32s")
    model.layers["conv4_1"].params["W"][0, 0, :3, 0] = numpy.nan
    model.layers["conv4_1"].params["W"][1, 0, 0, 0] = numpy.inf
    path = tmp_path / "diverged.h5"
    with pytest.raises(WeightsError) as raised:
        save_weights(model, path)
    assert str(raised.value) == (f"cannot write {path}: conv4_1/W holds 4 values that are NaN or infinite "
                                 f"(load_weights would refuse the file)")
    assert not path.exists()
    # a file written otherwise (an older fcnlite, another program) is refused as it loads
    write_arrays(path, {name: backend.to_numpy(value) for name, value, _ in model.named_parameters()},
                 model_attributes(model))
    with pytest.raises(WeightsError) as raised:
        model_from_file(path)
    assert_one_line_naming(raised.value, str(path), "layer conv4_1/W holds 4 values that are NaN or infinite")


def test_numpy_numbers_in_a_models_preprocessing_and_width_save_and_load_back(tmp_path):
    # the checks before writing must read them as load_weights will: as numbers
    model = FCN8s(n_classes=3, width=numpy.float32(1 / 16))
    model.preprocessing = dict(channel_order="RGB", input_scale=numpy.float32(1 / 255),
                               mean=numpy.array([0.485, 0.456, 0.406]), std=tuple(numpy.float32([0.229, 0.224, 0.225])))
    save_weights(model, tmp_path / "model.h5")
    loaded = model_from_file(tmp_path / "model.h5")
    numpy.testing.assert_allclose(loaded.preprocessing["mean"], [0.485, 0.456, 0.406])
    assert loaded.width == 1 / 16


@pytest.mark.parametrize("change, message", [
    (lambda model: model.preprocessing.update(std=(1.0, 0.0, 1.0)),
     "attribute std is [1.0, 0.0, 1.0], expected 3 numbers, one per channel, none of them 0"),
    (lambda model: setattr(model, "class_names", "road"),
     "model.class_names is 'road', expected a list of names, one per class (3)"),
    (lambda model: setattr(model, "class_names", ["background", "road"]),
     "model.class_names is ['background', 'road'], expected a list of names, one per class (3)"),
])
def test_a_model_that_would_save_a_file_load_weights_refuses_is_refused_before_writing(tmp_path, change, message):
    model = FCN8s(n_classes=3, width=1 / 16)
    change(model)
    with pytest.raises(WeightsError) as raised:
        save_weights(model, tmp_path / "model.h5")
    assert str(raised.value) == f"cannot write {tmp_path / 'model.h5'}: {message}"
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_restores_the_models_preprocessing_and_class_names(tmp_path):
    from fcnlite.checkpoint import load_checkpoint, save_checkpoint
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    model.preprocessing = {"channel_order": "BGR", "input_scale": 1.0, "mean": (103.9, 116.8, 123.7),
                           "std": (1.0, 1.0, 1.0)}   # as a run started from Caffe-converted --init weights
    model.class_names = ["background", "road", "car"]
    save_checkpoint(tmp_path / "checkpoint.h5", model, SGD(model, lr=0.1), {"iteration": 3})
    fresh = random_model("fcn32s", seed=2)
    load_checkpoint(tmp_path / "checkpoint.h5", fresh, SGD(fresh, lr=0.1))
    assert fresh.preprocessing == model.preprocessing and fresh.class_names == model.class_names


def test_a_checkpoint_given_as_weights_says_what_it_is(tmp_path):
    from fcnlite.checkpoint import save_checkpoint
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    path = tmp_path / "my runs" / "checkpoint.h5"
    save_checkpoint(path, model, SGD(model, lr=0.1), {"iteration": 3})
    with pytest.raises(WeightsError) as raised:
        model_from_file(path)
    assert_one_line_naming(raised.value, str(path), "a training checkpoint, not a weight file", "final.h5")
    # the command it gives can be pasted: the folder quoted for the shell
    assert f"train_voc.py --resume --out '{tmp_path / 'my runs'}' --max-iter 3 writes" in str(raised.value)


def test_files_written_before_checksums_still_load(tmp_path):
    """Weight files and checkpoints of earlier versions: plain contiguous datasets, no filter."""
    from fcnlite.checkpoint import load_checkpoint, save_checkpoint
    from fcnlite.io import model_attributes
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as file:
        for key, value in model_attributes(model).items():
            file.attrs[key] = value
        for name, value in host_parameters(model).items():
            file.create_dataset(name, data=value)
    numpy.testing.assert_array_equal(host_parameters(model_from_file(path))["fc6/W"], host_parameters(model)["fc6/W"])

    save_checkpoint(tmp_path / "new.h5", model, SGD(model, lr=0.1), {"iteration": 3})
    with h5py.File(tmp_path / "new.h5", "r") as new, h5py.File(tmp_path / "old-checkpoint.h5", "w") as old:
        for key, value in new.attrs.items():
            old.attrs[key] = value
        def copy_plainly(name, item):   # (visititems stops at a callback's first non-None return)
            if isinstance(item, h5py.Dataset):
                old.create_dataset(name, data=item[()])
        new.visititems(copy_plainly)
    restored = random_model("fcn32s", seed=4)
    assert load_checkpoint(tmp_path / "old-checkpoint.h5", restored, SGD(restored, lr=0.1))["iteration"] == 3
    numpy.testing.assert_array_equal(host_parameters(restored)["fc6/W"], host_parameters(model)["fc6/W"])


def test_weight_files_get_the_usual_mode_and_keep_the_mode_of_the_file_they_replace(tmp_path):
    from fcnlite import io
    path = tmp_path / "model.h5"
    save_weights(random_model("fcn32s"), path)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~io._UMASK   # the temporary file is made 0600
    os.chmod(path, 0o600)                                        # the user's choice survives a new save
    save_weights(random_model("fcn32s"), path)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_scalars_and_empty_arrays_round_trip_through_a_weight_file(tmp_path):
    from fcnlite.io import read_weights, write_arrays
    path = tmp_path / "odd.h5"
    write_arrays(path, {"a/scalar": numpy.float32(2.5), "a/empty": numpy.zeros((0, 3), numpy.float32),
                        "a/W": numpy.arange(6, dtype=numpy.float32).reshape(2, 3)}, {"fcnlite_format": 1})
    arrays, _ = read_weights(path)
    assert arrays["a/scalar"] == 2.5 and arrays["a/empty"].shape == (0, 3)
    numpy.testing.assert_array_equal(arrays["a/W"], numpy.arange(6).reshape(2, 3))


def test_a_quoted_reason_is_one_clean_line():
    from fcnlite.errors import first_line
    assert first_line(KeyError(105)) == "KeyError: 105"
    assert first_line(KeyError("features.28.weight")) == "KeyError: 'features.28.weight'"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(OSError("Unable to open file (file signature not found)\nmore")) == \
        "Unable to open file (file signature not found)"
    assert first_line(RuntimeError("\x1b[1mWeights only load failed.\x1b[0m Re-running")) == \
        "Weights only load failed. Re-running"


def no_room(free):
    """A stand-in for shutil.disk_usage: a disk with `free` bytes left."""
    return lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9 - free, free)


def test_a_disk_without_room_for_the_file_is_refused_before_writing_and_the_old_file_is_kept(tmp_path, monkeypatch):
    from fcnlite import io
    path = tmp_path / "model.h5"
    first = random_model("fcn32s", seed=1)
    save_weights(first, path)
    monkeypatch.setattr(io.shutil, "disk_usage", no_room(300_000))
    with pytest.raises(WeightsError) as raised:
        save_weights(random_model("fcn32s", seed=2), path)
    needed = sum(value.nbytes for _, value, _ in first.named_parameters()) + io.HDF5_OVERHEAD_BYTES
    assert str(raised.value) == (f"cannot write {path} (no space left on device: it needs {needed / 1e6:.1f} MB, "
                                 f"0.3 MB are free)")
    assert os.listdir(tmp_path) == ["model.h5"]
    numpy.testing.assert_array_equal(host_parameters(model_from_file(path))["fc7/W"], host_parameters(first)["fc7/W"])


@pytest.mark.parametrize("failing, error, cause", [
    ("create", PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    ("write", OSError(errno.ENOSPC, "Unable to synchronously write data (file write failed: time = ..."),
     "no space left on device"),
    ("replace", OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
])
def test_a_write_that_fails_is_one_line_naming_the_file_and_leaves_no_temporary_file(tmp_path, monkeypatch,
                                                                                      failing, error, cause):
    from fcnlite import io
    path = tmp_path / "checkpoint.h5"
    path.write_bytes(b"the previous checkpoint")

    def fail(*args, **kwargs):
        raise error

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(b"half a checkpoint")
        if failing == "write":   # as h5py fails, with the errno and HDF5's own words
            fail()
    if failing == "create":
        monkeypatch.setattr(io, "_created", fail)
    if failing == "replace":
        monkeypatch.setattr(io.os, "replace", fail)
    with pytest.raises(WeightsError) as raised:
        io.atomic_write(path, write)
    assert str(raised.value) == f"cannot write {path} ({cause})"
    assert os.listdir(tmp_path) == ["checkpoint.h5"] and path.read_bytes() == b"the previous checkpoint"


def test_a_path_that_cannot_take_a_file_is_refused_naming_what_is_in_the_way(tmp_path, monkeypatch):
    from fcnlite.io import check_writable
    (tmp_path / "afile").write_text("x")
    for path, cause in [(tmp_path, "it is a folder: name the file to write in it"),
                        (tmp_path / "afile" / "x.h5", f"{tmp_path / 'afile'} is a file, not a folder"),
                        (tmp_path / "afile" / "deeper" / "x.h5", f"{tmp_path / 'afile'} is a file, not a folder")]:
        with pytest.raises(WeightsError) as raised:
            check_writable(path)
        assert str(raised.value) == f"cannot write {path} ({cause})"
    check_writable(tmp_path / "new" / "folder" / "x.h5")   # atomic_write makes the folders
    monkeypatch.setattr(os, "access", lambda path, mode: False)   # (root may write anywhere: pretend)
    with pytest.raises(WeightsError) as raised:
        save_weights(random_model("fcn32s"), tmp_path / "x.h5")
    assert str(raised.value) == f"cannot write {tmp_path / 'x.h5'} (no permission to write in {tmp_path})"


def edited_checkpoint(path, edit):
    """A checkpoint of a random FCN-32s, then edited with h5py (as a tester would); returns a fresh model and its
    optimizer to load it into, and that model's parameters before the load."""
    from fcnlite.checkpoint import save_checkpoint
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    save_checkpoint(path, model, SGD(model, lr=0.1), {"iteration": 3})
    with h5py.File(path, "r+") as file:
        edit(file)
    fresh = random_model("fcn32s", seed=2)
    return fresh, SGD(fresh, lr=0.1), host_parameters(fresh)


def replace_dataset(name, value):
    def edit(file):
        if name in file:
            del file[name]
        file.create_dataset(name, data=value)
    return edit


@pytest.mark.parametrize("edit, message", [
    (replace_dataset("momentum/fc7/W", numpy.zeros(2, numpy.float32)),
     "the checkpoint's optimizer state for fc7/W has shape (2,), the model (256, 256, 1, 1)"),
    (replace_dataset("momentum/conv9_9/W", numpy.zeros(2, numpy.float32)),
     "the checkpoint's optimizer state has a buffer for conv9_9/W, which this model does not train"),
    (replace_dataset("model/conv1_1/W", numpy.full((4, 3, 3, 3), numpy.nan, numpy.float32)),
     "checkpoint array model/conv1_1/W holds 108 values that are NaN or infinite: training cannot go on from it"),
    (replace_dataset("momentum/fc6/b", numpy.array([numpy.inf] + [0] * 255, numpy.float32)),
     "checkpoint array momentum/fc6/b holds 1 values that are NaN or infinite: training cannot go on from it"),
    (lambda file: file.attrs.__setitem__("model_inputs", json.dumps(
        {"preprocessing": {"channel_order": "BGR", "input_scale": 1.0, "mean": [0, 0, 0], "std": [1, 0, 1]},
         "class_names": []})), "attribute std is [1, 0, 1], expected 3 numbers, one per channel, none of them 0"),
    (lambda file: file.attrs.__setitem__("model_inputs", json.dumps(
        {"preprocessing": {"channel_order": "BGR"}, "class_names": []})),
     "attribute model_inputs has no 'input_scale'"),
    (lambda file: file.attrs.__setitem__("optimizer", json.dumps({"lr": 0.1, "momentum": 7, "weight_decay": 0})),
     "the checkpoint's optimizer state: momentum is 7: it must be 0..1"),
    (lambda file: file.attrs.__setitem__("optimizer", json.dumps({"lr": "0.1", "momentum": 0.9, "weight_decay": 0})),
     "the checkpoint's optimizer state: lr must be a number, not str '0.1'"),
])
def test_a_checkpoint_that_cannot_go_on_is_refused_in_one_line_and_the_model_is_left_as_it_was(
        tmp_path, edit, message):
    from fcnlite.checkpoint import load_checkpoint
    path = tmp_path / "checkpoint.h5"
    model, optimizer, before = edited_checkpoint(path, edit)
    with pytest.raises(WeightsError) as raised:
        load_checkpoint(path, model, optimizer)
    assert str(raised.value) == f"{path}: {message}"
    for name, value in host_parameters(model).items():
        numpy.testing.assert_array_equal(value, before[name], err_msg=name)


def test_a_weight_file_or_another_hdf5_file_in_the_checkpoints_place_says_what_it_is(tmp_path):
    from fcnlite.checkpoint import load_checkpoint, read_checkpoint_state
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    save_weights(model, tmp_path / "checkpoint.h5")   # final.h5, copied in as checkpoint.h5
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file["model/conv1_1/W"] = numpy.zeros(3)
    for name, message in [("checkpoint.h5", "a weight file (as final.h5 is), not a training checkpoint: a run resumes "
                                            "from the checkpoint.h5 it wrote; to start a new run from these weights, "
                                            "pass --init"),
                          ("other.h5", "not a training checkpoint (it holds no training state)")]:
        for read in (read_checkpoint_state, lambda path: load_checkpoint(path, model, SGD(model, lr=0.1))):
            with pytest.raises(WeightsError) as raised:
                read(tmp_path / name)
            assert str(raised.value) == f"{tmp_path / name}: {message}"


def set_attribute(key, value):
    def edit(file):
        file.attrs[key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (set_attribute("channel_order", "XYZ"), "attribute channel_order is 'XYZ', expected RGB or BGR"),
    (set_attribute("mean", [104.0, 117.0]), "attribute mean is [104.0, 117.0], expected 3 numbers, one per channel"),
    (set_attribute("std", [1.0, 0.0, 1.0]),
     "attribute std is [1.0, 0.0, 1.0], expected 3 numbers, one per channel, none of them 0"),
    (set_attribute("input_scale", "1/255"),
     "attribute input_scale is '1/255', expected a positive number (1.0 or 1/255)"),
    (set_attribute("train_max_side", 12.5),
     "attribute train_max_side is 12.5, expected a whole number of pixels (0: no limit)"),
    (set_attribute("train_max_side", "big"),
     "attribute train_max_side is 'big', expected a whole number of pixels (0: no limit)"),
    (set_attribute("n_classes", -3), "attribute n_classes is -3, expected a whole number of classes"),
    (replace_dataset("conv1_1/W", "conv1_1"), "layer conv1_1/W holds text, not numbers"),
])
def test_a_weight_file_with_an_attribute_or_a_layer_that_cannot_be_used_is_refused_wherever_it_is_read(
        tmp_path, edit, message):
    path = tmp_path / "final.h5"
    save_weights(random_model("fcn32s"), path, extra_attributes={"train_max_side": 40})
    with h5py.File(path, "r+") as file:
        edit(file)
    model = random_model("fcn32s", seed=2)
    before = host_parameters(model)
    for read in (read_attributes, model_from_file, lambda path: load_weights(model, path, strict=False)):
        with pytest.raises(WeightsError) as raised:
            read(path)
        assert str(raised.value) == f"{path}: {message}"
    for name, value in host_parameters(model).items():
        numpy.testing.assert_array_equal(value, before[name], err_msg=name)


def test_a_model_of_ones_own_saves_and_loads_but_a_file_of_an_unknown_architecture_builds_none(tmp_path):
    from fcnlite.layers import Conv2d
    from fcnlite.models.base import Model

    class Tiny(Model):   # architecture "model": not one fcnlite builds, but its weights are its own
        def __init__(self):
            super().__init__()
            self.add("conv", Conv2d(3, 2, 3))
    saved, loaded = Tiny(), Tiny()
    path = tmp_path / "tiny.h5"
    save_weights(saved, path)
    load_weights(loaded, path)
    for (name, value, _), (_, expected, _) in zip(loaded.named_parameters(), saved.named_parameters()):
        numpy.testing.assert_array_equal(value, expected, err_msg=name)
    with pytest.raises(WeightsError) as raised:
        model_from_file(path)
    assert str(raised.value) == (f"{path}: attribute architecture is 'model', not a model fcnlite builds (fcn32s, "
                                 f"fcn16s, fcn8s, fcn8s-atonce, vgg16)")


def test_a_folder_given_as_weights_is_named_as_one(tmp_path):
    with pytest.raises(WeightsError) as raised:
        model_from_file(tmp_path)
    assert str(raised.value) == f"{tmp_path} is a folder, not a weight file"


FILLING_DISK = """
import os, resource, signal, sys
import fcnlite
from fcnlite.checkpoint import save_checkpoint
from fcnlite.optim import SGD
model = fcnlite.FCN8s(n_classes=3, width=1 / 16)
folder, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit then fails (EFBIG), as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
for name, save in [("final.h5", lambda path: fcnlite.save_weights(model, path)),
                   ("checkpoint.h5", lambda path: save_checkpoint(path, model, SGD(model, lr=0.1), {"iteration": 1}))]:
    try:
        save(os.path.join(folder, name))
    except fcnlite.WeightsError as error:
        print(error)
"""


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX file-size limits (RLIMIT_FSIZE)")
@pytest.mark.parametrize("limit", [100_000, 3_000_000])   # both fail; the checkpoint (twice as large) only
def test_a_disk_that_fills_while_a_file_is_written_is_one_line_not_a_crash(tmp_path, limit):
    # HDF5 meeting a failed write crashed the process (a segfault) after printing pages of errors:
    # the write fails here as it would on a disk filled meanwhile by another program
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", FILLING_DISK, str(tmp_path), str(limit)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=root), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    failed = [name for name in ("final.h5", "checkpoint.h5")
              if f"cannot write {tmp_path / name} (file too large)\n" in done.stdout]
    assert failed == (["final.h5", "checkpoint.h5"] if limit < 2_000_000 else ["checkpoint.h5"]), done.stdout
    assert done.stderr == ""
    assert sorted(os.listdir(tmp_path)) == ([] if limit < 2_000_000 else ["final.h5"])   # no temporary file left
    if limit > 2_000_000:
        load_weights(FCN8s(n_classes=3, width=1 / 16), tmp_path / "final.h5")


class TakesPartOfEachWrite:
    """A file that, as one on a disk nearly full, takes at most 1000 bytes of each write."""

    def __init__(self, raw):
        self.raw = raw

    def write(self, data):
        return self.raw.write(memoryview(data)[:1000])

    def __getattr__(self, name):
        return getattr(self.raw, name)


def test_a_write_that_takes_part_of_the_bytes_is_carried_on_to_the_end(tmp_path):
    from fcnlite.io import WriteErrorKept
    data = numpy.arange(5000, dtype=numpy.uint8).tobytes()
    with open(tmp_path / "x", "w+b", buffering=0) as raw:
        kept = WriteErrorKept(TakesPartOfEachWrite(raw))
        assert kept.write(data) == 5000 and kept.error is None
        kept.seek(0)
        assert kept.read() == data


def test_a_weight_file_of_an_fcn_of_one_class_is_refused_in_one_line(tmp_path):
    path = tmp_path / "model.h5"
    save_weights(FCN8s(n_classes=2, width=1 / 16), path)
    with h5py.File(path, "r+") as file:
        file.attrs["n_classes"] = 1
    with pytest.raises(WeightsError) as raised:
        model_from_file(path)
    assert str(raised.value).startswith(f"{path}: attribute n_classes is 1: an FCN scores a whole number of classes, "
                                        f"at least 2")


INTERRUPTED_SAVE = """
import os, sys
import fcnlite
from fcnlite import io


class InterruptedAt:
    # a Ctrl-C (the Trainer's second raises KeyboardInterrupt) landing in the write of call `at`
    def __init__(self, raw, at):
        self.raw, self.calls, self.at = raw, 0, at

    def write(self, data):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)


folder, at = sys.argv[1], int(sys.argv[2])
kept = io.WriteErrorKept
io.WriteErrorKept = lambda raw: kept(InterruptedAt(raw, at))
path = os.path.join(folder, "final.h5")
with open(path, "wb") as file:
    file.write(b"the previous weights")
try:
    fcnlite.save_weights(fcnlite.FCN8s(n_classes=3, width=1 / 16), path)
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("at", [1, 5, 50])
def test_a_ctrl_c_while_a_file_is_written_interrupts_it_and_keeps_the_old_file(tmp_path, at):
    # an exception raised into HDF5's C frames crashed the process (a segfault) or was lost
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_SAVE, str(tmp_path), str(at)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=root), timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "interrupted\n", "")
    assert os.listdir(tmp_path) == ["final.h5"] and (tmp_path / "final.h5").read_bytes() == b"the previous weights"


CTRL_C_AT_RANDOM = """
import os, random, signal, sys, threading, time
import numpy
import fcnlite
from fcnlite.io import read_weights
model = fcnlite.FCN8s(n_classes=3, width=1 / 16)
for _, value, _ in model.named_parameters():   # (the score layers start at zero: no zeros left)
    value += 1.0
path = os.path.join(sys.argv[1], "final.h5")
fcnlite.save_weights(model, path)
started = time.perf_counter()
fcnlite.save_weights(model, path)
seconds = time.perf_counter() - started
random.seed(0)
for trial in range(40):   # a Ctrl-C at a random moment of a save, each save of other weights
    for _, value, _ in model.named_parameters():
        value += 1.0
    timer = threading.Timer(random.uniform(0, seconds), os.kill, (os.getpid(), signal.SIGINT))
    try:   # (one Ctrl-C a trial, wherever it lands)
        timer.start()
        fcnlite.save_weights(model, path)
        time.sleep(seconds)   # a late Ctrl-C lands here
        timer.join()
    except KeyboardInterrupt:
        timer.join()
    arrays, _ = read_weights(path)   # old weights or new, whole: never a layer of zeros
    assert all(array.any() for array in arrays.values() if array.size > 1), trial
    assert [name for name in os.listdir(sys.argv[1]) if name != "final.h5"] == [], os.listdir(sys.argv[1])
print("whole")
"""


def test_ctrl_c_at_any_moment_of_a_save_leaves_the_old_file_or_the_new_one_whole(tmp_path):
    # inside h5py's callbacks the KeyboardInterrupt escaped HDF5's C frames: a layer of the file renamed into
    # place was left unwritten (zeros, past the checksum), or the process crashed
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", CTRL_C_AT_RANDOM, str(tmp_path)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=root), timeout=300)
    assert (done.returncode, done.stdout, done.stderr) == (0, "whole\n", "")


CTRL_C_WHILE_READING = """
import os, random, signal, sys, threading, time
import fcnlite
from fcnlite.io import read_weights
path = os.path.join(sys.argv[1], "final.h5")
fcnlite.save_weights(fcnlite.FCN8s(n_classes=3, width=1 / 16), path)
started = time.perf_counter()
read_weights(path)
seconds = time.perf_counter() - started
random.seed(0)
stopped = 0
for trial in range(100):   # a Ctrl-C at a random moment of a read
    timer = threading.Timer(random.uniform(0, seconds), os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        read_weights(path)
        time.sleep(2 * seconds)   # a late Ctrl-C lands here
        timer.join()
    except KeyboardInterrupt:
        timer.join()
        stopped += 1
print(stopped)
"""


def test_ctrl_c_while_weights_are_read_stops_the_program_and_is_never_lost_in_h5pys_cleanup(tmp_path):
    # raised inside h5py's reading, or as its objects were freed, the KeyboardInterrupt went to a weakref
    # callback: "Exception ignored ... KeyboardInterrupt" on stderr, and the program went on
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_READING, str(tmp_path)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=root), timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    assert int(done.stdout) == 100   # each Ctrl-C stopped what it landed in


def test_a_layer_never_written_is_refused_not_read_as_zeros(tmp_path):
    path = tmp_path / "cut.h5"
    save_weights(FCN8s(n_classes=3, width=1 / 16), path)
    with h5py.File(path, "r+") as file:   # as a save cut short leaves it: the dataset made, its chunk not
        del file["fc7/W"]
        file.create_dataset("fc7/W", shape=(256, 256, 1, 1), dtype=numpy.float32, chunks=(256, 256, 1, 1),
                            fletcher32=True)
    with pytest.raises(WeightsError) as raised:
        model_from_file(path)
    assert str(raised.value) == (f"{path}: layer fc7/W was never written (the file was cut short as it was "
                                 f"saved): it holds no values")


def test_a_weight_file_that_cannot_be_opened_says_why_not_that_its_format_is_wrong(tmp_path, monkeypatch):
    from fcnlite import io
    path = tmp_path / "final.h5"
    save_weights(random_model("fcn32s", seed=2), path)

    def denied(name, *args, **kwargs):   # as a file of another user's, chmod 600, is to us (root reads it anyway)
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(name))
    monkeypatch.setattr(io, "open", denied, raising=False)
    with pytest.raises(WeightsError) as raised:
        io.read_attributes(path)
    assert str(raised.value) == f"{path}: cannot be read (permission denied)"


def test_class_colours_are_saved_loaded_and_kept_in_a_checkpoint(tmp_path):
    from fcnlite.checkpoint import load_checkpoint, save_checkpoint
    from fcnlite.optim import SGD
    model = random_model("fcn32s")
    model.class_names = ["background", "road", "car"]
    model.class_colors = [[0, 0, 0], [128, 64, 128], [0, 0, 142]]   # a colour table's
    save_weights(model, tmp_path / "final.h5")
    assert model_from_file(tmp_path / "final.h5").class_colors == model.class_colors
    assert read_attributes(tmp_path / "final.h5")["class_colors"] == model.class_colors
    save_checkpoint(tmp_path / "checkpoint.h5", model, SGD(model, lr=0.1), {"iteration": 3})
    fresh = random_model("fcn32s", seed=1)
    load_checkpoint(tmp_path / "checkpoint.h5", fresh, SGD(fresh, lr=0.1))
    assert fresh.class_colors == model.class_colors
    # a checkpoint of a run from before colours were kept: the data's colours (given to the model) stay
    plain = random_model("fcn32s", seed=2)
    plain.class_names = model.class_names
    save_checkpoint(tmp_path / "older.h5", plain, SGD(plain, lr=0.1), {"iteration": 3})
    load_checkpoint(tmp_path / "older.h5", fresh, SGD(fresh, lr=0.1))
    assert fresh.class_colors == model.class_colors
    model.class_colors = [[0, 0, 0]]
    with pytest.raises(WeightsError) as raised:   # one colour for three classes: refused before writing
        save_weights(model, tmp_path / "short.h5")
    assert str(raised.value) == (f"cannot write {tmp_path / 'short.h5'}: model.class_colors has 1 colours, expected "
                                 f"one per class (3)")
    model.class_colors = None
    save_weights(model, tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "r+") as file:
        file.attrs["class_colors"] = numpy.array([[0, 0, 300], [1, 2, 3], [4, 5, 6]])
    with pytest.raises(WeightsError) as raised:
        model_from_file(tmp_path / "plain.h5")
    assert str(raised.value).startswith(f"{tmp_path / 'plain.h5'}: attribute class_colors is [[0, 0, 300], ")
    assert str(raised.value).endswith("expected an RGB colour (3 numbers of 0..255) per class")


def test_a_file_to_convert_given_as_weights_says_which_converter_reads_it(tmp_path):
    # the files weights/README.md says to download, given before conversion: HDF5 called them unreadable
    import pickle
    numpy.savez(tmp_path / "fcn8s_from_caffe.npz", **{"conv1_1/W": numpy.zeros((4, 3, 3, 3), numpy.float32)})
    (tmp_path / "vgg16-397923af.pth").write_bytes(pickle.dumps({"features.0.weight": [0.0]}, protocol=2))
    with h5py.File(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "w") as keras:
        keras.attrs["layer_names"] = numpy.array([b"block1_conv1"])
        keras.create_dataset("block1_conv1/block1_conv1/kernel:0", data=numpy.zeros((3, 3, 3, 4), numpy.float32))
    with h5py.File(tmp_path / "saved_model.h5", "w") as keras:   # model.save(): the weights one group down
        keras.attrs["keras_version"] = "2.15.0"
        keras.create_dataset("model_weights/block1_conv1/block1_conv1/kernel:0",
                             data=numpy.zeros((3, 3, 3, 4), numpy.float32))
    converters = ("convert it first, with weights/convert_vgg16.py (VGG16, for train_voc.py --init) or "
                  "weights/convert_fcn.py (a trained FCN; weights/README.md)")
    zipped = "a PyTorch or NumPy (.npz) file"
    for name, kind in (("fcn8s_from_caffe.npz", zipped), ("vgg16-397923af.pth", zipped),
                       ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "a Keras file"),
                       ("saved_model.h5", "a Keras file")):
        with pytest.raises(WeightsError) as raised:
            model_from_file(tmp_path / name)
        assert str(raised.value) == f"{tmp_path / name}: {kind}, not an fcnlite weight file: {converters}"
    shutil.copy(tmp_path / "fcn8s_from_caffe.npz", tmp_path / "vgg16.keras")   # a zip too
    with pytest.raises(WeightsError) as raised:
        model_from_file(tmp_path / "vgg16.keras")
    assert str(raised.value) == (f"{tmp_path / 'vgg16.keras'}: a Keras 3 .keras file, which the converters do not "
                                 f"read: convert the Keras VGG16 .h5 that weights/README.md names")
    # an fcnlite file behind a user block that happens to begin as a zip does: still read as HDF5
    model = random_model("fcn32s")
    with h5py.File(tmp_path / "blocked.h5", "w", userblock_size=512) as file:
        file.attrs["fcnlite_format"] = 1
    with open(tmp_path / "blocked.h5", "r+b") as file:
        file.write(b"PK\x03\x04")
    with pytest.raises(WeightsError) as raised:   # (no layers: refused as HDF5, not as a zip)
        load_weights(model, tmp_path / "blocked.h5")
    assert "PyTorch" not in str(raised.value)
