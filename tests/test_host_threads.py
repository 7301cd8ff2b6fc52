"""The CPU's memory-bound passes split over threads and cache-sized blocks give the same result as one pass.

backend.split_over_threads runs a pass (a copy, an element-wise update) as parts of a
range on several threads, each part cut into blocks. Each test here forces the finest
split (three threads, blocks of one item, no size threshold) and compares the result
bit for bit with the pass run whole on one thread.
"""
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy
import pytest

from fcnlite import backend
from fcnlite.layers import Conv2d, MaxPool2d, ReLU
from fcnlite.layers.im2col import col2im_add, im2col
from fcnlite.optim import _sgd_update_host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def both_ways(finest_split, compute):
    """compute() run whole on one thread, then split finely over three."""
    finest_split(False)
    whole = compute()
    finest_split(True)
    return whole, compute()


@pytest.mark.parametrize("count", [1, 2, 5, 17, 1000])
@pytest.mark.parametrize("threads", ["1", "2", "3", "8"])
@pytest.mark.parametrize("blocked", [False, True])
def test_split_over_threads_covers_the_range_once(monkeypatch, count, threads, blocked):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", threads)
    monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1)
    monkeypatch.setattr(backend, "HOST_BLOCK_BYTES", 7)
    hits = numpy.zeros(count, dtype=int)
    parts, lock = [], threading.Lock()

    def work(start, stop):
        assert 0 <= start < stop <= count
        with lock:
            parts.append((start, stop, threading.get_ident()))
        hits[start:stop] += 1
    backend.split_over_threads(work, count, nbytes=count * 4, blocked=blocked)
    assert (hits == 1).all()
    expected_parts = min(int(threads), count)
    used = len({thread for _, _, thread in parts})
    assert min(2, expected_parts) <= used <= expected_parts   # a worker may take two parts in turn
    if blocked:   # 4 bytes an item, blocks of 7 bytes: one item a call
        assert all(stop - start == 1 for start, stop, _ in parts)
    else:
        assert len(parts) == expected_parts


@pytest.mark.parametrize("setting", ["0", "-2", "two", "1.5", "\u00b2"])
def test_a_bad_thread_count_is_a_backend_error(monkeypatch, setting):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", setting)
    with pytest.raises(backend.BackendError, match="FCNLITE_HOST_THREADS"):
        backend.host_threads()


def test_host_threads_set_to_restores_the_setting_before_it(monkeypatch):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", "3")
    with backend.host_threads_set_to(1):
        assert backend.host_threads() == 1
    assert backend.host_threads() == 3
    monkeypatch.delenv("FCNLITE_HOST_THREADS")
    with backend.host_threads_set_to(2):
        assert backend.host_threads() == 2
    assert "FCNLITE_HOST_THREADS" not in os.environ


def test_the_callers_numpy_errstate_holds_on_every_thread(monkeypatch):
    import warnings
    monkeypatch.setenv("FCNLITE_HOST_THREADS", "4")
    monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1)
    values = numpy.full(64, 1e30, numpy.float32)

    def square(start, stop):   # overflows to inf in every part
        numpy.multiply(values[start:stop], values[start:stop])
    with warnings.catch_warnings(record=True) as caught, numpy.errstate(over="ignore"):
        warnings.simplefilter("always")
        backend.split_over_threads(square, 64, values.nbytes)
    assert [str(warning.message) for warning in caught] == []
    with warnings.catch_warnings(record=True) as caught:   # and without it each part warns (so the test can fail)
        warnings.simplefilter("always")
        backend.split_over_threads(square, 64, values.nbytes)
    assert len(caught) >= 1


def test_small_passes_run_in_the_caller(monkeypatch):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", "4")
    threads = set()
    backend.split_over_threads(lambda start, stop: threads.add(threading.get_ident()), 100, nbytes=2**20 - 1)
    assert threads == {threading.get_ident()}


