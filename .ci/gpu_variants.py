"""GPU measurements beside the benchmark, for .ci/gpu_check.sh.

    python .ci/gpu_variants.py ceilings            float32 matrix product (TF32 off/on) and copy bandwidth
    python .ci/gpu_variants.py bands 64 256 1024   the FCN-8s benchmark with im2col bands of that many MiB
    python .ci/gpu_variants.py overhead            the host's share: the same network at 1/16 width on 32x32,
                                                   where the GPU has almost nothing to do but the launches are
                                                   as many
    python .ci/gpu_variants.py profile             where that host time goes: cProfile of 20 inference passes
                                                   and 10 training steps of the small network
    python .ci/gpu_variants.py calls               host microseconds per call of the CuPy operations the
                                                   layers use, on tiny arrays (launch cost, not GPU work)
    python .ci/gpu_variants.py labels              the FCN-8s step with the labels on the host (the loss returns a
                                                   device scalar: no wait) against labels on the device (the loss
                                                   waits for the GPU to check them), interleaved, TF32 off and on
    python .ci/gpu_variants.py waits               which calls of a training step wait for the GPU: each layer's
                                                   forward and backward, the loss and the SGD step are called with
                                                   a 20 ms kernel queued before them; a call that takes the host
                                                   that long waited for it
    python .ci/gpu_variants.py upsampling          upscore8 forward + backward on the GPU: ConvTranspose2d's phase
                                                   form against the col2im form it replaced (stop 12; the same code
                                                   as cpu_variants.py upsampling)
    python .ci/gpu_variants.py packing             the FCN-8s step with the parameters packed (SGD: one update per
                                                   group, zero_grad one fill) against the per-parameter passes it
                                                   replaced (stop 13), interleaved, TF32 off and on; and the host's
                                                   time for zero_grad + the update alone (cpu_variants.py's code)
    python .ci/gpu_variants.py queued              what the GPU's work alone costs, without the host's launches: each
                                                   framework's step (and inference) queued while the GPU runs a
                                                   0.15 s spin kernel, so that the device then runs it back to back;
                                                   its device time (events) and the host's time to queue it, fcnlite
                                                   and PyTorch taking turns, TF32 off and on. If fcnlite's device time
                                                   is well under 1.5x PyTorch's, the host is the gap
Modes can follow each other: bands 256 512 overhead
"""
import os
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def ceilings():
    import cupy
    from cupyx.profiler import benchmark as cupy_benchmark
    from cupy._core import _routines_linalg as linalg
    n = 8192
    a = cupy.random.random((n, n), dtype=cupy.float32)
    b = cupy.random.random((n, n), dtype=cupy.float32)
    for name, mode in (("off", linalg.COMPUTE_TYPE_DEFAULT), ("on", linalg.COMPUTE_TYPE_TF32)):
        linalg.set_compute_type(cupy.float32, mode)
        result = cupy_benchmark(cupy.matmul, (a, b), n_repeat=20, n_warmup=3)
        seconds = float(cupy.median(cupy.asarray(result.gpu_times[0])))
        print(f"ceiling: float32 matmul {n}^3, TF32 {name}: {2 * n**3 / seconds / 1e12:.1f} TFLOP/s")
    source = cupy.random.random(2**28, dtype=cupy.float32)   # 1 GiB
    target = cupy.empty_like(source)
    result = cupy_benchmark(cupy.copyto, (target, source), n_repeat=20, n_warmup=3)
    seconds = float(cupy.median(cupy.asarray(result.gpu_times[0])))
    print(f"ceiling: device copy of 1 GiB: {2 * source.nbytes / seconds / 1e12:.2f} TB/s (read + write)")


