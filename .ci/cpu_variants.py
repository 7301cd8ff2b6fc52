"""CPU measurements beside the benchmark: the figures in BENCHMARKS.md's CPU sections (host threads, Winograd).

    python .ci/cpu_variants.py threads [step|infer] [N]   the FCN-8s step (or inference) at VOC size with
                                                          FCNLITE_HOST_THREADS=1 and the default (at least 2)
                                                          taking turns
                                                          in one process, N times each (default 5)
    python .ci/cpu_variants.py spin                      conv1_2's bands, each im2col followed by its product:
                                                          the copies on one thread and on two. Run it with
                                                          OPENBLAS_THREAD_TIMEOUT=28 (OpenBLAS's own default) and
                                                          without, to see its idle threads hold the second core
    python .ci/cpu_variants.py passes                    the SGD update of FCN-8s and pool1 forward + backward,
                                                          on one thread and on two
    python .ci/cpu_variants.py padding                   a padded copy + im2col over a layer's bands, against im2col
                                                          reading the padding itself, for conv1_2 .. conv4_2's inputs
    python .ci/cpu_variants.py upsampling                upscore8 at VOC size (21 channels, kernel 16, stride 8, 73x89
                                                          input), forward and backward: ConvTranspose2d (its phases
                                                          computed as one convolution) against the col2im form it
                                                          replaced, taking turns
    python .ci/cpu_variants.py packing [N]               the FCN-8s step with packed parameters (one SGD update per
                                                          group, zero_grad one fill) against the per-parameter passes
                                                          it replaced, taking turns, N times each (default 20); and
                                                          zero_grad + the update alone
    python .ci/cpu_variants.py winograd [step|infer] [N]  the FCN-8s step (or inference) with Winograd's form for the
                                                          wide 3x3 layers and with im2col everywhere, taking turns in
                                                          one process, N times each (default 5)
    python .ci/cpu_variants.py winograd-passes [N]       each pass (y, dx, dW) of each 3x3 layer conv1_2 .. conv5_1
                                                          alone at VOC size by each form it could take, median of N
                                                          (default 5)
    python .ci/cpu_variants.py winograd-rule [N]         the FCN-8s step with Winograd's form chosen by the channels
                                                          on both sides of each convolution against by the input's
                                                          alone (stop 12), taking turns, N times each (default 5)
    python .ci/cpu_variants.py winograd-layers           conv2_2 .. conv5_1 alone at VOC size, forward and backward,
                                                          Winograd's form against im2col's, taking turns (median of 3)
    python .ci/cpu_variants.py layers [N]                one inference, each convolution timed inside the network,
                                                          fcnlite's against PyTorch's module (needs PyTorch), taking
                                                          turns, median of N (default 5)

    python .ci/cpu_variants.py checksums [N]             saving and loading FCN-8s's weights (513 MB) with a checksum
                                                          per array in one chunk (as fcnlite writes them), with
                                                          HDF5's default chunks, and with no checksum, taking turns,
                                                          median of N (default 5)
    python .ci/cpu_variants.py writer [N]                saving FCN-8s's weights (513 MB) through the file object
                                                          that keeps a failed write's error (io.WriteErrorKept, as
                                                          fcnlite writes them) and through h5py opening the path
                                                          itself (before), taking turns, median of N (default 5)
    python .ci/cpu_variants.py dw-blocks [N]             dW's products in blocks of output channels (at most
                                                          WEIGHT_GRAD_BLOCK_BYTES of temporary) and whole (fc6's:
                                                          392 MiB), taking turns, N times each (default 7): fc6's and
                                                          fc7's backward alone at VOC size, then the FCN-8s step
                                                          with its peak memory (tracemalloc)

fcnlite is imported before NumPy, so that its OPENBLAS_THREAD_TIMEOUT default applies.
"""
import contextlib
import os
import sys
import time
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from fcnlite import backend  # noqa: E402  (before NumPy: see the docstring)
import numpy  # noqa: E402
from fcnlite.layers.im2col import im2col, row_bands, workspace  # noqa: E402

