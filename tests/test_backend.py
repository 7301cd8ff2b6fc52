"""fcnlite.backend: choosing NumPy or CuPy, and moving arrays between host and device."""
import os
import subprocess
import sys

import numpy
import pytest

from fcnlite import backend
from conftest import CUPY_USABLE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_use_numpy_selects_numpy():
    assert backend.use("numpy") == "numpy"
    assert backend.get() is numpy
    assert backend.name() == "numpy"


@pytest.mark.parametrize("alias", ["cpu", "CPU", "numpy"])
def test_cpu_aliases_select_numpy(alias):
    assert backend.use(alias) == "numpy"
    assert backend.get() is numpy


def test_use_unknown_device_raises_backend_error():
    with pytest.raises(backend.BackendError, match="bogus"):
        backend.use("bogus")


@pytest.mark.skipif(CUPY_USABLE, reason="CuPy is usable on this machine")
@pytest.mark.parametrize("device", ["cupy", "gpu", "cuda"])
def test_use_cupy_without_cuda_raises_one_line_backend_error(device):
    with pytest.raises(backend.BackendError) as raised:
        backend.use(device)
    message = str(raised.value)
    assert "\n" not in message
    assert "cupy" in message.lower()
    assert backend.get() is numpy  # the failed request left the previous choice in place


@pytest.mark.skipif(CUPY_USABLE, reason="CuPy is usable on this machine")
def test_auto_falls_back_to_numpy_without_cuda():
    assert backend.use("auto") == "numpy"


def _backend_in_subprocess(device):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("FCNLITE_DEVICE", None)
    if device is not None:
        env["FCNLITE_DEVICE"] = device
    code = "from fcnlite import backend\nprint(backend.name())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_fcnlite_device_environment_variable_chooses_the_backend():
    result = _backend_in_subprocess("cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


@pytest.mark.skipif(CUPY_USABLE, reason="CuPy is usable on this machine")
def test_fcnlite_device_cupy_without_cuda_fails_with_backend_error():
    result = _backend_in_subprocess("cupy")
    assert result.returncode != 0
    assert "BackendError" in result.stderr


@pytest.mark.skipif(not CUPY_USABLE, reason="CuPy with a CUDA device not available")
def test_fcnlite_device_environment_variable_selects_cupy():
    result = _backend_in_subprocess("gpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cupy"


def test_to_device_and_to_numpy_round_trip(xp):
    host = numpy.arange(12, dtype=numpy.float32).reshape(3, 4)
    device = backend.to_device(host)
    assert backend.array_module(device) is xp
    back = backend.to_numpy(device)
    assert isinstance(back, numpy.ndarray)
    numpy.testing.assert_array_equal(back, host)
    assert back.dtype == numpy.float32


def test_to_device_converts_dtype(xp):
    device = backend.to_device(numpy.arange(4, dtype=numpy.int64), dtype=numpy.float64)
    assert device.dtype == numpy.float64
    numpy.testing.assert_array_equal(backend.to_numpy(device), [0.0, 1.0, 2.0, 3.0])


def test_array_module_names_the_module_that_owns_the_array(xp):
    assert backend.array_module(numpy.zeros(2)) is numpy
    assert backend.array_module(xp.zeros(2)) is xp
    assert backend.is_gpu_array(xp.zeros(2)) == (xp is not numpy)


def test_describe_is_one_line(xp):
    line = backend.describe()
    assert "\n" not in line and line.startswith("fcnlite: running on")


def test_reuse_host_memory_keeps_numpy_working():
    import sys
    import numpy
    from fcnlite import backend as backend_module
    took_effect = backend_module.reuse_host_memory()
    assert took_effect == sys.platform.startswith("linux")
    big = numpy.ones(50 * 2**20 // 8)          # over glibc's 32 MB mmap threshold
    assert big.sum() == big.size


def test_import_fcnlite_alone_gives_the_modules_a_script_of_ones_own_uses():
    # fcnlite.metrics, .evaluate, .visualize and fcnlite.data.FolderSegmentation each needed an import
    # of their own; a fresh interpreter, since this test session has imported them all already
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = ("import fcnlite; fcnlite.metrics.ConfusionMatrix; fcnlite.evaluate.predict_image; "
              "fcnlite.visualize.overlay; fcnlite.data.FolderSegmentation; fcnlite.data.parse_class_map")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=root), timeout=120)
    assert done.returncode == 0, done.stderr