def bands(sizes):
    from fcnlite import benchmark
    from fcnlite.layers import im2col
    print(f"{'band MiB':>9}{'TF32':>6}{'step ms':>9}{'torch':>8}{'ratio':>7}{'infer ms':>10}{'torch':>8}{'ratio':>7}"
          f"{'peak GiB':>10}{'torch':>7}")
    import gc
    import cupy
    for tf32 in (False, True):
        for size in sizes:
            im2col.GPU_BAND_BYTES = int(size) * 2**20
            im2col.workspace.clear()
            gc.collect()   # or the last row's arrays still count in this row's peak
            cupy.get_default_memory_pool().free_all_blocks()
            results = benchmark.run(benchmark.Settings(device="gpu", repeats=15, warmup=2, tf32=tf32), log=lambda *_: None)
            ours, theirs, ratio = results["fcnlite"], results["torch"], results["ratio"]
            print(f"{size:>9}{'on' if tf32 else 'off':>6}{ours['step_seconds'] * 1e3:>9.2f}{theirs['step_seconds'] * 1e3:>8.2f}"
                  f"{ratio['step']:>7.2f}{ours['inference_seconds'] * 1e3:>10.2f}{theirs['inference_seconds'] * 1e3:>8.2f}"
                  f"{ratio['inference']:>7.2f}{ours['peak_memory_bytes'] / 2**30:>10.2f}"
                  f"{theirs['peak_memory_bytes'] / 2**30:>7.2f}", flush=True)


def overhead():
    from fcnlite import benchmark
    for tf32 in (False, True):
        results = benchmark.run(benchmark.Settings(device="gpu", size=(32, 32), width=1 / 16, repeats=30, warmup=3,
                                                   tf32=tf32), log=lambda *_: None)
        ours, theirs = results["fcnlite"], results["torch"]
        print(f"overhead (32x32, width 1/16, TF32 {'on' if tf32 else 'off'}): step {ours['step_seconds'] * 1e3:.2f} ms, "
              f"PyTorch {theirs['step_seconds'] * 1e3:.2f} ms; inference {ours['inference_seconds'] * 1e3:.2f} ms, "
              f"PyTorch {theirs['inference_seconds'] * 1e3:.2f} ms", flush=True)


def labels():
    import statistics
    from fcnlite import backend, benchmark
    backend.use("cupy")

    class DeviceLabels:
        """The same runner with its labels moved to the GPU beforehand: the loss's check waits for the device."""
        name = "device labels"

        def __init__(self, runner, labels):
            self.runner, self.labels = runner, backend.to_device(labels)

        def step(self):
            host_labels, self.runner.labels = self.runner.labels, self.labels
            try:
                self.runner.step()
            finally:
                self.runner.labels = host_labels

    for tf32 in (False, True):
        settings = benchmark.Settings(device="gpu", tf32=tf32)
        benchmark.set_tf32(tf32)
        images, host_labels = benchmark.random_batch(settings)
        runner = benchmark.FcnliteRunner(settings, images, host_labels)
        runner.name = "host labels"
        other = DeviceLabels(runner, host_labels)
        benchmark.warm_up(runner, "step", 3)
        benchmark.warm_up(other, "step", 3)
        times = benchmark.interleaved_times([runner, other], "step", 20)
        host, device = (statistics.median(times[name]) for name in ("host labels", "device labels"))
        print(f"labels (FCN-8s step, TF32 {'on' if tf32 else 'off'}): host labels {host * 1e3:.2f} ms, "
              f"device labels {device * 1e3:.2f} ms, ratio {host / device:.3f}", flush=True)
        del runner, other


def waits():
    import time
    import cupy
    import numpy
    from fcnlite import backend, benchmark, rng
    from fcnlite.layers import cuda_kernels
    backend.use("cupy")
    found = []

    def watched(name, call):
        def wrapper(*args, **kwargs):
            cuda_kernels.spin(40_000_000)   # ~20 ms at ~2 GHz
            start = time.perf_counter()
            result = call(*args, **kwargs)
            spent = time.perf_counter() - start
            found.append((name, spent))
            return result
        return wrapper

    settings = benchmark.Settings(device="gpu", size=(64, 64), width=1 / 16)
    images, labels = benchmark.random_batch(settings)
    runner = benchmark.FcnliteRunner(settings, images, labels)
    runner.step()
    runner.step()
    for name, layer in runner.model.layers.items():
        layer.forward = watched(f"{name}.forward", layer.forward)
        layer.backward = watched(f"{name}.backward", layer.backward)
    runner.loss.forward = watched("loss.forward", runner.loss.forward)
    runner.loss.backward = watched("loss.backward", runner.loss.backward)
    runner.optimizer.step = watched("SGD.step", runner.optimizer.step)
    runner.step()
    host_labels = labels.astype(numpy.uint8)
    probes = {
        "cupy.asarray(host labels)": lambda: cupy.asarray(host_labels),
        "rng.uniform": lambda: rng.uniform(cupy, (1, 64, 8, 8), numpy.float32),
        "cupy.empty (new size)": lambda: cupy.empty(12345677, dtype=numpy.float32),
    }
    for name, probe in probes.items():
        for _ in range(2):
            watched(f"probe {name}", probe)()
    cupy.cuda.get_current_stream().synchronize()
    for name, spent in found:
        mark = "WAITS" if spent > 0.01 else ""
        print(f"waits: {name:<40} {spent * 1e3:8.2f} ms {mark}", flush=True)