VOC_LAYER_INPUTS = [(64, 573, 698), (128, 287, 349), (256, 144, 175), (512, 72, 88)]   # conv1_2 .. conv4_2


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def with_threads(count, function):
    with backend.host_threads_set_to(count):
        return seconds(function)


def taking_turns(run, settings, repeats):
    """{name: median seconds of run()} under each setting (name -> a function giving a context manager),
    the settings taking turns, the first of each turn alternating so that none always follows another."""
    times = {name: [] for name in settings}
    for turn in range(int(repeats)):
        for name in (list(settings) if turn % 2 == 0 else list(reversed(settings))):
            with settings[name]():
                times[name].append(seconds(run))
    return {name: numpy.median(spent) for name, spent in times.items()}


def weight_grad_blocks(block_bytes):
    """Within the block, Conv2d's dW is made in blocks of at most block_bytes of temporary."""
    from fcnlite.layers import conv2d
    return mock.patch.object(conv2d, "WEIGHT_GRAD_BLOCK_BYTES", block_bytes)


def voc_runner():
    """fcnlite's FCN-8s, loss and SGD on one random VOC-sized image, as the benchmark builds them."""
    from fcnlite.benchmark import FcnliteRunner, Settings, random_batch
    settings = Settings()
    return FcnliteRunner(settings, *random_batch(settings))


def warm_voc_run(mode):
    """The benchmark's training step (mode "step") or inference, run once already."""
    runner = voc_runner()
    run = runner.step if mode == "step" else runner.infer
    run()
    return run


def winograd_threshold(channels):
    """Within the block, Conv2d takes Winograd's form from `channels` channels on (10**9: never)."""
    from fcnlite.layers import winograd
    return mock.patch.object(winograd, "MIN_CHANNELS", channels)


def winograd_by_input_channels_alone():
    """Within the block, Winograd's form is chosen as in stop 12: by the input's channels alone (so that
    conv2_1's dx, 128 channels into 64, takes it too)."""
    from fcnlite.layers import winograd
    rule = winograd.applies
    return mock.patch.object(winograd, "applies", lambda x, kernel_h, kernel_w, stride, padding, out_channels:
                             rule(x, kernel_h, kernel_w, stride, padding, 10**9))


def threads(mode="step", repeats="5"):
    run = warm_voc_run(mode)
    several = max(2, backend.host_threads())
    medians = taking_turns(run, {count: lambda count=count: backend.host_threads_set_to(count)
                                 for count in (1, several)}, repeats)
    one, many = medians[1], medians[several]
    print(f"{mode}: host threads 1: {one:.2f} s, {several}: {many:.2f} s, ratio {many / one:.3f} "
          f"(OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')})")


def spin():
    channels, height, width = VOC_LAYER_INPUTS[0]
    x = numpy.random.default_rng(0).random((channels, height, width), dtype=numpy.float32)
    weights = numpy.ones((64, channels * 9), dtype=numpy.float32)
    bands = row_bands(height, channels * 9 * width * 4)
    buffer = workspace.get(numpy, channels * 9 * bands[0][1] * width, numpy.float32)
    for _ in range(4):
        for count in (1, 2):
            copies = products = 0.0
            for row0, rows in bands:
                copies += with_threads(count, lambda: im2col(x, 3, 3, 1, row0, rows, width, buffer, padding=1))
                cols = buffer[:channels * 9 * rows * width].reshape(channels * 9, rows * width)
                products += seconds(lambda: weights @ cols)
            print(f"spin: {count} thread(s): copies {copies * 1e3:.0f} ms, products {products * 1e3:.0f} ms "
                  f"(OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')})")


