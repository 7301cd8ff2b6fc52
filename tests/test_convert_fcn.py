"""weights/convert_fcn.py: the reference FCNs' trained weights, as wkentaro/fcn (Chainer npz) and
pytorch-fcn (.pth) keep them, become fcnlite weights that compute the same scores.

The sources are written here from small fcnlite FCNs (width 1/16) with random weights, in
each port's key names: conv1_1/W in an npz (with a "predictor/" prefix and the zero biases
Chainer's Deconvolution2D carries), conv1_1.weight in a state dict. The PyTorch side is checked
against the benchmark's PyTorch FCN, written from the reference nets rather than from
fcnlite's layers.
"""
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from PIL import Image

import fcnlite
from fcnlite.data import VOC_CLASSES
from fcnlite.layers import ConvTranspose2d
from fcnlite.models import build_model
from programs import load_script, program_environment, run_example

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "weights" / "convert_fcn.py"
WIDTH = 1 / 16


convert_fcn = load_script(SCRIPT)


def random_fcn(architecture, n_classes=21, seed=0):
    """An fcnlite FCN whose every parameter is random (score layers too: zeros would make checks trivial)."""
    model = build_model(architecture, n_classes=n_classes, width=WIDTH)
    generator = numpy.random.default_rng(seed)
    for _, value, _ in model.named_parameters():
        value[...] = generator.standard_normal(value.shape) * 0.1
    return model


def chainer_arrays(model, prefix="predictor/"):
    """The model's arrays as wkentaro/fcn's npz keys them, upscore layers with their zero biases."""
    arrays = {f"{prefix}{name}": numpy.array(value) for name, value, _ in model.named_parameters()}
    for name, layer in model.layers.items():
        if isinstance(layer, ConvTranspose2d):
            arrays[f"{prefix}{name}/b"] = numpy.zeros(layer.params["W"].shape[1], numpy.float32)
    return arrays


def scores(model, seed=1):
    x = numpy.random.default_rng(seed).standard_normal((1, 3, 37, 45)).astype(numpy.float32)
    model.eval()
    return model.forward(x)


@pytest.mark.parametrize("architecture", ["fcn32s", "fcn16s", "fcn8s"])
def test_a_chainer_npz_converts_to_weights_that_give_the_same_scores(tmp_path, architecture):
    source = random_fcn(architecture)
    numpy.savez(tmp_path / "fcn_from_caffe.npz", **chainer_arrays(source))
    convert_fcn.convert(tmp_path / "fcn_from_caffe.npz", tmp_path / "fcn.h5")
    converted = fcnlite.model_from_file(tmp_path / "fcn.h5")
    assert converted.config() == {"architecture": architecture, "width": WIDTH, "n_classes": 21}
    assert converted.class_names == list(VOC_CLASSES)
    assert converted.preprocessing == {"channel_order": "BGR", "input_scale": 1.0,
                                       "mean": (104.00698793, 116.66876762, 122.67891434), "std": (1.0, 1.0, 1.0)}
    numpy.testing.assert_array_equal(scores(converted), scores(source))


def test_fcn8s_at_once_is_told_by_its_file_name_and_computes_the_scaled_skips(tmp_path):
    source = random_fcn("fcn8s-atonce", n_classes=5)
    path = tmp_path / "fcn8s-atonce_from_caffe.npz"   # as both ports name it
    numpy.savez(path, **chainer_arrays(source, prefix=""))
    convert_fcn.convert(path, tmp_path / "atonce.h5")
    converted = fcnlite.model_from_file(tmp_path / "atonce.h5")
    assert converted.config()["architecture"] == "fcn8s-atonce" and converted.class_names is None
    numpy.testing.assert_array_equal(scores(converted), scores(source))
    # the same arrays in plain FCN-8s compute other scores: the skips are not scaled
    convert_fcn.convert(path, tmp_path / "plain.h5", "fcn8s")
    plain = fcnlite.model_from_file(tmp_path / "plain.h5")
    assert plain.config()["architecture"] == "fcn8s"
    assert not numpy.allclose(scores(plain), scores(source))
    with pytest.raises(convert_fcn.ConversionError, match=r"from_caffe\.npz: holds an fcn8s \(its last layer\), "
                                                          r"not an fcn16s"):
        convert_fcn.convert(path, tmp_path / "other.h5", "fcn16s")


def test_a_pytorch_state_dict_converts_to_what_the_reference_net_in_pytorch_computes(tmp_path):
    torch = pytest.importorskip("torch", reason="the .pth source and its reference net need PyTorch")
    from fcnlite.benchmark import build_torch_fcn
    net = build_torch_fcn(random_fcn("fcn8s")).double().eval()
    # pytorch-fcn's keys (conv1_1.weight) under a DataParallel prefix; the benchmark's net has layers.conv1_1.weight
    state = {"module." + key.split(".", 1)[1]: value.float() for key, value in net.state_dict().items()}
    torch.save(state, tmp_path / "fcn8s_from_caffe.pth")
    convert_fcn.convert(tmp_path / "fcn8s_from_caffe.pth", tmp_path / "fcn8s.h5")
    converted = fcnlite.model_from_file(tmp_path / "fcn8s.h5")
    x = numpy.random.default_rng(1).standard_normal((1, 3, 37, 45)).astype(numpy.float32)
    converted.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(x).double()).numpy()
    ours = converted.forward(x)
    assert numpy.abs(ours - expected).max() < 1e-4 * numpy.abs(expected).max()