def profile():
    import cProfile
    import pstats
    from fcnlite import backend, benchmark
    settings = benchmark.Settings(device="gpu", size=(32, 32), width=1 / 16)
    backend.use("gpu")
    images, labels = benchmark.random_batch(settings)
    runner = benchmark.FcnliteRunner(settings, images, labels)
    for _ in range(3):
        runner.step()
        runner.infer()
    for task, count in (("infer", 20), ("step", 10)):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            getattr(runner, task)()
        profiler.disable()
        print(f"---- profile: {count} x {task}, sorted by own time")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(28)
        print(f"---- profile: {count} x {task}, sorted by cumulative time (fcnlite)")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("fcnlite", 30)


def calls():
    import time
    import cupy
    from fcnlite.layers import cuda_kernels
    a = cupy.ones((64, 64), dtype=cupy.float32)
    b = cupy.ones((64, 64), dtype=cupy.float32)
    out = cupy.empty((64, 64), dtype=cupy.float32)
    image = cupy.ones((4, 10, 10), dtype=cupy.float32)
    cols = cupy.empty(4 * 9 * 8 * 8, dtype=cupy.float32)
    x = cupy.ones((1, 8, 16, 16), dtype=cupy.float32)
    bias = cupy.ones((1, 8, 1, 1), dtype=cupy.float32)
    operations = {
        "cupy.matmul(a, b, out=out)": lambda: cupy.matmul(a, b, out=out),
        "a @ b": lambda: a @ b,
        "cupy.dot(a, b, out=out)": lambda: cupy.dot(a, b, out=out),
        "cupy.cublas.gemm('N', 'N', a, b, out)": lambda: cupy.cublas.gemm("N", "N", a, b, out=out),
        "im2col kernel (ElementwiseKernel)": lambda: cuda_kernels.im2col(image, 3, 3, 1, 0, 8, 8, cols),
        "cupy.maximum(x, 0, out=x)": lambda: cupy.maximum(x, 0, out=x),
        "x += bias (broadcast)": lambda: x.__iadd__(bias),
        "cupy.zeros(x.shape)": lambda: cupy.zeros(x.shape, dtype=x.dtype),
        "cupy.empty(x.shape)": lambda: cupy.empty(x.shape, dtype=x.dtype),
        "y[..., 1:9, 1:9] = x[..., :8, :8]": lambda: x.__setitem__((Ellipsis, slice(1, 9), slice(1, 9)), x[..., :8, :8]),
        "x > 0": lambda: x > 0,
        "x.reshape(8, -1)": lambda: x.reshape(8, -1),
    }
    for name, operation in operations.items():
        try:
            for _ in range(50):
                operation()
        except Exception as error:   # an API this CuPy lacks: say so and go on
            print(f"calls: {name:<40} failed: {type(error).__name__}: {error}")
            continue
        cupy.cuda.get_current_stream().synchronize()
        count = 2000
        start = time.perf_counter()
        for _ in range(count):
            operation()
        host = time.perf_counter() - start
        cupy.cuda.get_current_stream().synchronize()
        print(f"calls: {name:<40} {host / count * 1e6:6.1f} us a call (host)", flush=True)


def packing():
    from fcnlite import backend
    backend.use("cupy")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cpu_variants
    for tf32 in (False, True):
        cpu_variants.packing(tf32=tf32)