def passes():
    from fcnlite import SGD
    from fcnlite.layers import MaxPool2d
    from fcnlite.models import build_model
    optimizer = SGD(build_model("fcn8s", n_classes=21, width=1.0), lr=1e-10)
    optimizer.step()
    x = numpy.random.default_rng(0).random((1,) + VOC_LAYER_INPUTS[0], dtype=numpy.float32)
    pool = MaxPool2d()

    def pool_pass():
        pool.backward(pool.forward(x))
    for _ in range(3):
        for count in (1, 2):
            print(f"passes: {count} thread(s): SGD update {with_threads(count, optimizer.step) * 1e3:.0f} ms, "
                  f"pool1 forward + backward {with_threads(count, pool_pass) * 1e3:.0f} ms")


def padding():
    for channels, height, width in VOC_LAYER_INPUTS:
        x = numpy.random.default_rng(0).random((channels, height, width), dtype=numpy.float32)
        bands = row_bands(height, channels * 9 * width * 4)
        buffer = workspace.get(numpy, channels * 9 * bands[0][1] * width, numpy.float32)

        def padded_copy():
            padded = numpy.pad(x, ((0, 0), (1, 1), (1, 1)))
            for row0, rows in bands:
                im2col(padded, 3, 3, 1, row0, rows, width, buffer)

        def reading_the_padding():
            for row0, rows in bands:
                im2col(x, 3, 3, 1, row0, rows, width, buffer, padding=1)
        times = [(seconds(padded_copy), seconds(reading_the_padding)) for _ in range(5)]
        copy, direct = numpy.median(times, axis=0) * 1e3
        print(f"padding: {channels}x{height}x{width}: numpy.pad + im2col {copy:.0f} ms, "
              f"im2col reading the padding {direct:.0f} ms")