def test_a_pytorch_fcn_training_checkpoint_converts_from_its_model_state_dict(tmp_path):
    torch = pytest.importorskip("torch", reason="the .pth source needs PyTorch")
    model = random_fcn("fcn8s")
    # as pytorch-fcn's trainer saves model_best.pth.tar: the state dict beside the optimizer's and the progress
    state = {f"{name.split('/')[0]}.{'weight' if name.endswith('/W') else 'bias'}": torch.from_numpy(value.copy())
             for name, value, _ in model.named_parameters()}
    torch.save({"epoch": 4, "iteration": 4000, "arch": "FCN8s", "optim_state_dict": {"state": {}, "param_groups": []},
                "model_state_dict": state, "best_mean_iu": numpy.float64(0.61)},   # (a NumPy scalar, as its score is)
               tmp_path / "model_best.pth.tar")
    # and as NumPy 1 wrote it (numpy.core, where NumPy 2 writes numpy._core): pytorch-fcn's files are that old
    import zipfile
    with zipfile.ZipFile(tmp_path / "model_best.pth.tar") as source, \
            zipfile.ZipFile(tmp_path / "numpy1.pth.tar", "w", zipfile.ZIP_STORED) as copy:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename.endswith("data.pkl"):
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
                assert b"numpy.core.multiarray" in data
            copy.writestr(entry.filename, data)
    for name in ("model_best.pth.tar", "numpy1.pth.tar"):
        convert_fcn.convert(tmp_path / name, tmp_path / "fcn8s.h5")
        numpy.testing.assert_array_equal(scores(fcnlite.model_from_file(tmp_path / "fcn8s.h5")), scores(model))