def queued(repeats=20):
    import statistics
    import time
    import cupy
    import torch
    from fcnlite import backend, benchmark
    from fcnlite.layers import cuda_kernels
    backend.use("cupy")
    spin_cycles = 300_000_000   # ~0.15 s at ~2 GHz: several times what the host takes to queue a step
    # per framework: queue the spin, make a timing event, milliseconds between two events
    clocks = {
        "fcnlite": (lambda: cuda_kernels.spin(spin_cycles), cupy.cuda.Event, cupy.cuda.get_elapsed_time),
        "PyTorch": (lambda: torch.cuda._sleep(spin_cycles), lambda: torch.cuda.Event(enable_timing=True),
                    lambda start, end: start.elapsed_time(end)),
    }

    def behind_a_spin(runner, task):
        """(host ms to queue runner's task, device ms of the task, device ms of the spin before it)"""
        spin, event, elapsed_ms = clocks[runner.name]
        backend.synchronize()
        torch.cuda.synchronize()
        before, start, end = event(), event(), event()
        before.record()
        spin()
        start.record()
        began = time.perf_counter()
        getattr(runner, "queue_" + task)()
        host_ms = (time.perf_counter() - began) * 1e3
        end.record()
        end.synchronize()
        return host_ms, elapsed_ms(start, end), elapsed_ms(before, start)

    for tf32 in (False, True):
        try:
            settings = benchmark.Settings(device="gpu", tf32=tf32)
            benchmark.set_tf32(tf32, torch)
            images, labels = benchmark.random_batch(settings)
            ours = benchmark.FcnliteRunner(settings, images, labels)
            runners = [ours, benchmark.TorchRunner(torch, ours.model, images, labels, "cuda")]
            for task in ("step", "infer"):
                for runner in runners:
                    benchmark.warm_up(runner, task, 3)
                samples = {runner.name: [] for runner in runners}
                for _ in range(repeats):
                    for runner in runners:
                        samples[runner.name].append(behind_a_spin(runner, task))
                host, device = ({name: statistics.median(sample[column] for sample in value)
                                 for name, value in samples.items()} for column in (0, 1))
                # a task the host queued only after the spin had ended was not all queued ahead of the device
                late = {name: sum(sample[0] >= sample[2] for sample in value) for name, value in samples.items()}
                spin_ms = statistics.median(sample[2] for value in samples.values() for sample in value)
                print(f"queued ({task}, TF32 {'on' if tf32 else 'off'}): device time fcnlite {device['fcnlite']:.2f} ms, "
                      f"PyTorch {device['PyTorch']:.2f} ms, ratio {device['fcnlite'] / device['PyTorch']:.2f}; "
                      f"host's queueing fcnlite {host['fcnlite']:.2f} ms, PyTorch {host['PyTorch']:.2f} ms "
                      f"(behind a {spin_ms:.0f} ms spin; queued after it ended: fcnlite {late['fcnlite']}, "
                      f"PyTorch {late['PyTorch']} of {repeats})", flush=True)
            del ours, runners
        except Exception as error:   # a measurement: report and go on
            print(f"queued (TF32 {'on' if tf32 else 'off'}): failed: {type(error).__name__}: {error}", flush=True)


def upsampling():
    from fcnlite import backend
    backend.use("cupy")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cpu_variants
    cpu_variants.upsampling()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not arguments:
        sys.exit(__doc__)
    modes = {"ceilings": ceilings, "overhead": overhead, "profile": profile, "calls": calls, "waits": waits,
             "labels": labels, "upsampling": upsampling, "packing": packing, "queued": queued}
    runs = []   # all parsed first: a misspelt mode stops the call before any GPU time is spent
    while arguments:
        mode = arguments.pop(0)
        if mode == "bands":
            sizes = []
            while arguments and arguments[0].isdigit():
                sizes.append(arguments.pop(0))
            runs.append((mode, lambda sizes=sizes: bands(sizes)))
        elif mode in modes:
            runs.append((mode, modes[mode]))
        else:
            sys.exit(f"unknown mode {mode!r}\n{__doc__}")
    failed = []
    for mode, run in runs:
        try:   # the GPU's time is dear: a mode that fails must not cost the ones after it
            run()
        except Exception:
            traceback.print_exc()
            print(f"{mode}: failed", flush=True)
            failed.append(mode)
    if failed:
        sys.exit(f"failed: {' '.join(failed)}")