def upsampling():
    """upscore8 on the current backend (gpu_variants.py runs it on CuPy): the phase form against col2im's."""
    from fcnlite.layers import ConvTranspose2d
    from fcnlite.layers.im2col import col2im_add
    xp = backend.get()
    channels, kernel, stride, height, width = 21, 16, 8, 73, 89
    layer = ConvTranspose2d(channels, channels, kernel, stride).init_bilinear()
    layer.frozen = True   # as in FCN-8s: dx only
    x = xp.asarray(numpy.random.default_rng(0).random((1, channels, height, width), dtype=numpy.float32))
    dy = xp.asarray(numpy.random.default_rng(1).random(layer.output_shape(x.shape), dtype=numpy.float32))
    weights = layer.params["W"].reshape(channels, -1)
    bands = row_bands(height, weights.nbytes // channels * width, xp)

    def col2im_form():   # the layer's definition, y = col2im(Wm.T @ x), dx = Wm @ im2col(dy), in bands
        y = xp.zeros(dy.shape, dtype=numpy.float32)
        dx = xp.empty_like(x)
        for row0, rows in bands:
            cols = weights.T @ x[0, :, row0:row0 + rows].reshape(channels, rows * width)
            col2im_add(cols, y[0], kernel, kernel, stride, row0, rows, width)
        for row0, rows in bands:
            cols = im2col(dy[0], kernel, kernel, stride, row0, rows, width)
            dx[0, :, row0:row0 + rows] = (weights @ cols).reshape(channels, rows, width)
        return y, dx

    def phases():
        return layer.forward(x), layer.backward(dy)

    def timed(function):   # on a GPU, from an idle device to an idle device
        backend.synchronize()
        return seconds(lambda: (function(), backend.synchronize()))
    for old, new in zip(col2im_form(), phases()):
        assert numpy.allclose(backend.to_numpy(old), backend.to_numpy(new), rtol=1e-4, atol=1e-4)
    repeats = 9 if xp is numpy else 50
    times = numpy.median([(timed(col2im_form), timed(phases)) for _ in range(repeats)], axis=0) * 1e3
    print(f"upsampling ({xp.__name__}): upscore8 forward + backward: col2im form {times[0]:.2f} ms, phases as one "
          f"convolution {times[1]:.2f} ms, ratio {times[1] / times[0]:.2f}")


def packing(repeats="20", tf32=False):
    """The FCN-8s step on the current backend (gpu_variants.py runs it on CuPy) with the parameters packed
    (SGD: one update per group, zero_grad one fill) against the per-parameter passes that the packing
    replaced, taking turns; and the host's time for zero_grad + the update alone."""
    import statistics
    from fcnlite import benchmark, optim
    repeats = int(repeats)

    class PerParameter(benchmark.FcnliteRunner):
        """The same step with zero_grad and the update run parameter by parameter, as before stop 13
        (over views of the same packed arrays: only the number of passes, and launches, differs)."""
        name = "per parameter"

        def __init__(self, *args):
            super().__init__(*args)
            model, optimizer = self.model, self.optimizer
            multipliers = model.parameter_multipliers()

            def zero_grad():
                for layer in model.layers.values():
                    layer.zero_grad()

            def step():
                for name, value, grad in model.named_parameters():
                    lr_mult, decay_mult = multipliers[name]
                    if lr_mult == 0:
                        continue
                    arguments = (value, grad, optimizer.velocity[name], optimizer.lr * lr_mult, optimizer.momentum,
                                 optimizer.weight_decay * decay_mult)
                    if backend.is_gpu_array(value):
                        from fcnlite.layers import cuda_kernels
                        cuda_kernels.sgd_update(*arguments)
                    else:
                        optim._sgd_update_host(*arguments)
            model.zero_grad, optimizer.step = zero_grad, step

    def host_seconds(runner):
        """Median host time of zero_grad + the update, from an idle device."""
        spent = []
        for _ in range(repeats):
            backend.synchronize()
            spent.append(seconds(lambda: (runner.model.zero_grad(), runner.optimizer.step())))
        backend.synchronize()
        return statistics.median(spent)

    device = "gpu" if backend.get() is not numpy else "cpu"
    settings = benchmark.Settings(device=device, tf32=tf32)
    benchmark.set_tf32(tf32)
    images, labels = benchmark.random_batch(settings)
    packed = benchmark.FcnliteRunner(settings, images, labels)
    packed.name = "packed"
    per_parameter = PerParameter(settings, images, labels)
    for runner in (packed, per_parameter):
        benchmark.warm_up(runner, "step", 3)
    times = benchmark.interleaved_times([packed, per_parameter], "step", repeats)
    step = {name: statistics.median(times[name]) for name in times}
    host = {runner.name: host_seconds(runner) for runner in (packed, per_parameter)}
    print(f"packing (FCN-8s step, {device}{', TF32 on' if tf32 else ''}): packed {step['packed'] * 1e3:.2f} ms, "
          f"per parameter {step['per parameter'] * 1e3:.2f} ms, ratio {step['packed'] / step['per parameter']:.3f}; "
          f"zero_grad + update alone: {host['packed'] * 1e3:.3f} against {host['per parameter'] * 1e3:.3f} ms "
          f"(host time)", flush=True)


def winograd_or_im2col(mode="step", repeats="5"):
    from fcnlite.layers import winograd
    run = warm_voc_run(mode)
    thresholds = {"winograd": winograd.MIN_CHANNELS, "im2col": 10**9}
    medians = taking_turns(run, {name: lambda threshold=threshold: winograd_threshold(threshold)
                                 for name, threshold in thresholds.items()}, repeats)
    print(f"winograd: {mode}: Winograd {medians['winograd']:.2f} s, im2col {medians['im2col']:.2f} s, "
          f"ratio {medians['winograd'] / medians['im2col']:.3f}")


def winograd_rule(repeats="5"):
    """The FCN-8s step with Winograd's form chosen by the channels on both sides of each convolution
    against by its input's channels alone (stop 12), taking turns in one process (each rule first in
    every other round)."""
    run = warm_voc_run("step")
    with winograd_by_input_channels_alone():
        run()
    medians = taking_turns(run, {"both sides": contextlib.nullcontext,
                                 "input alone": winograd_by_input_channels_alone}, repeats)
    both, alone = medians["both sides"], medians["input alone"]
    print(f"winograd-rule: step with the channels on both sides {both:.2f} s, the input's alone {alone:.2f} s, "
          f"ratio {both / alone:.3f}")


def winograd_passes(repeats="5"):
    """Each pass of each 3x3 layer from conv1_2 to conv5_1 alone at VOC size, by each form (median of N ms):
    y by im2col or Winograd; dx by col2im, as a convolution of dy by im2col, or by Winograd; dW by the
    patches' product or by Winograd."""
    from fcnlite.layers import winograd
    from fcnlite.layers.conv2d import convolve, convolve_backward
    never = 10**9
    generator = numpy.random.default_rng(0)
    layers = {"conv1_2": (64, 64, 573, 698), "conv2_1": (64, 128, 287, 349), "conv2_2": (128, 128, 287, 349),
              "conv3_1": (128, 256, 144, 175), "conv3_2": (256, 256, 144, 175), "conv4_1": (256, 512, 72, 88),
              "conv4_2": (512, 512, 72, 88), "conv5_1": (512, 512, 36, 44)}
    print(f"{'layer':8}{'y im2col':>10}{'Winograd':>10}{'dx col2im':>11}{'conv':>7}{'Winograd':>10}"
          f"{'dW patches':>12}{'Winograd':>10}")
    for name, (channels, out_c, height, width) in layers.items():
        x = generator.standard_normal((1, channels, height, width), dtype=numpy.float32)
        dy = generator.standard_normal((1, out_c, height, width), dtype=numpy.float32)
        weights = generator.standard_normal((out_c, channels * 9), dtype=numpy.float32) * 0.05
        flipped = numpy.ascontiguousarray(weights.reshape(out_c, channels, 3, 3)[:, :, ::-1, ::-1]
                                          .transpose(1, 0, 2, 3))
        grad_w = numpy.zeros_like(weights)

        def im2col_only(function):
            def run():
                with winograd_threshold(never):
                    function()
            return run
        passes = [
            im2col_only(lambda: convolve(x, weights, 3, 3, 1, 1)),
            lambda: winograd.convolve3x3(x, weights.reshape(out_c, channels, 3, 3), 1),
            im2col_only(lambda: convolve_backward(x, dy, weights, None, 3, 3, 1, 1)),
            im2col_only(lambda: convolve(dy, flipped.reshape(channels, -1), 3, 3, 1, 1)),
            lambda: winograd.convolve3x3(dy, flipped, 1),
            im2col_only(lambda: convolve_backward(x, dy, weights, grad_w, 3, 3, 1, 1, input_grad=False)),
            lambda: numpy.add(grad_w, winograd.weight_grad3x3(x, dy, 1).reshape(out_c, -1), out=grad_w),
        ]
        times = [[] for _ in passes]
        for _ in range(int(repeats)):
            for function, spent in zip(passes, times):
                spent.append(seconds(function))
        y_i, y_w, dx_c, dx_i, dx_w, dw_i, dw_w = (numpy.median(spent) * 1e3 for spent in times)
        print(f"{name:8}{y_i:10.0f}{y_w:10.0f}{dx_c:11.0f}{dx_i:7.0f}{dx_w:10.0f}{dw_i:12.0f}{dw_w:10.0f}", flush=True)


def winograd_layers():
    from fcnlite.layers import Conv2d, winograd
    generator = numpy.random.default_rng(0)
    layers = {"conv2_2": (128, 128, 287, 349), "conv3_2": (256, 256, 144, 175), "conv4_2": (512, 512, 72, 88),
              "conv5_1": (512, 512, 36, 44)}
    threshold = winograd.MIN_CHANNELS
    for name, (channels, out_c, height, width) in layers.items():
        layer = Conv2d(channels, out_c, 3, padding=1)
        x = generator.random((1, channels, height, width), dtype=numpy.float32)
        dy = generator.random((1, out_c, height, width), dtype=numpy.float32)
        times = {"winograd": [], "im2col": []}
        for _ in range(3):
            for form, setting in (("winograd", threshold), ("im2col", 10**9)):
                with winograd_threshold(setting):
                    times[form].append((seconds(lambda: layer.forward(x)), seconds(lambda: layer.backward(dy))))
        (wf, wb), (cf, cb) = (numpy.median(times[form], axis=0) * 1e3 for form in ("winograd", "im2col"))
        print(f"winograd-layers: {name}: forward {wf:.0f} / {cf:.0f} ms = {wf / cf:.2f}, "
              f"backward {wb:.0f} / {cb:.0f} ms = {wb / cb:.2f} (Winograd / im2col)")


def layers(repeats="5"):
    try:
        import torch
    except ImportError:
        sys.exit("layers: needs PyTorch, the comparison's other side (pip install torch==2.13.0: the CPU build)")
    from fcnlite.benchmark import TorchRunner
    from fcnlite.layers import Conv2d, ConvTranspose2d
    ours = voc_runner()
    theirs = TorchRunner(torch, ours.model, ours.images, ours.labels, "cpu")
    torch.set_num_threads(backend.host_threads())
    spent = {}

    def timed(name, forward):
        def call(*args):
            start = time.perf_counter()
            result = forward(*args)
            spent[("fcnlite", name)] = time.perf_counter() - start
            return result
        return call
    starts = {}
    for name, layer in ours.model.layers.items():
        if isinstance(layer, (Conv2d, ConvTranspose2d)):
            layer.forward = timed(name, layer.forward)
            module = theirs.net.layers[name]
            module.register_forward_pre_hook(lambda *_, name=name: starts.__setitem__(name, time.perf_counter()))
            module.register_forward_hook(
                lambda *_, name=name: spent.__setitem__(("PyTorch", name), time.perf_counter() - starts[name]))
    rows, totals = {}, {"fcnlite": [], "PyTorch": []}
    for repeat in range(int(repeats) + 1):   # the first round warms up
        for framework, runner in (("fcnlite", ours), ("PyTorch", theirs)):
            spent.clear()
            total = seconds(runner.infer)
            if repeat:
                totals[framework].append(total)
                for key, value in spent.items():
                    rows.setdefault(key[1], {}).setdefault(key[0], []).append(value)
    print(f"layers: inference {numpy.median(totals['fcnlite']) * 1e3:.0f} ms, PyTorch "
          f"{numpy.median(totals['PyTorch']) * 1e3:.0f} ms")
    for name, times in rows.items():
        mine, torch_time = (numpy.median(times[framework]) * 1e3 for framework in ("fcnlite", "PyTorch"))
        print(f"layers: {name:14s} {mine:7.1f} ms {torch_time:7.1f} ms {mine / torch_time:5.2f}")


def checksums(repeats="5"):
    """Saving and loading FCN-8s's weights (width 1, 513 MB) as io.write_checked_array stores them (fletcher32,
    one chunk per array), with HDF5's default chunks for the filter, and plain (no checksum), taking turns."""
    import tempfile
    import h5py
    from fcnlite import io
    from fcnlite.models import build_model
    model = build_model("fcn8s", n_classes=21)
    storages = {   # fcnlite's own last, so that the file left to check below is as fcnlite writes it
        "plain": lambda file, name, array: file.create_dataset(name, data=array),
        "checksum, default chunks": lambda file, name, array: file.create_dataset(name, data=array, fletcher32=True),
        "checksum, one chunk": io.write_checked_array,
    }
    times = {name: ([], []) for name in storages}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "weights.h5")
        for _ in range(int(repeats)):
            for name, store in storages.items():
                io.write_checked_array = store   # what io.write_arrays calls for each array
                try:
                    times[name][0].append(seconds(lambda: io.save_weights(model, path)))
                finally:
                    io.write_checked_array = storages["checksum, one chunk"]
                times[name][1].append(seconds(lambda: io.load_weights(model, path)))
        with h5py.File(path, "r") as file:
            assert file["fc6/W"].fletcher32 and file["fc6/W"].chunks == file["fc6/W"].shape   # left as written
    for name, (save, load) in times.items():
        print(f"checksums: {name:<26} save {numpy.median(save):.2f} s, load {numpy.median(load):.2f} s")


