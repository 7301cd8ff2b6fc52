"""The benchmark: examples/benchmark.py run end to end in a reduced mode, and the pieces it trusts."""
import json
import os
import tracemalloc

import numpy
import pytest

from fcnlite import benchmark
from fcnlite.models import build_model
from programs import run_example

# not square: an image of height and width swapped ran as well, and was reported as asked for
QUICK = ["--size", "24x40", "--width", "0.0625", "--repeats", "2", "--warmup", "1", "--device", "cpu"]
FIGURES = ("step_seconds", "step_times", "inference_seconds", "inference_times", "step_gflops",
           "inference_gflops", "peak_memory_bytes")


def run_benchmark(tmp_path, *extra):
    json_path = tmp_path / "bench.json"
    completed = run_example("benchmark.py", [*QUICK, "--json", str(json_path), *extra], str(tmp_path), timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with open(json_path) as file:
        return completed.stdout, json.load(file)


def test_example_without_torch_reports_every_figure(tmp_path):
    output, results = run_benchmark(tmp_path, "--no-torch", "--model", "fcn16s", "--layers", "--tf32", "on")
    for text in ("FCN16S", "training step", "inference", "GFLOP/s", "peak memory", "median of 2", "layer by layer"):
        assert text in output
    assert "PyTorch" not in output.split("\n\n")[1]      # the table has one column
    assert set(benchmark.JSON_KEYS) <= set(results)   # so that a later run replaces this file
    assert results["torch"] is None and results["ratio"] is None and results["check"] is None
    assert set(FIGURES) <= set(results["fcnlite"])
    assert len(results["fcnlite"]["step_times"]) == 2
    assert results["fcnlite"]["peak_memory_bytes"] > 0
    assert results["flops"]["step"] > results["flops"]["forward"] > 0
    assert results["settings"]["size"] == [24, 40] and results["input_shape"] == [1, 3, 24, 40]
    # TF32 is a GPU mode: on the CPU the report and its JSON say what ran
    assert results["settings"]["tf32"] is False and "TF32 off" in output and "--tf32 on is ignored" in output
    assert results["machine"]["numpy"] == numpy.__version__
    assert "FCNLITE_HOST_THREADS" in output and results["machine"]["host_threads"] >= 1
    assert results["machine"]["openblas_thread_timeout"] == os.environ.get("OPENBLAS_THREAD_TIMEOUT", "4")
    layers = {row["name"]: row for row in results["layers"]["rows"]}
    assert set(layers) == {row["name"] for row in results["flops"]["layers"]}
    assert layers["conv1_2"]["backward_flops"] == 2 * layers["conv1_2"]["forward_flops"]


def test_a_json_file_that_cannot_be_written_is_said_before_timing(tmp_path):
    target = tmp_path / "no" / "folder" / "bench.json"
    completed = run_example("benchmark.py", [*QUICK, "--json", str(target)], str(tmp_path), timeout=300)
    assert completed.returncode == 1
    assert completed.stdout.strip() == f"benchmark: --json {target}: folder {target.parent} does not exist"


def test_a_json_file_that_is_no_earlier_benchmarks_is_kept_and_said_before_timing(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text('{"pixel_accuracy": 0.9, "mean_iu": 0.7}')   # evaluate's
    completed = run_example("benchmark.py", [*QUICK, "--json", str(target)], str(tmp_path), timeout=300)
    assert completed.returncode == 1
    assert completed.stdout.strip() == (f"benchmark: --json {target}: a file is there that is not an earlier "
                                        f"benchmark's figures, and this would replace it: give another name")
    assert json.loads(target.read_text()) == {"pixel_accuracy": 0.9, "mean_iu": 0.7}


def test_the_device_comes_from_fcnlite_device_where_not_given(monkeypatch, capsys):
    import argparse
    parser = benchmark.add_arguments(argparse.ArgumentParser())
    monkeypatch.setenv("FCNLITE_DEVICE", "cpu")
    assert benchmark.settings_from_arguments(parser.parse_args([])).device == "cpu"
    assert benchmark.settings_from_arguments(parser.parse_args(["--device", "gpu"])).device == "gpu"
    monkeypatch.setenv("FCNLITE_DEVICE", "bogus")
    assert benchmark.main([]) == 1
    assert capsys.readouterr().out == ("benchmark: FCNLITE_DEVICE='bogus' is not a device: set auto, cpu or gpu "
                                       "(or give --device)\n")


def test_example_beside_torch_reports_the_ratios(tmp_path):
    pytest.importorskip("torch")
    output, results = run_benchmark(tmp_path)
    assert "fcnlite/PyTorch" in output and "scores agree" in output
    assert results["check"]["relative_error"] < 1e-4
    assert set(FIGURES) <= set(results["torch"])
    assert set(results["ratio"]) == {"step", "inference", "peak_memory"}
    assert results["ratio"]["step"] == pytest.approx(results["fcnlite"]["step_seconds"]
                                                     / results["torch"]["step_seconds"])
    assert results["machine"]["torch_threads"] == 1


def test_threads_option_limits_fcnlites_host_passes_too(tmp_path):
    pytest.importorskip("threadpoolctl", reason="--threads sets NumPy's BLAS threads through threadpoolctl")
    _, results = run_benchmark(tmp_path, "--no-torch", "--threads", "1", "--repeats", "1")
    assert results["machine"]["host_threads"] == 1


def test_size_is_height_by_width():
    assert benchmark.parse_size("375x500") == (375, 500)
    assert benchmark.parse_size("64") == (64, 64)
    with pytest.raises(benchmark.BenchmarkError, match="HEIGHTxWIDTH"):
        benchmark.parse_size("375 by 500")


@pytest.mark.parametrize("architecture", ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"])
def test_torch_network_computes_fcnlites_scores(architecture):
    torch = pytest.importorskip("torch")
    model = build_model(architecture, n_classes=21, width=1 / 16)
    benchmark.randomize_score_layers(model)
    images = numpy.random.default_rng(1).standard_normal((1, 3, 30, 41)).astype(numpy.float32) * 50
    net = benchmark.build_torch_fcn(model).eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    scores = model.eval().forward(images)
    assert scores.shape == expected.shape == (1, 21, 30, 41)
    assert numpy.abs(expected).max() > 0              # the check compares something
    assert benchmark.relative_error(scores, expected) < 1e-4


def test_torch_keeps_the_upsampling_fixed_as_fcnlite():
    pytest.importorskip("torch")
    model = build_model("fcn8s", n_classes=21, width=1 / 16)
    net = benchmark.build_torch_fcn(model)
    trained = {name.split(".")[1] for name, p in net.named_parameters() if p.requires_grad}
    frozen = {name for name, layer in model.layers.items() if getattr(layer, "frozen", False)}
    assert frozen == {"upscore2", "upscore_pool4", "upscore8"}
    assert trained == {name for name, layer in model.layers.items() if layer.params} - frozen


def test_timed_steps_barely_move_the_weights_so_that_each_does_the_same_work():
    # at 1e-4 the VOC-sized batch's loss reached NaN after about 12 steps: the later ones were timed on NaNs
    settings = benchmark.Settings(size=(48, 40), width=1 / 16)
    runner = benchmark.FcnliteRunner(settings, *benchmark.random_batch(settings))
    before = runner.model.flat_values.copy()
    for _ in range(5):
        runner.step()
        assert numpy.isfinite(float(runner.last_loss))
    change = numpy.abs(runner.model.flat_values - before).max()
    assert 0 < change < 1e-5 * numpy.abs(before).max()   # at 1e-4: 5e-2


def test_fcnlite_memory_meter_sees_a_temporary_array():
    tracemalloc.start()
    try:
        with benchmark._FcnliteCpuPeak() as meter:
            temporary = numpy.ones(2**21)                # 16 MiB, freed before the block ends
            del temporary
    finally:
        tracemalloc.stop()
    assert 2**24 <= meter.peak < 2**24 + 2**22


def test_torch_memory_meter_counts_the_weights_and_a_temporary_tensor():
    torch = pytest.importorskip("torch")
    settings = benchmark.Settings(size=(16, 16), width=1 / 16, device="cpu")
    images, labels = benchmark.random_batch(settings)
    runner = benchmark.TorchRunner(torch, build_model("fcn32s", width=1 / 16), images, labels, "cpu")
    weights = sum(p.numel() * 4 for p in runner.net.parameters())
    with benchmark._TorchCpuPeak(runner) as meter:
        temporary = torch.ones(2**22)                     # 16 MiB
        del temporary
    if meter.peak is None:
        pytest.skip("this PyTorch's profiler gives no allocation events")
    assert weights + 2**24 <= meter.peak < weights + 2**24 + 2**22