def test_a_dict_that_holds_no_state_dict_is_refused_naming_its_keys(tmp_path):
    torch = pytest.importorskip("torch", reason="the .pth source needs PyTorch")
    torch.save({"epoch": 4, "optim_state_dict": {"state": {}, "param_groups": []}}, tmp_path / "optim.pth")
    result = subprocess.run([sys.executable, str(SCRIPT), "optim.pth", "-o", "out.h5"], cwd=tmp_path,
                            env=program_environment(), capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: optim.pth: not a state dict of the reference FCN (it holds a dict of other "
                             "things: epoch, optim_state_dict; a checkpoint's weights are read from a state dict "
                             "under model_state_dict, state_dict or model)\n")


def test_the_program_converts_and_predict_segments_with_the_result(tmp_path):
    numpy.savez(tmp_path / "fcn8s_from_caffe.npz", **chainer_arrays(random_fcn("fcn8s")))
    weights = "fcn8s-voc.h5"
    result = subprocess.run([sys.executable, str(SCRIPT), "fcn8s_from_caffe.npz", "-o", weights],
                            cwd=tmp_path, env=program_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{weights}: fcn8s, width 0.0625, 21 classes (PASCAL VOC), input BGR 0..255 minus the mean\n"
    # without -o: beside the converter, in weights/, from wherever it runs
    assert convert_fcn.default_output("fcn8s-atonce") == str(REPO / "weights" / "fcn8s-atonce-voc.h5")
    Image.fromarray(numpy.full((30, 40, 3), 128, numpy.uint8)).save(tmp_path / "photo.png")
    predicted = run_example("predict.py", ["--weights", weights, "photo.png", "--out", "out", "--device",
                                           "cpu"], tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert Image.open(tmp_path / "out" / "photo_labels.png").size == (40, 30)


def layer_arrays(model):
    return chainer_arrays(model, prefix="")


@pytest.mark.parametrize("change, message", [
    (lambda arrays: arrays.pop("score_pool4/b"), r"bad\.npz: score_pool4 b is missing \(an fcn8s of width 0\.0625 "
                                                r"needs it\)"),
    (lambda arrays: arrays.__setitem__("score_pool3/W", numpy.zeros((21, 8, 1, 1), numpy.float32)),
     r"bad\.npz: score_pool3 W has shape \(21, 8, 1, 1\), but an fcn8s of width 0\.0625 and 21 classes needs "
     r"\(21, 16, 1, 1\)"),
    (lambda arrays: arrays.__setitem__("upscore8/b", numpy.ones(21, numpy.float32)),
     r"bad\.npz: upscore8 has a non-zero bias; the reference's upsampling has none"),
    (lambda arrays: arrays.__setitem__("fc8/W", numpy.zeros((3, 3), numpy.float32)),
     r"bad\.npz: holds arrays that an fcn8s has no place for: fc8/W"),
    (lambda arrays: (arrays.pop("upscore8/W"), arrays.pop("upscore8/b")),
     r"bad\.npz: expected one of upscore8, upscore16 or upscore \(FCN-8s, -16s, -32s\), found layers conv1_1, "),
    (lambda arrays: arrays["fc7/b"].__setitem__(0, numpy.nan), r"bad\.npz: fc7 b holds values that are NaN"),
    (lambda arrays: arrays.__setitem__("conv1_1/W", numpy.float32(1)),
     r"bad\.npz: conv1_1 W has shape \(\), expected 4 axes \(out, in, kh, kw\)$"),
    (lambda arrays: arrays.__setitem__("upscore16/W", arrays["upscore8/W"]),
     r"bad\.npz: holds upscore8 \(fcn8s\) and upscore16 \(fcn16s\), the last layers of different architectures: "
     r"a file of one network has one of them$"),
    (lambda arrays: arrays.__setitem__("iteration", numpy.zeros(1)), r"bad\.npz: holds 'iteration', which is no "
                                                                     r"layer's weights or bias"),
    (lambda arrays: arrays.__setitem__("score_fr/W", arrays["score_fr/W"][:1]),
     r"bad\.npz: read from conv1_1 and score_fr, n_classes is 1: an FCN scores a whole number of classes, at least 2"),
])
def test_a_source_that_does_not_make_the_network_is_one_line_and_writes_nothing(tmp_path, change, message):
    arrays = layer_arrays(random_fcn("fcn8s"))
    change(arrays)
    numpy.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(convert_fcn.ConversionError, match=message) as raised:
        convert_fcn.convert(tmp_path / "bad.npz", tmp_path / "out.h5")
    assert "\n" not in str(raised.value) and not (tmp_path / "out.h5").exists()


def test_files_of_other_kinds_are_named_for_what_they_are_not(tmp_path):
    (tmp_path / "fcn8s-heavy-pascal.caffemodel").write_bytes(b"\x0a\x05fcn8s")
    (tmp_path / "notes.txt").write_text("not weights")
    (tmp_path / "broken.npz").write_text("not a zip")
    for name, message in [("fcn8s-heavy-pascal.caffemodel", "Caffe's own format is not read here"),
                          ("notes.txt", "neither an npz file (Chainer) nor a PyTorch state dict"),
                          ("broken.npz", "neither an npz file (Chainer) nor a PyTorch state dict"),
                          ("missing.npz", "no such file")]:
        result = subprocess.run([sys.executable, str(SCRIPT), name, "-o", "out.h5"], cwd=tmp_path,
                                env=program_environment(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"error: {name}: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out.h5").exists()


def test_an_output_the_disk_has_no_room_for_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    from fcnlite import io
    numpy.savez(tmp_path / "fcn8s_from_caffe.npz", **chainer_arrays(random_fcn("fcn8s")))
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9 - 1000, 1000))
    assert convert_fcn.main([str(tmp_path / "fcn8s_from_caffe.npz"), "-o", str(tmp_path / "out.h5")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"error: cannot write {tmp_path / 'out.h5'} (no space left on device: it needs ")
    assert stderr.endswith(" MB, 0.0 MB are free)\n") and stderr.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fcn8s_from_caffe.npz"]


def test_pickles_that_are_not_state_dicts_are_one_line_without_torchs_warning_or_advice(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
    with open(tmp_path / "plain.pth", "wb") as file:   # protocol 4: torch warns of it over two lines
        pickle.dump({"conv1_1.weight": numpy.zeros(3)}, file, protocol=4)
    for name, why in [("module.pth", "it pickles Python objects other than tensors, which are not loaded, for "
                                     "safety: save the model's state_dict()"),
                      ("plain.pth", "damaged, or not a file torch.save wrote")]:   # (pickle.dump's, not torch's)
        result = subprocess.run([sys.executable, str(SCRIPT), name, "-o", "out.h5"], cwd=tmp_path,
                                env=program_environment(), capture_output=True, text=True, timeout=300)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"error: {name}: not a state dict of the reference FCN ({why})\n"


def test_a_folder_as_the_source_or_an_output_that_cannot_be_written_is_one_line_before_any_reading(
        tmp_path, monkeypatch, capsys):
    numpy.savez(tmp_path / "fcn8s_from_caffe.npz", **chainer_arrays(random_fcn("fcn8s")))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "conv_out").mkdir()
    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert convert_fcn.main(["imgs", "-o", "out.h5"]) == 2
    assert capsys.readouterr().err == "error: imgs is a folder, not a file of weights to convert\n"

    def unread(path):
        raise AssertionError("the source was read before the output was checked")
    monkeypatch.setattr(convert_fcn, "read_source", unread)
    for output, cause in [("afile/x.h5", "afile is a file, not a folder"),
                          ("conv_out", "it is a folder: name the file to write in it")]:
        assert convert_fcn.main(["fcn8s_from_caffe.npz", "-o", output]) == 2
        assert capsys.readouterr().err == f"error: cannot write {output} ({cause})\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile", "conv_out", "fcn8s_from_caffe.npz", "imgs"]
    assert list((tmp_path / "conv_out").iterdir()) == []