def writer(repeats="5"):
    """Saving FCN-8s's weights (width 1, 513 MB) through io.write_hdf5's file object, and as before it,
    h5py opening the temporary path itself (a full disk crashed it), taking turns."""
    import tempfile
    from fcnlite import io
    from fcnlite.models import build_model

    def h5py_opens_the_path(path, fill, size):
        def write(temporary):
            with io._h5py().File(temporary, "w") as file:
                fill(file)
        io.atomic_write(path, write, size)

    model = build_model("fcn8s", n_classes=21)
    writers = {"h5py opens the path (before)": h5py_opens_the_path, "file object (kept)": io.write_hdf5}
    times = {name: [] for name in writers}
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as folder:   # on disk: /tmp may be memory
        path = os.path.join(folder, "weights.h5")
        for _ in range(int(repeats)):
            for name, write in writers.items():
                io.write_hdf5 = write   # what io.write_arrays calls
                try:
                    times[name].append(seconds(lambda: (io.save_weights(model, path), os.sync())))
                finally:
                    io.write_hdf5 = writers["file object (kept)"]
        io.load_weights(model, path)   # the file left is the kept writer's, and reads back
    before, kept = (numpy.median(values) for values in times.values())
    print(f"writer: save through h5py's path {before:.2f} s, through the file object {kept:.2f} s, "
          f"ratio {kept / before:.3f} (N={repeats}, each with os.sync)")


