"""Array-module dispatch: one code path for NumPy (CPU) and CuPy (GPU).

Every layer asks ``array_module(x)`` for the module that owns its input and
calls ``xp.matmul``, ``xp.zeros`` ... on it, so the same code runs on both
devices. CuPy is optional and imported only when asked for.

    use("auto" | "numpy" | "cupy")   choose the module new arrays are made with
    get()                            the chosen module
    array_module(x)                  numpy or cupy, whichever owns x
    to_device(x) / to_numpy(x)       move arrays to the chosen device / to the host

The environment variable FCNLITE_DEVICE sets the initial choice (default "auto").
"""
import contextlib
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy

from .errors import first_line

_xp = None          # the chosen module, resolved lazily
_name = None        # "numpy" or "cupy"

ALIASES = {"cpu": "numpy", "gpu": "cupy", "cuda": "cupy", "numpy": "numpy", "cupy": "cupy", "auto": "auto"}


class BackendError(RuntimeError):
    """Raised when the requested backend cannot be used (one readable line)."""


def _cupy_or_reason():
    """Return (cupy module, None) when a CUDA device answers, else (None, reason)."""
    try:
        import cupy
    except Exception as error:  # ImportError, or a broken CUDA install
        return None, f"CuPy is not importable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        return None, f"CuPy found no usable CUDA device ({first_line(error)})"
    if count < 1:
        return None, "CuPy found no CUDA device"
    return cupy, None


def use(device="auto"):
    """Choose the array module: "auto" (CuPy if a GPU answers, else NumPy), "numpy"/"cpu" or "cupy"/"gpu".

    Returns the name chosen ("numpy" or "cupy"). Raises BackendError with one
    line of explanation when "cupy" is asked for and cannot be used.
    """
    global _xp, _name
    key = ALIASES.get(str(device).lower())
    if key is None:
        raise BackendError(f"unknown device {device!r}: use auto, cpu/numpy or gpu/cupy")
    if key == "numpy":
        _xp, _name = numpy, "numpy"
    else:
        cupy, reason = _cupy_or_reason()
        if cupy is not None:
            _xp, _name = cupy, "cupy"
        elif key == "cupy":
            raise BackendError(f"device {str(device)!r} requested but {reason}")
        else:
            _xp, _name = numpy, "numpy"
    return _name


def get():
    """The chosen array module (resolving FCNLITE_DEVICE / auto on first use)."""
    if _xp is None:
        use(os.environ.get("FCNLITE_DEVICE", "auto"))
    return _xp


def name():
    """"numpy" or "cupy"."""
    get()
    return _name


def describe():
    """One line saying which backend runs, for programs to print at start."""
    xp = get()
    if _name == "cupy":
        device = xp.cuda.Device()
        props = xp.cuda.runtime.getDeviceProperties(device.id)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"fcnlite: running on GPU {device.id} ({gpu}) with CuPy {xp.__version__}"
    return f"fcnlite: running on CPU with NumPy {numpy.__version__}"


def array_module(x):
    """numpy or cupy, whichever module owns array x (NumPy for anything that is not a CuPy array)."""
    module = type(x).__module__
    if module.startswith("cupy"):
        import cupy
        return cupy
    return numpy


def is_gpu_array(x):
    return type(x).__module__.startswith("cupy")


def to_device(x, dtype=None):
    """Copy a host (or device) array onto the chosen backend's device."""
    xp = get()
    if xp is numpy:
        x = to_numpy(x)
        return x if dtype is None else x.astype(dtype, copy=False)
    return xp.asarray(x, dtype=dtype)


def to_numpy(x):
    """Copy an array to the host as a NumPy array (no copy when it already is one)."""
    if is_gpu_array(x):
        return x.get()
    return numpy.asarray(x)


def synchronize():
    """Wait for queued GPU work (no-op on CPU): needed before timing."""
    if _name == "cupy":
        _xp.cuda.get_current_stream().synchronize()


_host_pool = None   # (workers, ThreadPoolExecutor), made at the first split


def _forget_host_pool():
    # a child made by fork() inherits the pool but none of its threads: it must make its own
    global _host_pool
    _host_pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_host_pool)

# Host passes smaller than this per thread run whole in the caller: starting a thread would
# cost more than it saves.
MIN_THREAD_BYTES = 2**20
# A pass made of several NumPy operations runs them a block of about this many bytes at a
# time, so that the block stays in a core's L2 cache (2 MiB on this project's machines)
# between them and crosses main memory once.
HOST_BLOCK_BYTES = 2**20


