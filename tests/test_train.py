"""The training program end to end, run as a user runs it: examples/train_voc.py in a subprocess
on a small generated VOC-layout dataset (tiny model, tiny images, a few iterations)."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy
import pytest
from PIL import Image

from fcnlite import visualize
from fcnlite.data.synthetic import make_synthetic_voc
from programs import example_path, program_environment, run_example

TINY = ["--model", "fcn8s", "--width", "0.0625", "--max-side", "40", "--lr", "0.01", "--momentum", "0.9",
        "--loss-normalize", "--no-progress", "--val-limit", "3", "--device", "cpu"]


def run(args, cwd, **kwargs):
    return run_example("train_voc.py", args, cwd, **kwargs)


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    make_synthetic_voc(str(root), n_train=10, n_val=3, size=(36, 48), seed=3)
    return str(root)


def weights_of(path):
    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def log_records(out):
    with open(os.path.join(out, "log.jsonl")) as file:
        return [json.loads(line) for line in file]


def test_short_training_run_lowers_the_loss_and_writes_every_output(voc_root, tmp_path):
    out = str(tmp_path / "run")
    result = run(["--data-root", voc_root, *TINY, "--max-iter", "40", "--eval-every", "20", "--out", out], tmp_path)
    assert result.returncode == 0, result.stderr
    losses = [r["loss"] for r in log_records(out) if "loss" in r]
    assert len(losses) == 40
    assert numpy.mean(losses[-10:]) < 0.7 * numpy.mean(losses[:5])
    evals = [r for r in log_records(out) if r.get("type") == "eval"]
    assert [r["iteration"] for r in evals] == [20, 40]
    for name in ("final.h5", "checkpoint.h5", "log.jsonl"):
        assert os.path.exists(os.path.join(out, name)), name
    # strips named by the validation images' ids, with a legend right of the three panels
    with open(os.path.join(voc_root, "VOCdevkit", "VOC2012", "ImageSets", "Segmentation", "val.txt")) as file:
        val_ids = file.read().split()[:3]
    assert sorted(os.listdir(os.path.join(out, "progress"))) == sorted(
        f"{id_}_iter{iteration:07d}.png" for id_ in val_ids for iteration in (20, 40))
    first = Image.open(os.path.join(out, "progress", f"{val_ids[0]}_iter0000040.png"))
    assert first.width > 3 * 40 + 3 * visualize.PANEL_GAP   # three panels 40 wide (--max-side 40), a legend
    # best.h5: the weights of the evaluation with the highest mean IU, which evaluate_voc.py finds again
    best = max(evals, key=lambda record: record["mean_iu"])
    with h5py.File(os.path.join(out, "best.h5"), "r") as file:
        assert (file.attrs["best_iteration"], file.attrs["best_mean_iu"]) == (best["iteration"], best["mean_iu"])
    with h5py.File(os.path.join(out, "checkpoint.h5"), "r") as file:   # a resumed run compares with it
        assert json.loads(file.attrs["state"])["best"] == {"mean_iu": best["mean_iu"], "iteration": best["iteration"]}
    result = run_example("evaluate_voc.py", ["--weights", os.path.join(out, "best.h5"), "--limit", "3", "--device",
                                             "cpu", "--json", str(tmp_path / "best.json")], tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "best.json") as file:
        assert json.load(file)["mean_iu"] == pytest.approx(best["mean_iu"], abs=1e-12)
    pytest.importorskip("matplotlib")
    assert os.path.getsize(os.path.join(out, "curves.png")) > 1000


def test_interrupted_then_resumed_run_ends_with_the_same_weights(voc_root, tmp_path):
    common = ["--data-root", voc_root, *TINY, "--max-iter", "12", "--eval-every", "0", "--checkpoint-every", "4"]
    straight = str(tmp_path / "straight")
    assert run([*common, "--out", straight], tmp_path).returncode == 0

    # the same run stopped after 5 iterations (SIGTERM), then resumed
    resumed = str(tmp_path / "resumed")
    process = subprocess.Popen([sys.executable, example_path("train_voc.py"), *common, "--out", resumed],
                               cwd=tmp_path, env=program_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    log = os.path.join(resumed, "log.jsonl")
    deadline = time.time() + 300
    while time.time() < deadline:
        if os.path.exists(log) and len(open(log).readlines()) >= 5:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr   # as a shell reports a process ended by it
    assert f"checkpoint saved to {os.path.join(resumed, 'checkpoint.h5')}: to continue, rerun with --resume --out " \
           f"{resumed}\n" in stderr
    assert "\nstopped by SIGTERM at iteration " in "\n" + stderr and "error" not in stderr   # asked for: no error
    assert ("SIGTERM received: finishing this iteration, then saving a checkpoint (an evaluation under way is left "
            "for the resumed run; a second signal stops at once, keeping the last checkpoint instead)") in stdout
    with h5py.File(os.path.join(resumed, "checkpoint.h5"), "r") as file:
        stopped_at = json.loads(file.attrs["state"])["iteration"]
    assert 5 <= stopped_at < 12
    assert not os.path.exists(os.path.join(resumed, "final.h5"))

    # as the message says: the run's options, its data included, come from the checkpoint
    result = run(["--resume", "--out", resumed, "--device", "cpu", "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout and "note: resuming" not in result.stdout   # nothing differs
    a, b = weights_of(os.path.join(straight, "final.h5")), weights_of(os.path.join(resumed, "final.h5"))
    assert a.keys() == b.keys()
    for name in a:
        numpy.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert [r["iteration"] for r in log_records(resumed) if "loss" in r] == list(range(1, 13))
    # the log's "time" counts the whole run's training time: it goes on after the resume, not from 0
    times = [r["time"] for r in log_records(resumed) if "loss" in r]
    assert times == sorted(times) and times[stopped_at] >= times[stopped_at - 1]


def test_a_loss_that_becomes_nan_stops_training_and_keeps_the_last_good_checkpoint(voc_root, tmp_path):
    out = str(tmp_path / "nan")
    args = ["--data-root", voc_root, *TINY, "--lr", "1e12", "--max-iter", "50", "--checkpoint-every", "1",
            "--out", out]
    result = run(args, tmp_path)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: loss became nan") or message.startswith("error: loss became inf"), message
    assert "Traceback" not in result.stderr
    with h5py.File(os.path.join(out, "checkpoint.h5"), "r") as file:
        saved = json.loads(file.attrs["state"])["iteration"]
        assert all(numpy.isfinite(file[f"model/{name}"][()]).all() for name in ("conv1_1/W", "score_fr/W"))
    bad_iteration = int(message.split("iteration ")[1].split(":")[0])
    assert saved == bad_iteration - 1


def test_a_second_run_into_the_same_folder_asks_for_resume(voc_root, tmp_path):
    out = str(tmp_path / "twice")
    args = ["--data-root", voc_root, *TINY, "--max-iter", "1", "--out", out]
    assert run(args, tmp_path).returncode == 0
    again = run(args, tmp_path)
    assert again.returncode == 2 and "--resume" in again.stderr


def test_missing_voc_data_says_so_and_offers_download(tmp_path):
    result = run(["--data-root", str(tmp_path / "nothing"), "--no-progress"], tmp_path)
    assert result.returncode == 2
    assert "--download" in result.stderr and "--synthetic" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_image_stops_with_its_name_or_is_skipped_with_skip_bad(voc_root, tmp_path):
    import shutil
    root = str(tmp_path / "broken")
    shutil.copytree(voc_root, root)
    images = os.path.join(root, "VOCdevkit", "VOC2012", "JPEGImages")
    victim = sorted(os.listdir(images))[0]
    with open(os.path.join(images, victim), "wb") as file:
        file.write(b"not a jpeg")
    args = ["--data-root", root, *TINY, "--max-iter", "12", "--eval-every", "0"]
    result = run([*args, "--out", str(tmp_path / "a")], tmp_path)
    assert result.returncode == 2
    assert victim in result.stderr and "Traceback" not in result.stderr
    result = run([*args, "--out", str(tmp_path / "b"), "--skip-bad"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 bad sample" in result.stdout


def test_poly_learning_rate_decays_to_zero_and_fixed_stays():
    from fcnlite.train import learning_rate
    assert learning_rate(0.1, "fixed", 500, 1000) == 0.1
    assert learning_rate(0.1, "poly", 0, 1000) == 0.1
    assert learning_rate(0.1, "poly", 500, 1000) == pytest.approx(0.1 * 0.5 ** 0.9)
    assert learning_rate(0.1, "poly", 999, 1000) == pytest.approx(0.1 * 0.001 ** 0.9)
    with pytest.raises(ValueError, match="step"):
        learning_rate(0.1, "step", 1, 10)


def test_staged_training_initialises_fcn16s_from_a_trained_fcn32s(voc_root, tmp_path):
    import fcnlite
    stage1 = str(tmp_path / "fcn32s")
    base = [a for a in TINY if a not in ("--model", "fcn8s")]
    assert run(["--data-root", voc_root, *base, "--model", "fcn32s", "--max-iter", "2", "--out", stage1],
               tmp_path).returncode == 0
    stage2 = str(tmp_path / "fcn16s")
    result = run(["--data-root", voc_root, *base, "--model", "fcn16s", "--max-iter", "1", "--lr", "0",
                  "--init", os.path.join(stage1, "final.h5"), "--out", stage2], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "init:" in result.stdout
    coarse = weights_of(os.path.join(stage1, "final.h5"))
    fine = weights_of(os.path.join(stage2, "final.h5"))
    # with lr 0 nothing moves: the shared layers are exactly the FCN-32s's, score_pool4 starts at zero
    for name in ("conv1_1/W", "fc7/b", "score_fr/W"):
        numpy.testing.assert_array_equal(fine[name], coarse[name])
    assert not fine["score_pool4/W"].any()
    assert fcnlite.io.read_attributes(os.path.join(stage2, "final.h5"))["architecture"] == "fcn16s"
    # without --model, an FCN --init goes on as its own architecture (a VGG16 one starts fcn8s-atonce)
    again = str(tmp_path / "again")
    result = run(["--data-root", voc_root, *base, "--max-iter", "1", "--init", os.path.join(stage2, "final.h5"),
                  "--out", again], tmp_path)
    assert result.returncode == 0, result.stderr
    assert fcnlite.io.read_attributes(os.path.join(again, "final.h5"))["architecture"] == "fcn16s"


def test_a_resumed_trainer_keeps_its_own_momentum_and_weight_decay(tmp_path):
    from fcnlite.checkpoint import save_checkpoint
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import TrainConfig, Trainer
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    save_checkpoint(tmp_path / "checkpoint.h5", model, SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-3),
                    {"iteration": 2, "samples_read": 2})
    optimizer = SGD(model, lr=0.1, momentum=0.5, weight_decay=0.0)
    trainer = Trainer(model, optimizer, None, None, TrainConfig(out=str(tmp_path)), log=lambda text: None)
    assert trainer.resume() and trainer.iteration == 2
    assert (optimizer.momentum, optimizer.weight_decay) == (0.5, 0.0)


def test_a_changed_loss_normalisation_on_resume_needs_its_own_lr(voc_root, tmp_path):
    out = str(tmp_path / "run")
    assert run(["--data-root", voc_root, *TINY, "--max-iter", "1", "--out", out], tmp_path).returncode == 0
    result = run(["--data-root", voc_root, "--device", "cpu", "--out", out, "--resume", "--no-loss-normalize"],
                 tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --no-loss-normalize changes the loss's scale by the pixel count, and the "
                                     "run's --lr was for the other: give --lr with it")


def test_checkpoints_of_earlier_versions_give_the_options_they_recorded(tmp_path):
    """Before the run's options were saved, a checkpoint held its training config and optimizer settings."""
    from fcnlite.checkpoint import save_checkpoint
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.run_options import saved_run_options
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    config = {"max_iter": 40, "accumulate": 2, "loss_normalize": True, "lr_policy": "poly", "eval_every": 10,
              "checkpoint_every": 5, "val_limit": 0, "seed": 7, "flip": False, "scale_range": None, "crop_size": 0,
              "max_side": 48, "resize": None}
    save_checkpoint(tmp_path / "checkpoint.h5", model, SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-3),
                    {"iteration": 2, "config": config})
    options = saved_run_options(tmp_path / "checkpoint.h5")
    assert options == {"max_iter": 40, "accumulate": 2, "loss_normalize": True, "lr_policy": "poly", "eval_every": 10,
                       "checkpoint_every": 5, "val_limit": 0, "seed": 7, "max_side": 48, "resize": None, "crop": 0,
                       "scale": None, "no_flip": True, "momentum": 0.9, "weight_decay": 1e-3}