def dw_blocks(repeats="7"):
    import tracemalloc
    from fcnlite.layers import Conv2d, conv2d
    block_bytes = {"blocks": conv2d.WEIGHT_GRAD_BLOCK_BYTES, "whole": 2**62}
    settings = {name: lambda size=size: weight_grad_blocks(size) for name, size in block_bytes.items()}

    def fully_connected_backward():   # the layers go with the function: not alive in the step's runs
        generator = numpy.random.default_rng(0)
        fc6, fc7 = Conv2d(512, 4096, 7), Conv2d(4096, 4096, 1)
        x = generator.standard_normal((1, 512, 18, 22), dtype=numpy.float32)   # pool5 at VOC size
        dy = generator.standard_normal(fc6.output_shape(x.shape), dtype=numpy.float32)
        fc7.forward(fc6.forward(x))
        return taking_turns(lambda: (fc6.backward(dy), fc7.backward(dy)), settings, repeats).values()

    blocks, whole = fully_connected_backward()
    print(f"dw-blocks: fc6 + fc7 backward in blocks of {block_bytes['blocks'] / 2**20:.0f} MiB {blocks * 1e3:.0f} ms, "
          f"whole {whole * 1e3:.0f} ms, ratio {blocks / whole:.3f} (N={repeats})", flush=True)
    tracemalloc.start()   # before the model, as the benchmark: its peaks count everything in use
    run = warm_voc_run("step")
    peaks = {}
    for name in block_bytes:   # one step each under tracemalloc, which slows NumPy's allocations
        with settings[name]():
            tracemalloc.reset_peak()
            run()
            peaks[name] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    blocks, whole = taking_turns(run, settings, repeats).values()
    print(f"dw-blocks: step in blocks {blocks:.2f} s, whole {whole:.2f} s, ratio {blocks / whole:.3f} (N={repeats}); "
          f"peak {peaks['blocks'] / 2**30:.2f} GiB against {peaks['whole'] / 2**30:.2f} GiB (tracemalloc)")


MODES = {"threads": threads, "spin": spin, "passes": passes, "padding": padding, "upsampling": upsampling,
         "packing": packing, "winograd": winograd_or_im2col, "winograd-layers": winograd_layers, "layers": layers,
         "winograd-rule": winograd_rule, "winograd-passes": winograd_passes, "checksums": checksums,
         "writer": writer, "dw-blocks": dw_blocks}

if __name__ == "__main__":
    backend.use("numpy")
    backend.reuse_host_memory()
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    MODES[sys.argv[1]](*sys.argv[2:])