def test_split_channels_gives_work_the_same_channel_slice_of_every_array(monkeypatch):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", "2")
    monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1)
    a, b = numpy.zeros((2, 9, 3)), numpy.zeros((2, 9, 5), dtype=bool)
    seen = []

    def work(a_part, none_part, b_part):
        assert none_part is None and a_part.shape[1] == b_part.shape[1]
        seen.append(a_part.shape[1])
        a_part += 1
        b_part |= True
    backend.split_channels(work, a, None, b, blocked=True)
    assert len(seen) > 1 and sum(seen) == 9
    assert (a == 1).all() and b.all()


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (3, 2, 0), (16, 8, 0), (2, 3, 2)])
def test_im2col_and_col2im_split_by_channel(finest_split, kernel, stride, padding):
    generator = numpy.random.default_rng(1)
    x = generator.standard_normal((5, 20, 23))
    out_h = (20 + 2 * padding - kernel) // stride + 1
    out_w = (23 + 2 * padding - kernel) // stride + 1
    row0 = min(1, out_h - 1)   # a band that starts below the top, where there is room for one
    rows = out_h - row0
    whole, split = both_ways(finest_split, lambda: im2col(x, kernel, kernel, stride, row0, rows, out_w,
                                                          padding=padding).copy())
    numpy.testing.assert_array_equal(split, whole)
    cols = generator.standard_normal(whole.shape)

    def col2im():
        dx = numpy.ones_like(x)
        return col2im_add(cols, dx, kernel, kernel, stride, row0, rows, out_w, padding)
    whole, split = both_ways(finest_split, col2im)
    numpy.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("shape, kernel, stride", [((2, 5, 9, 11), 2, 2), ((1, 4, 8, 7), 3, 1), ((3, 2, 5, 5), 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_maxpool_split_by_channel(finest_split, shape, kernel, stride, training):
    from fcnlite.layers import no_grad
    generator = numpy.random.default_rng(2)
    x = generator.integers(-3, 3, size=shape).astype(numpy.float64)   # many ties
    dy_shape = MaxPool2d(kernel, stride).output_shape(shape)
    dy = generator.standard_normal(dy_shape)

    def pool():
        layer = MaxPool2d(kernel, stride)
        if not training:
            with no_grad():
                return layer.forward(x), None
        return layer.forward(x), layer.backward(dy)
    (y_whole, dx_whole), (y_split, dx_split) = both_ways(finest_split, pool)
    numpy.testing.assert_array_equal(y_split, y_whole)
    if training:
        numpy.testing.assert_array_equal(dx_split, dx_whole)


@pytest.mark.parametrize("inplace", [False, True])
def test_relu_split_by_channel(finest_split, inplace):
    generator = numpy.random.default_rng(3)
    x = generator.standard_normal((2, 6, 5, 4))
    dy = generator.standard_normal((2, 6, 7, 6))[:, :, 1:6, 1:5]   # a cropped view, as conv backward gives

    def relu():
        layer = ReLU(inplace=inplace)
        return layer.forward(x.copy()), layer.backward(dy)
    (y_whole, dx_whole), (y_split, dx_split) = both_ways(finest_split, relu)
    numpy.testing.assert_array_equal(y_whole, numpy.maximum(x, 0))
    numpy.testing.assert_array_equal(dx_whole, dy * (x > 0))
    numpy.testing.assert_array_equal(y_split, y_whole)
    numpy.testing.assert_array_equal(dx_split, dx_whole)


def test_sgd_host_update_split_into_blocks(finest_split):
    generator = numpy.random.default_rng(4)
    w0, g, v0 = (generator.standard_normal((7, 3, 5)) for _ in range(3))

    def update():
        w, v = w0.copy(), v0.copy()
        _sgd_update_host(w, g, v, lr=0.1, momentum=0.9, weight_decay=0.01)
        return w, v
    (w_whole, v_whole), (w_split, v_split) = both_ways(finest_split, update)
    v_expected = 0.9 * v0 - 0.1 * (g + 0.01 * w0)
    numpy.testing.assert_allclose(v_whole, v_expected, rtol=1e-14)
    numpy.testing.assert_allclose(w_whole, w0 + v_expected, rtol=1e-14)
    numpy.testing.assert_array_equal(w_split, w_whole)
    numpy.testing.assert_array_equal(v_split, v_whole)


def test_sgd_host_update_of_arrays_without_flat_views():
    generator = numpy.random.default_rng(5)
    w0, g, v0 = (numpy.asfortranarray(generator.standard_normal((6, 4))) for _ in range(3))
    w, v = w0.copy(order="F"), v0.copy(order="F")
    _sgd_update_host(w, g, v, lr=0.1, momentum=0.9, weight_decay=0.01)
    v_expected = 0.9 * v0 - 0.1 * (g + 0.01 * w0)
    numpy.testing.assert_allclose(v, v_expected, rtol=1e-14)
    numpy.testing.assert_allclose(w, w0 + v_expected, rtol=1e-14)


@pytest.mark.parametrize("order", ["C", "F"])
def test_zero_grad_split_over_threads_zeroes_every_entry(finest_split, order):
    layer = Conv2d(3, 5, 3)
    finest_split(True)
    for key in layer.grads:
        layer.grads[key] = numpy.full(layer.grads[key].shape, numpy.nan, dtype=layer.dtype, order=order)
    layer.zero_grad()
    for key, grad in layer.grads.items():
        assert grad.flags.c_contiguous == (order == "C" or grad.ndim == 1)
        assert not grad.any() and not numpy.isnan(grad).any(), key


def test_parameters_are_stored_c_contiguous():
    layer = Conv2d(2, 3, 3)
    layer.add_param("W", numpy.asfortranarray(numpy.ones((3, 2, 3, 3))))
    assert layer.params["W"].flags.c_contiguous and layer.grads["W"].flags.c_contiguous


def test_relu_of_an_array_without_a_channel_axis(finest_split):
    finest_split(True)
    x = numpy.array([-2.0, 0.5, 3.0, -0.1])
    layer = ReLU()
    numpy.testing.assert_array_equal(layer.forward(x), [0.0, 0.5, 3.0, 0.0])
    numpy.testing.assert_array_equal(layer.backward(numpy.ones(4)), [0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("parts, failing", [(2, 0), (3, 1)], ids=["the caller's part", "a worker's part"])
def test_an_error_in_one_part_still_waits_for_every_other_part(monkeypatch, parts, failing):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", str(parts))
    monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1)
    finished = []

    def work(start, stop):
        if start == failing:
            raise ValueError(f"part {start} failed")
        time.sleep(0.3 if start else 0)   # the workers' parts end well after the caller's
        finished.append(start)
    with pytest.raises(ValueError, match=f"part {failing}"):
        backend.split_over_threads(work, parts, nbytes=4 * parts)
    assert sorted(finished) == [part for part in range(parts) if part != failing]


def _split_in_child(queue):
    hits = numpy.zeros(8, dtype=int)
    backend.split_over_threads(lambda start, stop: hits.__setitem__(slice(start, stop), 1), 8, nbytes=8)
    queue.put(int(hits.sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_makes_its_own_threads(monkeypatch):
    monkeypatch.setenv("FCNLITE_HOST_THREADS", "2")
    monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1)
    backend.split_over_threads(lambda start, stop: None, 8, nbytes=8)   # the pool exists in this process
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_in_child, args=(queue,))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in split_over_threads: it waited for threads it does not have")
    assert child.exitcode == 0 and queue.get(timeout=5) == 8


def run_python(code, **environment):
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    env.update(environment, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_importing_fcnlite_lets_openblas_threads_sleep_at_once():
    code = "import os, fcnlite; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    assert run_python(code).strip() == "4"
    assert run_python(code, OPENBLAS_THREAD_TIMEOUT="28").strip() == "28"   # the user's own setting wins


def test_split_channels_hands_cupy_arrays_over_whole(cupy_only, monkeypatch):
    import cupy
    monkeypatch.setattr(backend, "MIN_THREAD_BYTES", 1)
    x = cupy.zeros((1, 64, 8, 8))
    calls = []
    backend.split_channels(lambda part: calls.append(part), x, blocked=True)
    assert len(calls) == 1 and calls[0] is x