def test_run_options_are_written_as_on_the_command_line():
    from fcnlite.run_options import option_text
    assert option_text("max_iter", 6) == "--max-iter 6"
    assert option_text("lr", 1e-10) == "--lr 1e-10"
    assert option_text("no_flip", True) == "--no-flip" and option_text("no_flip", False) == "no --no-flip"
    assert option_text("loss_normalize", False) == "--no-loss-normalize"
    assert option_text("resize", (64, 80)) == "--resize 64x80" and option_text("scale", (0.5, 2.0)) == "--scale 0.5 2"


def test_a_run_removes_the_temporary_files_an_interrupted_save_left(voc_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".tmp-k2j9xcheckpoint.h5").write_bytes(b"half a checkpoint")   # as kill -9 during a save leaves
    (out / "notes.txt").write_text("mine")
    result = run(["--data-root", voc_root, *TINY, "--max-iter", "1", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "removed 1 temporary file(s) left in" in result.stdout
    assert not any(name.startswith(".tmp-") for name in os.listdir(out))
    assert (out / "notes.txt").read_text() == "mine"


def test_the_smoothed_loss_is_the_decay_weighted_mean_of_the_losses_so_far():
    from fcnlite.plots import RunningAverage
    losses = [10.0, 2.0, 1.5, 1.0, 0.5, 0.7, 0.2]
    average = RunningAverage(decay=0.9)
    for count in range(1, len(losses) + 1):
        smoothed = average.add(losses[count - 1])
        weights = 0.9 ** numpy.arange(count - 1, -1, -1)      # the newest weighs 1, the oldest 0.9^(count-1)
        assert smoothed == pytest.approx(numpy.dot(weights, losses[:count]) / weights.sum(), rel=1e-12)
    assert RunningAverage().add(3.0) == pytest.approx(3.0)


def test_resume_takes_the_runs_options_unless_given_again_and_says_which_changed(voc_root, tmp_path):
    options = ["--data-root", voc_root, *TINY, "--eval-every", "0", "--checkpoint-every", "2", "--seed", "3"]
    straight = str(tmp_path / "straight")
    assert run([*options, "--max-iter", "6", "--out", straight], tmp_path).returncode == 0
    first = str(tmp_path / "first")
    assert run([*options, "--max-iter", "4", "--out", first], tmp_path).returncode == 0
    # only the data, the run folder and a longer --max-iter: width, lr, momentum, seed ... come from the run
    result = run(["--data-root", voc_root, "--device", "cpu", "--no-progress", "--out", first, "--resume",
                  "--max-iter", "6"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"note: resuming {first} with options that differ from the run's, from its checkpoint on: " \
           f"--max-iter 6 (the run had --max-iter 4)" in result.stdout
    a, b = weights_of(os.path.join(straight, "final.h5")), weights_of(os.path.join(first, "final.h5"))
    for name in a:
        numpy.testing.assert_array_equal(a[name], b[name], err_msg=name)

    result = run(["--data-root", voc_root, "--device", "cpu", "--out", first, "--resume", "--model", "fcn32s"],
                 tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {first} holds a run of fcn8s at width 0.0625: --model fcn32s cannot "
                                     f"resume it (leave out --model and --width)")


def test_a_trainer_refuses_an_empty_training_set_or_no_images_per_step(tmp_path):
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import TrainConfig, Trainer

    class Empty:
        name = "nothing"

        def __len__(self):
            return 0
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    with pytest.raises(ValueError, match="the training set 'nothing' is empty"):
        Trainer(model, SGD(model, lr=0.1), Empty(), None, TrainConfig(out=str(tmp_path)))
    with pytest.raises(ValueError, match="accumulate is the number of images per step: 1 or more, not 0"):
        Trainer(model, SGD(model, lr=0.1), None, None, TrainConfig(out=str(tmp_path), accumulate=0))



BAD_CONFIGS = [
    ("crop_size", -5, r"crop_size is the side of the random square crop in pixels \(0: no crop\): 0 or more, not -5"),
    ("crop_size", 32.5, r"crop_size is .*: a whole number, not 32.5"),
    ("max_side", -1, r"max_side is .* \(0: no limit\): 0 or more, not -1"),
    ("max_iter", 0, r"max_iter is the number of optimizer steps: 1 or more, not 0"),
    ("val_limit", -3, r"val_limit is the number of validation images evaluated \(0: all\): 0 or more, not -3"),
    ("eval_every", -1, r"eval_every is .*: 0 or more, not -1"),
    ("checkpoint_every", -1, r"checkpoint_every is .*: 0 or more, not -1"),
    ("n_progress_images", -1, r"n_progress_images is .*: 0 or more, not -1"),
    ("seed", -1, r"seed is .*: 0 or more, not -1"),
    ("scale_range", (2.0, 0.5), r"scale_range is the random scaling's \(min, max\), with 0 < min <= max, or None, "
                                r"not \(2.0, 0.5\)"),
    ("scale_range", (0.0, 1.0), r"scale_range is .* not \(0.0, 1.0\)"),
    ("resize", (0, 96), r"resize is the \(height, width\) every image is resized to, each 1 or more, or None, "
                        r"not \(0, 96\)"),
    ("resize", 96, r"resize is .* not 96"),
    ("lr_policy", "step", r"lr_policy is one of fixed, poly, not 'step'"),
]


@pytest.mark.parametrize("field, value, message", BAD_CONFIGS,
                         ids=[f"{field}={value}" for field, value, _ in BAD_CONFIGS])
def test_a_train_config_that_would_train_wrong_without_a_word_is_refused_naming_the_field(field, value, message):
    from fcnlite.train import TrainConfig
    with pytest.raises(ValueError, match=rf"^TrainConfig\.{message}$"):
        TrainConfig(**{field: value})


def test_a_train_config_takes_none_for_what_zero_turns_off_a_crop_of_two_sides_and_a_resize_from_numpy():
    # the loop reads eval_every, checkpoint_every, val_limit, crop_size and max_side as `value or None`,
    # and random_scale_crop takes a (height, width) crop
    from fcnlite.train import TrainConfig
    config = TrainConfig(eval_every=None, checkpoint_every=None, val_limit=None, crop_size=(64, 96), max_side=None,
                         resize=numpy.array([64, 96]))
    assert config.resize == (64, 96) and all(isinstance(side, int) for side in config.resize)
    with pytest.raises(ValueError, match=r"^TrainConfig\.crop_size is .*, or \(height, width\) of 1 or more each, "
                                         r"not \(0, 5\)$"):
        TrainConfig(crop_size=(0, 5))
    with pytest.raises(ValueError, match=r"^TrainConfig\.max_iter is .*: a whole number, not None$"):
        TrainConfig(max_iter=None)


def test_a_trainer_checks_a_config_changed_after_it_was_made(tmp_path):
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import TrainConfig, Trainer
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    config = TrainConfig(out=str(tmp_path))
    config.crop_size = -5   # an empty crop every step: a loss of 0 and nothing learned
    with pytest.raises(ValueError, match="TrainConfig.crop_size is .*: 0 or more, not -5"):
        Trainer(model, SGD(model, lr=0.1), None, None, config)

def test_the_package_exports_the_training_loop():
    import fcnlite
    from fcnlite.train import TrainConfig, Trainer
    assert fcnlite.Trainer is Trainer and fcnlite.TrainConfig is TrainConfig


def test_the_training_clock_stops_with_the_loop(voc_root, tmp_path):
    import time as clock
    from fcnlite.data import VOCSegmentation
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import Trainer, TrainConfig
    model = build_model("fcn32s", n_classes=21, width=1 / 16)
    train_set = VOCSegmentation(voc_root, "train")
    config = TrainConfig(out=str(tmp_path), max_iter=2, eval_every=0, checkpoint_every=0, max_side=40, progress=False)
    trainer = Trainer(model, SGD(model, lr=0.0), train_set, None, config, log=lambda text: None)
    trainer.run()
    after_run = trainer.seconds()
    assert after_run > 0
    clock.sleep(1.0)
    assert trainer.seconds() == after_run      # idle time after the loop is not training time
    trainer.config.max_iter = 3
    trainer.run()                              # a second run goes on from there
    with open(tmp_path / "log.jsonl") as file:
        times = [json.loads(line)["time"] for line in file if '"loss"' in line]
    assert len(times) == 3 and times == sorted(times)
    assert after_run < times[2] < after_run + 0.9   # the third iteration's own time, not the second of idling


class MostlyBad:
    """An in-memory dataset of 10 small samples, all but `good` of them raising DataError, as --skip-bad sees them."""

    name = "mostly bad"
    n_classes, class_names, skip_bad = 3, ["a", "b", "c"], True

    def __init__(self, good):
        self.good = good

    def __len__(self):
        return 10

    def load(self, index):
        from fcnlite.data import DataError
        if index not in self.good:
            raise DataError(f"sample{index}.png", "cannot be decoded")
        rng = numpy.random.default_rng(index)
        return rng.integers(0, 255, (16, 16, 3), dtype=numpy.uint8), rng.integers(0, 3, (16, 16), dtype=numpy.uint8)


def skipping_trainer(tmp_path, dataset, max_iter):
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import Trainer, TrainConfig
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    config = TrainConfig(out=str(tmp_path), max_iter=max_iter, eval_every=0, checkpoint_every=0, progress=False)
    messages = []
    return Trainer(model, SGD(model, lr=0.0), dataset, None, config, log=messages.append), messages


def test_skip_bad_goes_on_however_many_samples_it_skips(tmp_path):
    # 8 of 10 bad: 20 steps read about 100 samples and skip 80, more than any fixed read-ahead would allow
    trainer, messages = skipping_trainer(tmp_path, MostlyBad(good={3, 7}), max_iter=20)
    trainer.run()
    assert trainer.iteration == 20 and len(trainer.skipped) == 8
    assert sum(trainer.skipped.values()) >= 70
    assert sum(message.startswith("skipped: ") for message in messages) == 8   # each reported once


def test_a_training_set_that_is_all_bad_stops_in_one_line(tmp_path):
    from fcnlite.train import TrainingStopped
    trainer, _ = skipping_trainer(tmp_path, MostlyBad(good=set()), max_iter=3)
    with pytest.raises(TrainingStopped, match=r"every training sample of mostly bad was skipped as bad \(the first: "
                                              r"sample\d\.png: cannot be decoded\)"):
        trainer.run()


class OwnDataset:
    """An in-memory dataset of one's own, as the Trainer takes any: 6 samples of 16x16, and at `bad` a sample
    whose load does `bad_load` (raise, or return what the loop cannot train on)."""

    name = "own"
    class_names = ["a", "b", "c"]

    def __init__(self, bad=None, bad_load=None, n_classes=3, skip_bad=False):
        self.bad, self.bad_load, self.n_classes, self.skip_bad = bad, bad_load, n_classes, skip_bad

    def __len__(self):
        return 6

    def load(self, index):
        if index == self.bad:
            return self.bad_load()
        rng = numpy.random.default_rng(index)
        return rng.integers(0, 255, (16, 16, 3), dtype=numpy.uint8), rng.integers(0, 3, (16, 16), dtype=numpy.uint8)


def own_trainer(tmp_path, train_set, val_set=None, **settings):
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import Trainer, TrainConfig
    from fcnlite.data import TORCHVISION_PREPROCESSING
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    model.preprocessing = dict(TORCHVISION_PREPROCESSING)   # unit-scale inputs, as from scratch
    config = TrainConfig(**{"out": str(tmp_path), "max_iter": 6, "eval_every": 0, "checkpoint_every": 2,
                            "progress": False, **settings})
    return Trainer(model, SGD(model, lr=1e-3), train_set, val_set, config, log=lambda text: None)


def never_read(*_):
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("bad_load, problem", [
    (never_read, "load(4) failed: OSError: [Errno 5] Input/output error"),
    (lambda: None, "load(4) failed: TypeError: cannot unpack non-iterable NoneType object"),
    (lambda: (numpy.full((16, 16, 3), 0.5), numpy.zeros((16, 16), numpy.uint8)),
     "preprocess takes pixels of 0..255 (uint8 RGB); these are floats of 0.5..0.5"),
    (lambda: (numpy.zeros((16, 16, 3), numpy.uint8), numpy.full((16, 16), 7, numpy.uint8)),
     "value 7 is not a class (0..2) or 255"),
    (lambda: (numpy.zeros((16, 16, 3), numpy.uint8), numpy.zeros((16, 8), numpy.uint8)),
     "label is 8x16 but its image is 16x16 (width x height)"),
    (lambda: (numpy.zeros((16, 16, 3), numpy.uint8), numpy.ones((16, 16))),
     "label is float64: give the class index of each pixel as integers"),
])
def test_a_sample_of_ones_own_dataset_that_cannot_be_trained_on_stops_with_a_checkpoint_naming_it(
        tmp_path, bad_load, problem):
    # an OSError, a float image, a label that is no class map: they stopped the run with whatever was
    # saved last, from the middle of a step
    from fcnlite.train import TrainingStopped
    trainer = own_trainer(tmp_path, OwnDataset(bad=4, bad_load=bad_load))
    with pytest.raises(TrainingStopped) as raised:
        trainer.run()
    assert str(raised.value).startswith(f"own[4]: {problem}")
    assert "checkpoint saved to" in str(raised.value)
    assert trainer.checkpoint_iteration == trainer.iteration < 6   # the steps before sample 4's are kept
    # with skip_bad, the same sample is skipped and counted
    skipping = own_trainer(tmp_path / "skip", OwnDataset(bad=4, bad_load=bad_load, skip_bad=True))
    skipping.run()
    assert skipping.iteration == 6 and list(skipping.skipped) == [str(raised.value).split("; met ")[0]]


def test_a_model_and_data_of_other_class_counts_are_refused_when_the_trainer_is_made(tmp_path):
    # a validation set of 2 classes failed at the first evaluation; one of 5, or a model of 5, ran without a word
    for train_classes, val_classes in [(5, 3), (3, 2), (3, 5)]:
        role = "training" if train_classes != 3 else "validation"
        other = train_classes if train_classes != 3 else val_classes
        with pytest.raises(ValueError, match=rf"^the model scores 3 classes, the {role} set 'own' has {other}: "):
            own_trainer(tmp_path, OwnDataset(n_classes=train_classes), OwnDataset(n_classes=val_classes))


def test_run_refuses_a_folder_holding_another_run_unless_resumed(tmp_path):
    # it truncated that run's log and overwrote its checkpoint at the next save
    from fcnlite.train import TrainingStopped
    own_trainer(tmp_path, OwnDataset()).run()
    log = (tmp_path / "log.jsonl").read_text()
    with pytest.raises(TrainingStopped, match=r"already holds a run .*: call resume\(\) first to continue it"):
        own_trainer(tmp_path, OwnDataset()).run()
    assert (tmp_path / "log.jsonl").read_text() == log
    resumed = own_trainer(tmp_path, OwnDataset(), max_iter=8)
    assert resumed.resume()
    resumed.run()
    assert resumed.iteration == 8
    below = own_trainer(tmp_path, OwnDataset(), max_iter=4)
    below.resume()
    with pytest.raises(ValueError, match=r"max_iter is 4, below the iteration of the checkpoint resumed \(8\)"):
        below.run()


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path):
    from fcnlite.train import TrainingStopped
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TrainingStopped, match=r"^cannot make the run's folder .*afile.run \(not a directory\)$"):
        own_trainer(tmp_path / "afile" / "run", OwnDataset())


class StopsDuringEvaluation(OwnDataset):
    """A validation set whose third load, in the first evaluation, does what `at_third` does: ask for a stop
    as a first Ctrl-C does, or raise KeyboardInterrupt as a second one does."""

    def __init__(self, at_third):
        super().__init__()
        self.at_third, self.loads = at_third, 0

    def load(self, index):
        self.loads += 1
        if self.loads == 3:
            self.at_third()
        return super().load(index)


def asking_a_stop():
    """A validation set that asks the trainer in holder["trainer"] to stop, as a first Ctrl-C does, during its
    first evaluation; and the holder."""
    holder = {}
    return StopsDuringEvaluation(lambda: setattr(holder["trainer"], "_stop_signal", signal.SIGINT)), holder


def stopped_in_its_first_evaluation(tmp_path, **settings):
    """(trainer, TrainingStopped): a run (eval_every=4) asked to stop during its evaluation at iteration 4."""
    from fcnlite.train import TrainingStopped
    validation, holder = asking_a_stop()
    trainer = holder["trainer"] = own_trainer(tmp_path, OwnDataset(), validation, eval_every=4, **settings)
    with pytest.raises(TrainingStopped) as raised:
        trainer.run()
    return trainer, raised.value


def test_a_stop_asked_for_during_an_evaluation_leaves_it_for_the_resumed_run_and_keeps_the_training(tmp_path):
    # the evaluation ran on to its end before the checkpoint: a second Ctrl-C meanwhile lost the whole interval
    trainer, stopped = stopped_in_its_first_evaluation(tmp_path, checkpoint_every=4)
    assert str(stopped).startswith("stopped by SIGINT at iteration 4 (its evaluation is left for the resumed "
                                   "run); checkpoint saved to")
    assert stopped.signal_number == signal.SIGINT and trainer.val_set.loads == 3
    resumed = own_trainer(tmp_path, OwnDataset(), OwnDataset(), eval_every=4, checkpoint_every=4)
    assert resumed.resume() and resumed.iteration == 4
    resumed.run()
    assert [record["iteration"] for record in log_records(str(tmp_path)) if record.get("type") == "eval"] == [4, 6]


def test_a_second_signal_stops_at_once_saying_which_checkpoint_is_kept(tmp_path):
    from fcnlite.train import TrainingStopped

    def second_ctrl_c():
        raise KeyboardInterrupt
    trainer = own_trainer(tmp_path, OwnDataset(), StopsDuringEvaluation(second_ctrl_c), eval_every=4,
                          checkpoint_every=2)
    with pytest.raises(TrainingStopped) as raised:
        trainer.run()
    assert str(raised.value) == (f"interrupted at iteration 4, without saving: the checkpoint of iteration 2 is "
                                 f"kept: to continue, rerun with --resume --out {tmp_path}")
    assert raised.value.signal_number == signal.SIGINT


def test_a_validation_sample_skipped_as_bad_is_left_out_of_the_progress_pictures_too(tmp_path):
    # the evaluation skipped it; the pictures loaded it again, and its OSError stopped the run unsaved
    validation = OwnDataset(bad=0, bad_load=never_read, skip_bad=True)
    trainer = own_trainer(tmp_path, OwnDataset(), validation, eval_every=2, n_progress_images=2)
    trainer.run()
    assert trainer.iteration == 6 and list(trainer.skipped) == ["own[0]: load(0) failed: OSError: [Errno 5] "
                                                                 "Input/output error"]
    assert sorted(os.listdir(tmp_path / "progress"))[:1] == ["1_iter0000002.png"]


def test_a_stop_asked_for_during_the_evaluation_a_resumed_run_begins_with_stops_there(tmp_path):
    # it trained one more step, and saved a checkpoint past the evaluation it had abandoned
    from fcnlite.checkpoint import read_checkpoint_state
    from fcnlite.train import TrainingStopped
    stopped_in_its_first_evaluation(tmp_path)
    validation, holder = asking_a_stop()
    again = holder["trainer"] = own_trainer(tmp_path, OwnDataset(), validation, eval_every=4)
    assert again.resume()
    with pytest.raises(TrainingStopped, match=r"^stopped by SIGINT at iteration 4 \(its evaluation is left"):
        again.run()
    assert read_checkpoint_state(tmp_path / "checkpoint.h5")["eval_pending"] is True
    # done at last, the evaluation is written into a checkpoint at once: a later resume does not do it again
    done = own_trainer(tmp_path, OwnDataset(), OwnDataset(), eval_every=4, max_iter=4)
    assert done.resume()
    done.run()
    assert read_checkpoint_state(tmp_path / "checkpoint.h5")["eval_pending"] is False
    assert [record["iteration"] for record in log_records(str(tmp_path)) if record.get("type") == "eval"] == [4]


def test_a_trainer_stopped_by_a_signal_evaluates_and_runs_again_in_the_same_process(tmp_path):
    # the stop it was asked for stayed: every later evaluation was abandoned, every later run stopped
    trainer, _ = stopped_in_its_first_evaluation(tmp_path)
    assert trainer.evaluate() is not None
    trainer.run()
    assert trainer.iteration == 6


def test_a_second_sigterm_exits_as_sigterm_does(tmp_path):
    from fcnlite.train import TrainingStopped

    def two_sigterms():   # the Trainer's own handler, as the signal would call it
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, None)
        handler(signal.SIGTERM, None)
    trainer = own_trainer(tmp_path, OwnDataset(), StopsDuringEvaluation(two_sigterms), eval_every=4)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped) as raised:
        trainer.run()
    assert raised.value.signal_number == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before   # the run's handler put back