def host_threads():
    """How many threads the CPU's memory-bound passes use: FCNLITE_HOST_THREADS, else the CPUs this
    process may run on (at most 8: these passes are bound by memory bandwidth, not by cores)."""
    setting = os.environ.get("FCNLITE_HOST_THREADS")
    if setting:
        if not setting.strip().isdecimal() or int(setting) < 1:
            raise BackendError(f"FCNLITE_HOST_THREADS={setting!r}: expected a whole number of threads, 1 or more")
        return int(setting)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus))


@contextlib.contextmanager
def host_threads_set_to(count):
    """Within the block, host_threads() is `count` (FCNLITE_HOST_THREADS); the setting before it is restored."""
    saved = os.environ.get("FCNLITE_HOST_THREADS")
    os.environ["FCNLITE_HOST_THREADS"] = str(count)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["FCNLITE_HOST_THREADS"]
        else:
            os.environ["FCNLITE_HOST_THREADS"] = saved


def split_over_threads(work, count, nbytes, blocked=False):
    """Call work(start, stop) on consecutive parts of range(count), which together cover it once,
    on up to host_threads() threads; nbytes is the memory the whole pass touches.

    NumPy runs a copy or an element-wise pass on one core. It releases the GIL while it
    does, so parts given to other threads run at the same time, as PyTorch's CPU passes
    do. With blocked=True each thread's part is cut further into blocks of about
    HOST_BLOCK_BYTES, for passes made of several NumPy operations over the same memory.
    For NumPy arrays only: CuPy keeps the current device and stream per thread, so a
    call on a pool thread could run elsewhere than the caller's, and synchronize() would
    not wait for it. work must not itself call split_over_threads: its parts would queue
    behind pool threads that are waiting for them, a deadlock.
    """
    global _host_pool
    parts = max(1, min(host_threads(), count, nbytes // MIN_THREAD_BYTES))
    step = max(1, count * HOST_BLOCK_BYTES // max(nbytes, 1)) if blocked else count

    def run(first, last):
        for start in range(first, last, step):
            work(start, min(start + step, last))

    if parts == 1:
        run(0, count)
        return
    if _host_pool is None or _host_pool[0] < parts - 1:
        _host_pool = parts - 1, ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="fcnlite")
    bounds = [count * part // parts for part in range(parts + 1)]
    # each part runs in a copy of the caller's context: numpy.errstate, which NumPy 2 keeps in a context
    # variable, then holds for the parts on other threads as for the caller's
    others = [_host_pool[1].submit(contextvars.copy_context().run, run, bounds[part], bounds[part + 1])
              for part in range(1, parts)]
    try:
        run(bounds[0], bounds[1])
    finally:   # never return, not even with an error, while other threads still write
        wait(others)
    for other in others:
        other.result()   # raises a part's error, if it had one


def split_channels(work, *arrays, blocked=False):
    """work(*parts) with each part the channel slice [:, c0:c1] of one of the arrays (None stays
    None), the channels split over the host's threads as split_over_threads does. CuPy arrays
    go to work whole, in one call: the GPU runs the pass in parallel itself; so do arrays
    with no channel axis (fewer than two dimensions)."""
    if is_gpu_array(arrays[0]) or arrays[0].ndim < 2:
        work(*arrays)
        return

    def part(c0, c1):
        work(*(None if array is None else array[:, c0:c1] for array in arrays))
    split_over_threads(part, arrays[0].shape[1], sum(array.nbytes for array in arrays if array is not None), blocked)


def split_flat(work, *arrays, blocked=False):
    """work(*parts) with each part the same flat slice of one of the arrays, split over the host's
    threads as split_over_threads does: for element-wise passes over arrays of one shape (a
    parameter, its gradient, its velocity). CuPy arrays, and arrays that are not all
    C-contiguous (no flat views of them), go to work whole, in one call."""
    if is_gpu_array(arrays[0]) or not all(array.flags.c_contiguous for array in arrays):
        work(*arrays)
        return
    flat = [array.reshape(-1) for array in arrays]

    def part(start, stop):
        work(*(array[start:stop] for array in flat))
    split_over_threads(part, flat[0].size, sum(array.nbytes for array in flat), blocked)


def zero(array):
    """Set every entry of array to 0, in place; on the CPU over the host's threads (fc6's 411 MB
    gradient takes 50 ms on one core)."""
    split_flat(lambda part: part.fill(0), array)


def reuse_host_memory():
    """Keep freed host memory in the process instead of returning it to the OS (glibc only).

    glibc serves every allocation over 32 MB with its own mmap and unmaps it on free,
    so each training step page-faults its activations (hundreds of MB) back in. Turning
    mmap off for malloc (M_MMAP_MAX = 0) and trimming the heap only beyond 1 GiB free lets the next step
    reuse the same pages: about 8% of a full-size CPU step on this project's machines.
    Returns True when it took effect.
    """
    import ctypes
    import ctypes.util
    import sys
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):
        return False
