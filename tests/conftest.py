"""Shared fixtures: the backend parametrization every layer and model test runs under.

    xp           the array module of the backend under test ("numpy", and "cupy" where a CUDA
                 device answers); fcnlite.backend.use() has been called, so layers built in the
                 test allocate their parameters there. NumPy is chosen again afterwards.
    cupy_only    for tests that compare CuPy against NumPy: skipped without a CUDA device.

The gradient-check helpers live in tests/gradcheck.py.
"""
import os
import sys

# The tests multiply tiny matrices; a multi-threaded BLAS only adds overhead, and on a
# busy two-core machine its spinning threads make the suite several times slower.
# (Set before NumPy is first imported; a value already in the environment wins.)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import pytest  # noqa: E402

# the tests run from a source checkout as well as against an installed fcnlite
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fcnlite import backend, rng  # noqa: E402

CUPY_SKIP_REASON = "CuPy with a CUDA device not available"


def _cupy_usable():
    try:
        backend.use("cupy")
    except backend.BackendError:
        return False
    finally:
        backend.use("numpy")
    return True


CUPY_USABLE = _cupy_usable()
BACKENDS = ["numpy", pytest.param("cupy", marks=pytest.mark.skipif(not CUPY_USABLE, reason=CUPY_SKIP_REASON))]


@pytest.fixture(autouse=True)
def _numpy_backend_and_fixed_seed():
    """Every test starts on NumPy with fcnlite's random stream at a known state."""
    backend.use("numpy")
    rng.seed(0)
    yield
    backend.use("numpy")


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module of the backend under test, chosen with fcnlite.backend.use()."""
    backend.use(request.param)
    try:
        yield backend.get()
    finally:
        backend.use("numpy")


@pytest.fixture
def cupy_only():
    """CuPy, for tests that check it agrees with NumPy (the test itself switches backends)."""
    if not CUPY_USABLE:
        pytest.skip(CUPY_SKIP_REASON)
    import cupy
    return cupy


@pytest.fixture
def finest_split(monkeypatch):
    """A context in which every host pass is split as finely as it can be, over three threads."""
    def split(enabled):
        monkeypatch.setenv("FCNLITE_HOST_THREADS", "3" if enabled else "1")
        monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1 if enabled else 2**20)
        monkeypatch.setattr(backend, "HOST_BLOCK_BYTES", 1 if enabled else 2**20)
    return split