class WideNumbers(OwnDataset):
    """Images of 0..255 as uint16 or floats, as a dataset of one's own may give them."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def load(self, index):
        image, label = super().load(index)
        return image.astype(self.dtype), label


@pytest.mark.parametrize("dtype", [numpy.uint16, numpy.float32])
def test_images_of_0_to_255_in_other_dtypes_train_resized_and_evaluate(tmp_path, dtype):
    # the checks take them, and then the resizing (Pillow) refused them in the middle of a run
    trainer = own_trainer(tmp_path, WideNumbers(dtype), WideNumbers(dtype), max_side=8, scale_range=(0.5, 1.5),
                          crop_size=8, eval_every=3)
    trainer.run()
    assert trainer.iteration == 6


def test_a_crop_and_a_scale_range_given_as_numpy_arrays_train(tmp_path):
    # as the resize: each became a pair the loop tested for truth, which a NumPy array refuses, at the first step
    trainer = own_trainer(tmp_path, OwnDataset(), crop_size=numpy.array([8, 12]), scale_range=numpy.array([0.5, 1.5]))
    assert trainer.config.crop_size == (8, 12) and trainer.config.scale_range == (0.5, 1.5)
    trainer.run()
    assert trainer.iteration == 6


def test_a_resumed_run_redoing_an_evaluation_logs_it_once(tmp_path):
    # its record was logged before a second Ctrl-C (or a failed write) stopped the run short of the checkpoint
    stopped_in_its_first_evaluation(tmp_path)
    with open(tmp_path / "log.jsonl", "a") as file:   # as the interrupted resume left it
        file.write(json.dumps({"iteration": 4, "type": "eval", "mean_iu": 0.5}) + "\n")
    done = own_trainer(tmp_path, OwnDataset(), OwnDataset(), eval_every=4)
    assert done.resume()
    done.run()
    assert [record["iteration"] for record in log_records(str(tmp_path)) if record.get("type") == "eval"] == [4, 6]


def test_a_trainer_names_the_models_classes_as_its_training_data_does(tmp_path):
    # a model built in Python has none: final.h5 was written without them (predict then said "class 0"), and the
    # progress strips had no legend, where train_voc.py's have the data's names
    import fcnlite
    trainer = own_trainer(tmp_path, OwnDataset(), OwnDataset(), max_iter=1, n_progress_images=1)
    trainer.run()
    strip = Image.open(tmp_path / "progress" / "0_iter0000001.png")
    blank = numpy.zeros((16, 16), numpy.uint8)
    without_legend = visualize.strip(blank, blank, blank, visualize.make_palette(3), titles=("0", "ground truth", "p"))
    assert strip.width > without_legend.width
    assert fcnlite.model_from_file(str(tmp_path / "final.h5")).class_names == ["a", "b", "c"]
    coloured = OwnDataset()   # a colour table's colours, for predict's pictures; the palette's where it has none
    coloured.class_colors = [[0, 0, 0], None, [1, 2, 3]]
    model = own_trainer(tmp_path / "coloured", coloured).model
    assert model.class_colors == [[0, 0, 0], visualize.make_palette(3)[1].tolist(), [1, 2, 3]]
    unnamed = OwnDataset()   # (a dataset of one's own without names trains as before, unnamed)
    unnamed.class_names = None
    assert own_trainer(tmp_path / "unnamed", unnamed).model.class_names is None
    # names (and colours) an --init file gave: score i is trained on the data's class i, so the data's names
    # replace them, as train_voc.py --init does
    model = fcnlite.FCN32s(n_classes=3, width=1 / 16)
    model.class_names, model.class_colors = ["x", "y", "z"], [[9, 9, 9]] * 3
    fcnlite.Trainer(model, fcnlite.SGD(model, lr=1e-3), OwnDataset(), None,
                    fcnlite.TrainConfig(out=str(tmp_path / "named")), log=lambda text: None)
    assert model.class_names == ["a", "b", "c"] and model.class_colors is None
    # a Trainer that refuses its arguments leaves the model's as they were
    model.class_names = ["x", "y", "z"]
    model.preprocessing = {"channel_order": "RGB"}   # incomplete: the Trainer refuses it
    with pytest.raises(ValueError):
        fcnlite.Trainer(model, fcnlite.SGD(model, lr=1e-3), OwnDataset(), None,
                        fcnlite.TrainConfig(out=str(tmp_path / "refused")), log=lambda text: None)
    assert model.class_names == ["x", "y", "z"]


def test_a_run_resumed_from_a_checkpoint_without_class_names_names_them(tmp_path):
    # checkpoints written before the Trainer named a Python-built model's classes hold none: the resumed
    # run's final.h5 was written without them
    import fcnlite
    first = own_trainer(tmp_path, OwnDataset(), max_iter=2)
    first.model.class_names = None
    first.save_checkpoint()
    resumed = own_trainer(tmp_path, OwnDataset(), max_iter=3)
    assert resumed.resume()
    resumed.run()
    assert fcnlite.model_from_file(str(tmp_path / "final.h5")).class_names == ["a", "b", "c"]


def test_a_step_of_accumulated_images_follows_the_mean_of_their_gradients(tmp_path):
    # Caffe's iter_size: with the sum instead of the mean, accumulate=2 trained at twice the learning rate
    from fcnlite.layers import Dropout, SoftmaxCrossEntropy
    from fcnlite.models import build_model
    from fcnlite.optim import SGD
    from fcnlite.train import Trainer, TrainConfig
    from fcnlite.data import TORCHVISION_PREPROCESSING
    lr = 0.5

    def model_without_dropout():   # dropout's random masks would differ between the run and the reference
        model = build_model("fcn32s", n_classes=3, width=1 / 16, dtype=numpy.float64)
        model.preprocessing = dict(TORCHVISION_PREPROCESSING)
        for layer in model.layers.values():
            if isinstance(layer, Dropout):
                layer.p = 0.0
        return model
    model, reference = model_without_dropout(), model_without_dropout()
    for (_, value, _), (_, same, _) in zip(model.named_parameters(), reference.named_parameters()):
        same[...] = value
    config = TrainConfig(out=str(tmp_path), max_iter=1, accumulate=2, flip=False, eval_every=0, checkpoint_every=0,
                         progress=False)
    trainer = Trainer(model, SGD(model, lr=lr, momentum=0.0, weight_decay=0.0), OwnDataset(), None, config,
                      log=lambda text: None)
    samples = [trainer._sample_at(step) for step in (0, 1)]
    # the reference: each image's own gradient, unscaled, from a copy of the model
    loss, gradients, losses = SoftmaxCrossEntropy(ignore_index=255, normalize=False, dtype=numpy.float64), [], []
    reference.train()
    for sample, label in samples:
        reference.zero_grad()
        losses.append(float(loss.forward(reference.forward(sample[None].astype(numpy.float64)), label[None])))
        reference.backward(loss.backward(1.0))
        gradients.append({name: grad.copy() for name, _, grad in reference.named_parameters()})
    before = {name: value.copy() for name, value, _ in model.named_parameters()}
    trainer.run()
    multipliers = model.parameter_multipliers()
    for name, value, _ in model.named_parameters():
        mean = (gradients[0][name] + gradients[1][name]) / 2
        numpy.testing.assert_allclose(value - before[name], -lr * multipliers[name][0] * mean, rtol=1e-9,
                                      atol=1e-12, err_msg=name)
    assert any(numpy.abs(value - before[name]).max() > 1e-6 for name, value, _ in model.named_parameters())
    assert log_records(str(tmp_path))[0]["loss"] == pytest.approx(numpy.mean(losses), rel=1e-12)


class OneSample(OwnDataset):
    def __len__(self):
        return 1


def test_the_training_loop_scales_crops_and_flips_each_image_as_configured(tmp_path):
    # prepare_sample's augmentations untested in the loop: a loop that skipped them trained as well here
    _, label = OneSample().load(0)

    def labels(**settings):
        trainer = own_trainer(tmp_path / str(len(list(tmp_path.iterdir()))), OneSample(), **settings)
        return [trainer._sample_at(step)[1] for step in range(16)]
    numpy.testing.assert_array_equal(labels(flip=False)[0], label)   # nothing asked for: the image as it is
    scaled = labels(flip=False, scale_range=(2.0, 2.0))
    assert all(numpy.array_equal(each, numpy.kron(label, numpy.ones((2, 2), numpy.uint8))) for each in scaled)
    cropped = labels(flip=False, crop_size=(8, 12))
    assert all(each.shape == (8, 12) for each in cropped)
    assert len({each.tobytes() for each in cropped}) > 1   # a window at another place from image to image
    flipped = labels(flip=True)
    mirrored = [numpy.array_equal(each, label[:, ::-1]) for each in flipped]
    assert all(mirrored[k] or numpy.array_equal(each, label) for k, each in enumerate(flipped))
    assert any(mirrored) and not all(mirrored)
