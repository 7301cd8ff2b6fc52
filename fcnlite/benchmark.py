"""How fast fcnlite trains and predicts, beside PyTorch running the same network in the same process.

What is timed, for an FCN (FCN-8s unless told) on one batch of random data:

    training step   zero_grad, forward, SoftmaxCrossEntropy (ignore 255), backward (no gradient
                    for the image), SGD step
    inference       forward in eval mode (PyTorch: under torch.inference_mode)

Each is the median of `repeats` runs after `warmup` untimed runs; fcnlite and
PyTorch take turns (fcnlite, PyTorch, fcnlite, ...) so that a noisy machine
slows both alike. On the GPU the clock is read after synchronizing the device.
GFLOP/s use fcnlite.flops (convolutions only, a multiply-add = 2 FLOPs, no
gradient for the input image) for both frameworks, so the GFLOP/s ratio is the
time ratio.

Before anything is timed, PyTorch's network gets fcnlite's weights (the same
layouts) and both must compute the same scores in eval mode: max|a - b| / max|b|
below 1e-4 (1e-2 with TF32). The score layers, zero at initialisation in the
reference, are given random values first, or the check would compare zeros.

Peak memory is measured during the warm-up training steps, as everything in use
at the peak (weights, gradients, momentum, activations, scratch buffers):

    fcnlite, CPU    tracemalloc, which sees NumPy's allocations (started before the model is built)
    PyTorch, CPU    the tensors alive before the step, plus the peak of the CPU allocator's
                    running total during it (torch.profiler with profile_memory=True)
    fcnlite, GPU    CuPy's memory pool: bytes in use before the step, followed through every
                    malloc and free by a cupy.cuda.MemoryHook
    PyTorch, GPU    torch.cuda.max_memory_allocated after reset_peak_memory_stats

Neither side counts the BLAS / cuBLAS / cuDNN workspaces or the interpreter.

TF32 (GPU only): CuPy reads CUPY_TF32 when it first multiplies float32 matrices,
so run() sets it before the backend is chosen; PyTorch's switches are
torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32.

    results = run(Settings(model="fcn8s", size=(375, 500)))
    print(format_report(results))
"""
import json
import os
import platform
import resource
import statistics
import time
import tracemalloc
from dataclasses import asdict, dataclass, replace

import numpy

from . import backend
from .errors import count
from .flops import count_flops
from .io import WeightsError, atomic_write
from .layers import Conv2d, ConvTranspose2d, SoftmaxCrossEntropy
from .models import FCN_ARCHITECTURES, build_model
from .models.fcn import FCN8s, FCN16s, FCN32s
from .optim import SGD

MODELS = FCN_ARCHITECTURES
IGNORE_LABEL = 255
# small enough that the weights barely move, so that every timed step does the same arithmetic on
# finite numbers: at 1e-4 the random batch's loss reached NaN after about 12 steps (stop 13)
LEARNING_RATE = 1e-10
MOMENTUM, WEIGHT_DECAY = 0.99, 5e-4
# keys of --json's results (run) that an earlier benchmark's file holds too
JSON_KEYS = ("settings", "machine", "flops", "fcnlite")


class BenchmarkError(RuntimeError):
    """The benchmark cannot run as asked, or the two frameworks disagree (one readable line)."""


@dataclass
class Settings:
    model: str = "fcn8s"
    width: float = 1.0
    n_classes: int = 21
    size: tuple = (375, 500)          # (height, width) of the input image
    batch: int = 1
    device: str = "auto"              # auto, cpu or gpu
    repeats: int = 5
    warmup: int = 1
    torch: bool = True                # compare with PyTorch when it is importable
    tf32: bool = False
    layers: bool = False              # also time every layer of one training step
    threads: int = 0                  # CPU threads for NumPy's BLAS and PyTorch (0: as many as NumPy's BLAS has)
    seed: int = 0


def parse_size(text):
    """'375x500' -> (375, 500); a single number is a square."""
    parts = str(text).lower().split("x")
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise BenchmarkError(f"size {text!r} is not HEIGHTxWIDTH in pixels, e.g. 375x500")
    return sizes


# ---------------------------------------------------------------------------- machine


def numpy_threads():
    """How many threads NumPy's BLAS runs (threadpoolctl), else the CPU count."""
    try:
        from threadpoolctl import threadpool_info
        counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
        if counts:
            return max(counts)
    except ImportError:
        pass
    return os.cpu_count() or 1


def blas_description():
    try:
        from threadpoolctl import threadpool_info
        pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
        if pools:
            pool = pools[0]
            return f"{pool['internal_api']} {pool.get('version') or ''} ({pool.get('architecture') or '?'}, " \
                   f"{count(pool['num_threads'], 'thread')})".replace("  ", " ")
    except ImportError:
        pass
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy < 1.25 prints its configuration instead
        return "unknown BLAS"
    return f"{blas.get('name', 'unknown BLAS')} {blas.get('version', '')}".strip()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def max_rss_bytes():
    """The process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


# ---------------------------------------------------------------------------- TF32


def set_tf32(enabled, torch=None):
    """Switch TF32 for CuPy's float32 matrix products (before its first one) and for PyTorch."""
    os.environ["CUPY_TF32"] = "1" if enabled else "0"
    if backend.name() == "cupy":
        try:  # CuPy caches the compute type at its first float32 product; set it in case that was before us
            from cupy._core import _routines_linalg as linalg
            linalg.set_compute_type(numpy.float32, linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT)
        except (ImportError, AttributeError):
            pass
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


# ---------------------------------------------------------------------------- data and weights


def random_batch(settings):
    """Images (N, 3, H, W) like mean-subtracted pixels, and labels with one pixel in ten void (255)."""
    generator = numpy.random.default_rng(settings.seed)
    height, width = settings.size
    images = (generator.standard_normal((settings.batch, 3, height, width)) * 50).astype(numpy.float32)
    labels = generator.integers(0, settings.n_classes, (settings.batch, height, width))
    labels[generator.random(labels.shape) < 0.1] = IGNORE_LABEL
    return images, labels.astype(numpy.int64)


def randomize_score_layers(model, seed=0):
    """Give the score layers (zero in the reference) random weights, so that the scores are not all zero."""
    generator = numpy.random.default_rng(seed + 1)
    for name, layer in model.layers.items():
        if name.startswith("score_") and isinstance(layer, Conv2d):
            weights = layer.params["W"]
            fan_in = weights.shape[1]
            weights[...] = backend.to_device(generator.standard_normal(weights.shape) * numpy.sqrt(2.0 / fan_in),
                                             dtype=weights.dtype)
            bias = layer.params["b"]
            bias[...] = backend.to_device(generator.standard_normal(bias.shape) * 0.1, dtype=bias.dtype)


def relative_error(a, b):
    """max|a - b| / max|b|, on the host in float64."""
    a, b = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    scale = numpy.abs(b).max()
    return float(numpy.abs(a - b).max() / scale) if scale > 0 else float(numpy.abs(a - b).max())


# ---------------------------------------------------------------------------- the same network in PyTorch


def build_torch_fcn(model, device="cpu"):
    """PyTorch's version of an fcnlite FCN32s / FCN16s / FCN8s, holding copies of its weights.

    Written from the reference nets, not from fcnlite's layers: conv1_1 pads by
    100, 2x2 max pooling in ceil mode, dropout 0.5 after fc6 and fc7, bias-free
    transposed convolutions (kept fixed, requires_grad=False, as fcnlite's frozen
    upsampling), and the reference's crop offsets (5, 9, 31 for FCN-8s; 5, 27 for
    FCN-16s; 19 for FCN-32s). Parameter layouts are the same in both.
    """
    import torch
    from torch import nn
    from torch.nn import functional

    if isinstance(model, FCN8s):
        head, at_once = "fcn8s", model.at_once
    elif isinstance(model, FCN16s):
        head, at_once = "fcn16s", False
    elif isinstance(model, FCN32s):
        head, at_once = "fcn32s", False
    else:
        raise BenchmarkError(f"no PyTorch version of {type(model).__name__}: use fcn32s, fcn16s or fcn8s")

    def shape(name):
        return tuple(model.layers[name].params["W"].shape)

    class TorchFCN(nn.Module):
        def __init__(self):
            super().__init__()
            convs = {}
            for name, layer in model.layers.items():
                if isinstance(layer, Conv2d):
                    out_c, in_c, kernel, _ = shape(name)
                    convs[name] = nn.Conv2d(in_c, out_c, kernel, padding=layer.padding)
                elif isinstance(layer, ConvTranspose2d):
                    in_c, out_c, kernel, _ = shape(name)
                    convs[name] = nn.ConvTranspose2d(in_c, out_c, kernel, stride=layer.stride, bias=False)
                    convs[name].weight.requires_grad_(layer.frozen is False)
            self.layers = nn.ModuleDict(convs)
            self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.dropout = nn.Dropout(0.5)

        def encode(self, x):
            """conv1_1 ... fc7; also returns pool3 and pool4 for the skips."""
            layers, pools = self.layers, {}
            for block, repeats in enumerate((2, 2, 3, 3, 3), start=1):
                for index in range(1, repeats + 1):
                    x = functional.relu(layers[f"conv{block}_{index}"](x))
                x = pools[block] = self.pool(x)
            x = self.dropout(functional.relu(layers["fc6"](x)))
            x = self.dropout(functional.relu(layers["fc7"](x)))
            return x, pools[3], pools[4]

        def forward(self, x):
            layers = self.layers
            fc7, pool3, pool4 = self.encode(x)
            score = layers["score_fr"](fc7)
            if head == "fcn32s":
                return crop(layers["upscore"](score), 19, x)
            upscore2 = layers["upscore2"](score)
            score_pool4 = layers["score_pool4"](pool4 * 0.01 if at_once else pool4)
            fuse_pool4 = upscore2 + crop(score_pool4, 5, upscore2)
            if head == "fcn16s":
                return crop(layers["upscore16"](fuse_pool4), 27, x)
            upscore_pool4 = layers["upscore_pool4"](fuse_pool4)
            score_pool3 = layers["score_pool3"](pool3 * 0.0001 if at_once else pool3)
            fuse_pool3 = upscore_pool4 + crop(score_pool3, 9, upscore_pool4)
            return crop(layers["upscore8"](fuse_pool3), 31, x)

    def crop(x, offset, reference):
        height, width = reference.shape[2:]
        return x[:, :, offset:offset + height, offset:offset + width]

    net = TorchFCN()
    with torch.no_grad():
        for name, module in net.layers.items():
            module.weight.copy_(torch.from_numpy(backend.to_numpy(model.layers[name].params["W"])))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(backend.to_numpy(model.layers[name].params["b"])))
    return net.to(device)


# ---------------------------------------------------------------------------- the two contestants


class FcnliteRunner:
    """fcnlite's model, loss and SGD on one batch; step() and infer() return when the device is done."""

    name = "fcnlite"

    def __init__(self, settings, images, labels):
        self.model = build_model(settings.model, n_classes=settings.n_classes, width=settings.width)
        randomize_score_layers(self.model, settings.seed)
        if hasattr(self.model, "set_input_grad"):
            self.model.set_input_grad(False)   # as PyTorch, which computes no gradient for the image
        self.loss = SoftmaxCrossEntropy(ignore_index=IGNORE_LABEL, normalize=True, dtype=self.model.dtype)
        self.optimizer = SGD(self.model, lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        self.images = backend.to_device(images, dtype=self.model.dtype)
        self.labels = labels   # on the host, as a data loader gives them (see SoftmaxCrossEntropy)

    def queue_step(self):
        """One training step, queued: on the GPU it returns before the device is done."""
        self.model.train()
        self.model.zero_grad()
        scores = self.model.forward(self.images)
        self.last_loss = self.loss.forward(scores, self.labels)
        self.model.backward(self.loss.backward())
        self.optimizer.step()
        return self.last_loss

    def queue_infer(self):
        """One inference pass, queued; returns the scores."""
        from .layers import no_grad
        self.model.eval()
        with no_grad():   # like PyTorch's inference_mode: keep nothing for backward
            return self.model.forward(self.images)

    def step(self):
        self.queue_step()
        backend.synchronize()

    def infer(self):
        scores = self.queue_infer()
        backend.synchronize()
        return scores

    def scores(self):
        return backend.to_numpy(self.infer())


class TorchRunner:
    """The same network, loss and SGD in PyTorch (per-parameter rates as fcnlite's: biases x2, no decay)."""

    name = "PyTorch"

    def __init__(self, torch, fcnlite_model, images, labels, device):
        self.torch, self.device = torch, device
        self.net = build_torch_fcn(fcnlite_model, device)
        weights = [p for name, p in self.net.named_parameters() if p.requires_grad and name.endswith("weight")]
        biases = [p for name, p in self.net.named_parameters() if p.requires_grad and name.endswith("bias")]
        self.optimizer = torch.optim.SGD([{"params": weights, "weight_decay": WEIGHT_DECAY},
                                          {"params": biases, "lr": 2 * LEARNING_RATE, "weight_decay": 0.0}],
                                         lr=LEARNING_RATE, momentum=MOMENTUM)
        self.images = torch.tensor(images, device=device)
        self.labels = torch.tensor(labels, device=device)

    def synchronize(self):
        if self.device != "cpu":
            self.torch.cuda.synchronize()

    def queue_step(self):
        """One training step, queued: on the GPU it returns before the device is done."""
        torch = self.torch
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        scores = self.net(self.images)
        loss = torch.nn.functional.cross_entropy(scores, self.labels, ignore_index=IGNORE_LABEL)
        loss.backward()
        self.optimizer.step()
        return loss

    def queue_infer(self):
        """One inference pass, queued; returns the scores."""
        self.net.eval()
        with self.torch.inference_mode():
            return self.net(self.images)

    def step(self):
        self.queue_step()
        self.synchronize()

    def infer(self):
        scores = self.queue_infer()
        self.synchronize()
        return scores

    def scores(self):
        return self.infer().cpu().numpy()

    def persistent_bytes(self):
        """Bytes of the tensors that live between steps: weights, momentum, gradients, the batch."""
        tensors = [p for p in self.net.parameters()] + [self.images, self.labels]
        tensors += [p.grad for p in self.net.parameters() if p.grad is not None]
        tensors += [value for state in self.optimizer.state.values() for value in state.values()
                    if self.torch.is_tensor(value)]
        return sum(t.numel() * t.element_size() for t in tensors)


# ---------------------------------------------------------------------------- peak memory


class _TorchCpuPeak:
    """Peak of PyTorch's CPU allocations during a block: tensors alive before it + the allocator's running peak."""

    def __init__(self, runner):
        self.runner, self.peak = runner, None

    def __enter__(self):
        from torch.profiler import ProfilerActivity, profile
        self.runner.optimizer.zero_grad(set_to_none=True)   # as step() does first: old gradients are not kept
        self.before = self.runner.persistent_bytes()
        self.profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        self.profiler.__enter__()
        return self

    def __exit__(self, *error):
        self.profiler.__exit__(*error)
        if error[0] is None:
            try:
                self.peak = self.before + self._allocator_peak()
            except Exception:  # the event tree is not a public API: report no figure rather than a wrong one
                self.peak = None

    def _allocator_peak(self):
        """Highest running total of the allocations made inside the block.

        The allocator's total also holds blocks from an earlier profiled block that were
        freed while nobody profiled, so it is taken relative to its value before the
        first allocation here.
        """
        from torch._C._profiler import _EventType
        events, stack = [], list(self.profiler.profiler.kineto_results.experimental_event_tree())
        while stack:
            node = stack.pop()
            if node.tag == _EventType.Allocation:
                events.append((node.start_time_ns, node.extra_fields.alloc_size, node.extra_fields.total_allocated))
            stack.extend(node.children)
        if not events:
            return 0
        events.sort()
        _, first_size, first_total = events[0]
        start = first_total - first_size
        return max(0, max(total for _, _, total in events) - start)


class _FcnliteCpuPeak:
    """Peak of NumPy's memory in use during a block, from tracemalloc (which must already be tracing)."""

    def __enter__(self):
        tracemalloc.reset_peak()
        return self

    def __exit__(self, *error):
        self.peak = tracemalloc.get_traced_memory()[1]


def _cupy_pool_peak():
    """A context manager following CuPy's default pool through every malloc and free: .peak bytes in use."""
    import cupy

    class PoolPeak(cupy.cuda.MemoryHook):
        name = "fcnlite_benchmark_pool_peak"

        def __enter__(self):
            self.in_use = self.peak = cupy.get_default_memory_pool().used_bytes()
            super().__enter__()   # registers the hook
            return self

        def malloc_postprocess(self, **kwargs):
            self.in_use += kwargs["mem_size"]
            self.peak = max(self.peak, self.in_use)

        def free_postprocess(self, **kwargs):
            self.in_use -= kwargs["mem_size"]

    return PoolPeak()


class _TorchCudaPeak:
    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        self.torch.cuda.synchronize()
        self.torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *error):
        self.torch.cuda.synchronize()
        self.peak = self.torch.cuda.max_memory_allocated()


# ---------------------------------------------------------------------------- timing


def _timed(run, synchronize):
    synchronize()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def warm_up(runner, task, count, meter=None):
    """Run runner.<task> count times untimed; with a meter (a memory measurement), the highest peak it saw."""
    peak = None
    for _ in range(count):
        if meter is None:
            getattr(runner, task)()
            continue
        with meter() as measured:
            getattr(runner, task)()
        if measured.peak is not None:
            peak = max(peak or 0, measured.peak)
    return peak


def interleaved_times(runners, task, repeats, synchronize=backend.synchronize):
    """{runner name: [seconds of each run]}: the runners take turns (a, b, a, b, ...)."""
    times = {runner.name: [] for runner in runners}
    for _ in range(repeats):
        for runner in runners:
            times[runner.name].append(_timed(getattr(runner, task), synchronize))
    return times


def time_layers(runner):
    """[(layer name, forward seconds, backward seconds)] of one fcnlite training step, in forward order."""
    model = runner.model
    spent = {name: [0.0, 0.0] for name in model.layers}

    def timed(name, method, slot):
        def call(*args):
            backend.synchronize()
            start = time.perf_counter()
            result = method(*args)
            backend.synchronize()
            spent[name][slot] += time.perf_counter() - start
            return result
        return call

    try:
        for name, layer in model.layers.items():
            layer.forward = timed(name, layer.forward, 0)
            layer.backward = timed(name, layer.backward, 1)
        total = _timed(runner.step, backend.synchronize)
    finally:
        for layer in model.layers.values():
            layer.__dict__.pop("forward", None)
            layer.__dict__.pop("backward", None)
    return [(name, forward, backward) for name, (forward, backward) in spent.items()], total


# ---------------------------------------------------------------------------- the whole benchmark


def run(settings, log=print):
    """Run the benchmark; returns every figure in a dict (see format_report, or write it as JSON)."""
    if settings.threads < 0:
        raise BenchmarkError("threads must be 0 (as NumPy has) or more")
    if not settings.threads:
        return _run(settings, log)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise BenchmarkError("--threads needs threadpoolctl (pip install threadpoolctl) to set NumPy's BLAS "
                             "threads; or set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS before starting") from None
    # fcnlite's own copies and element-wise passes: as many threads as the BLAS
    with threadpool_limits(limits=settings.threads, user_api="blas"), backend.host_threads_set_to(settings.threads):
        return _run(settings, log)


def _run(settings, log):
    if settings.model not in MODELS:
        raise BenchmarkError(f"unknown model {settings.model!r}: use one of {', '.join(MODELS)}")
    if settings.repeats < 1 or settings.warmup < 0 or settings.batch < 1:
        raise BenchmarkError("repeats must be at least 1, warmup at least 0 and batch at least 1")
    notes = []
    if settings.device.lower() not in ("cpu", "numpy"):
        os.environ["CUPY_TF32"] = "1" if settings.tf32 else "0"   # before CuPy's first float32 product
    try:
        backend.use(settings.device)
    except backend.BackendError as error:
        raise BenchmarkError(str(error)) from None
    on_gpu = backend.name() == "cupy"
    if not on_gpu and backend.reuse_host_memory():
        notes.append("host memory: glibc keeps freed pages for reuse (fcnlite.backend.reuse_host_memory), "
                     "for both frameworks in this process")
    if settings.tf32 and not on_gpu:
        notes.append("--tf32 on is ignored on the CPU (TF32 is a GPU tensor-core mode)")
        settings = replace(settings, tf32=False)   # so that the report and its JSON say what ran
    log(backend.describe())

    torch, torch_device = None, None
    if settings.torch:
        try:
            import torch
        except ImportError:
            notes.append("PyTorch is not importable: fcnlite alone")
        if torch is not None:
            torch_device = "cuda" if on_gpu else "cpu"
            if on_gpu and not torch.cuda.is_available():
                notes.append("PyTorch has no CUDA device: fcnlite alone (a CPU PyTorch is no comparison for a GPU)")
                torch = None
    if on_gpu:
        set_tf32(settings.tf32, torch)

    threads = numpy_threads()
    if torch is not None and not on_gpu:
        torch.set_num_threads(threads)

    images, labels = random_batch(settings)
    input_shape = images.shape
    # fcnlite first, alone: tracemalloc sees every Python allocation, so it runs before
    # PyTorch's network exists, and starts before the model is built (its weights count)
    started_tracing = not on_gpu and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    try:
        fcnlite_runner = FcnliteRunner(settings, images, labels)
        log(f"warming up fcnlite: {settings.warmup} training step(s), measuring the peak memory")
        peaks = {"fcnlite": warm_up(fcnlite_runner, "step", settings.warmup,
                                    _cupy_pool_peak if on_gpu else _FcnliteCpuPeak)}
    finally:
        if started_tracing:
            tracemalloc.stop()
    flops = count_flops(fcnlite_runner.model, input_shape)
    runners = [fcnlite_runner]

    check = None
    if torch is not None:
        torch_runner = TorchRunner(torch, fcnlite_runner.model, images, labels, torch_device)
        tolerance = 1e-2 if (settings.tf32 and on_gpu) else 1e-4
        error = relative_error(fcnlite_runner.scores(), torch_runner.scores())
        check = {"relative_error": error, "tolerance": tolerance}
        log(f"check: fcnlite and PyTorch scores in eval mode differ by {error:.2e} (max|a-b|/max|b|, "
            f"must be < {tolerance:.0e})")
        if not error < tolerance:
            raise BenchmarkError(f"fcnlite and PyTorch compute different scores: relative error {error:.3e} "
                                 f">= {tolerance:.0e}; the timings would compare different networks")
        log(f"warming up PyTorch: {settings.warmup} training step(s), measuring the peak memory")
        meter = (lambda: _TorchCudaPeak(torch)) if on_gpu else (lambda: _TorchCpuPeak(torch_runner))
        peaks["PyTorch"] = warm_up(torch_runner, "step", settings.warmup, meter)
        runners.append(torch_runner)
    if settings.warmup == 0:
        notes.append("peak memory is measured during the warm-up steps: none with --warmup 0")

    log(f"timing the training step: {settings.repeats} run(s) each" + (", interleaved" if len(runners) > 1 else ""))
    step_times = interleaved_times(runners, "step", settings.repeats)
    log("timing inference")
    for runner in runners:
        warm_up(runner, "infer", settings.warmup)
    infer_times = interleaved_times(runners, "infer", settings.repeats)

    results = {
        "settings": {**asdict(settings), "size": list(settings.size)},
        "machine": machine_description(threads, torch, on_gpu),
        "flops": {"forward": flops.forward, "backward": flops.backward, "step": flops.step,
                  "convention": "convolutions only, multiply-add = 2 FLOPs, bias adds not counted, "
                                "no gradient for the input image",
                  "layers": flops.as_dict()["layers"]},
        "input_shape": list(input_shape),
        "check": check,
        "memory_method": _memory_method(on_gpu, torch is not None),
        "notes": notes,
    }
    results.update(_figures(flops, step_times, infer_times, peaks))
    if settings.layers:
        log("timing every layer of one fcnlite training step")
        results["layers"] = _layer_figures(fcnlite_runner, input_shape)
    results["process_max_rss_bytes"] = max_rss_bytes()
    return results


def _memory_method(on_gpu, with_torch):
    ours = "fcnlite: CuPy pool bytes in use (MemoryHook)" if on_gpu else "fcnlite: tracemalloc (NumPy's buffers)"
    theirs = "torch.cuda.max_memory_allocated" if on_gpu else "tensors alive + torch.profiler's allocator peak"
    return ours + (f"; PyTorch: {theirs}" if with_torch else "")


def _figures(flops, step_times, infer_times, peaks):
    """{"fcnlite": {...}, "torch": {...} or None, "ratio": fcnlite / PyTorch or None} from the raw times."""
    figures = {"torch": None, "ratio": None}
    for name, times in step_times.items():
        step, infer = statistics.median(times), statistics.median(infer_times[name])
        figures["fcnlite" if name == "fcnlite" else "torch"] = {
            "step_seconds": step, "step_times": times,
            "inference_seconds": infer, "inference_times": infer_times[name],
            "step_gflops": flops.step / step / 1e9, "inference_gflops": flops.forward / infer / 1e9,
            "peak_memory_bytes": peaks.get(name)}
    if figures["torch"] is not None:
        ours, theirs = figures["fcnlite"], figures["torch"]
        figures["ratio"] = {
            "step": ours["step_seconds"] / theirs["step_seconds"],
            "inference": ours["inference_seconds"] / theirs["inference_seconds"],
            "peak_memory": (ours["peak_memory_bytes"] / theirs["peak_memory_bytes"]
                            if ours["peak_memory_bytes"] and theirs["peak_memory_bytes"] else None)}
    return figures


def _layer_figures(runner, input_shape):
    """Seconds and FLOPs of every layer in one fcnlite step, FLOPs as fcnlite does the work (conv1_1's dx
    counted unless the layer's input_grad is off)."""
    per_layer, total = time_layers(runner)
    counted = {row.name: row for row in count_flops(runner.model, input_shape, input_gradient=True).rows}
    return {"step_seconds": total, "rows": [
        {"name": name, "forward_seconds": forward, "backward_seconds": backward,
         "forward_flops": counted[name].forward, "backward_flops": counted[name].backward}
        for name, forward, backward in per_layer if name in counted]}


def machine_description(threads, torch, on_gpu):
    machine = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
               "numpy": numpy.__version__, "blas": blas_description(), "numpy_threads": threads,
               "host_threads": backend.host_threads(),
               "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
               "backend": backend.describe()}
    if backend.name() == "cupy":
        machine["cupy"] = backend.get().__version__
    if torch is not None:
        machine["torch"] = torch.__version__
        machine["torch_threads"] = torch.get_num_threads()
        if on_gpu:
            machine["torch_cuda"] = torch.version.cuda
            machine["cudnn"] = torch.backends.cudnn.version()
        else:
            machine["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return machine


# ---------------------------------------------------------------------------- report


def _gib(count):
    return "-" if count is None else f"{count / 2**30:.2f} GiB"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def format_report(results):
    """The figures as a readable table."""
    settings, machine, flops = results["settings"], results["machine"], results["flops"]
    ours, theirs, ratio = results["fcnlite"], results.get("torch"), results.get("ratio") or {}
    shape = "x".join(map(str, results["input_shape"]))
    lines = [
        f"{settings['model'].upper()}, width {settings['width']:g}, {settings['n_classes']} classes, "
        f"input {shape}, float32, TF32 {'on' if settings['tf32'] else 'off'}",
        f"{machine['backend']}; CPU {machine['cpu']} ({machine['cpu_count']} cores), "
        f"BLAS {machine['blas']}" + (f"; PyTorch {machine['torch']} ({count(machine['torch_threads'], 'thread')})"
                                     if "torch" in machine else ""),
        f"fcnlite's copies and element-wise passes on the CPU: {count(machine['host_threads'], 'thread')} "
        f"(FCNLITE_HOST_THREADS); OPENBLAS_THREAD_TIMEOUT={machine['openblas_thread_timeout']}",
        f"FLOPs: forward {flops['forward'] / 1e9:.1f} GFLOP, training step {flops['step'] / 1e9:.1f} GFLOP "
        f"({flops['convention']})",
    ]
    if results.get("check"):
        lines.append(f"check: scores agree, relative error {results['check']['relative_error']:.1e} "
                     f"< {results['check']['tolerance']:.0e}")
    lines.append("")
    header = f"{'':<22}{'fcnlite':>14}"
    if theirs:
        header += f"{'PyTorch':>14}{'fcnlite/PyTorch':>18}"
    lines.append(header)

    def row(label, key, fmt, ratio_key=None):
        text = f"{label:<22}{fmt(ours[key]):>14}"
        if theirs:
            text += f"{fmt(theirs[key]):>14}{_ratio(ratio.get(ratio_key)) if ratio_key else '':>18}"
        lines.append(text)

    row("training step", "step_seconds", lambda s: f"{s * 1e3:.1f} ms", "step")
    row("  GFLOP/s", "step_gflops", lambda g: f"{g:.1f}")
    row("inference", "inference_seconds", lambda s: f"{s * 1e3:.1f} ms", "inference")
    row("  GFLOP/s", "inference_gflops", lambda g: f"{g:.1f}")
    row("peak memory (step)", "peak_memory_bytes", _gib, "peak_memory")
    lines.append("")
    lines.append(f"median of {settings['repeats']} timed runs after {settings['warmup']} warm-up"
                 + (", fcnlite and PyTorch taking turns" if theirs else ""))
    lines.append(f"memory: {results['memory_method']}; process peak RSS {_gib(results['process_max_rss_bytes'])}")
    for note in results["notes"]:
        lines.append(f"note: {note}")
    if results.get("layers"):
        lines.append("")
        lines.append(format_layers(results["layers"]))
    return "\n".join(lines)


def format_layers(layers):
    lines = [f"one fcnlite training step, layer by layer ({layers['step_seconds'] * 1e3:.0f} ms in all):",
             f"{'layer':<15}{'forward ms':>11}{'GFLOP/s':>9}{'backward ms':>13}{'GFLOP/s':>9}{'share':>8}"]
    total = layers["step_seconds"]
    for row in layers["rows"]:
        forward, backward = row["forward_seconds"], row["backward_seconds"]
        forward_rate = f"{row['forward_flops'] / forward / 1e9:.1f}" if row["forward_flops"] and forward else ""
        backward_rate = f"{row['backward_flops'] / backward / 1e9:.1f}" if row["backward_flops"] and backward else ""
        lines.append(f"{row['name']:<15}{forward * 1e3:>11.2f}{forward_rate:>9}{backward * 1e3:>13.2f}"
                     f"{backward_rate:>9}{(forward + backward) / total:>8.1%}")
    rest = total - sum(r["forward_seconds"] + r["backward_seconds"] for r in layers["rows"])
    lines.append(f"{'loss, SGD, rest':<15}{rest * 1e3:>11.1f}{'':>9}{'':>13}{'':>9}{rest / total:>8.1%}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command line


def add_arguments(parser):
    from .argtypes import COUNT, POSITIVE
    from .cli import DEVICE_HELP
    parser.add_argument("--model", choices=MODELS, default="fcn8s", help="default fcn8s")
    parser.add_argument("--width", type=POSITIVE, default=1.0, help="channel width multiplier (1.0: VGG16's)")
    parser.add_argument("--n-classes", type=COUNT, default=21)
    parser.add_argument("--size", default="375x500", help="input HEIGHTxWIDTH (default 375x500, a VOC image)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default=None, help=DEVICE_HELP)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (they measure peak memory)")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    parser.add_argument("--tf32", choices=("on", "off"), default="off",
                        help="TF32 tensor cores for float32 products on the GPU (ignored on the CPU)")
    parser.add_argument("--layers", action="store_true", help="also time every layer of one fcnlite step")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for NumPy's BLAS, fcnlite's host passes and PyTorch "
                             "(default: as many as NumPy's BLAS runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    return parser


def settings_from_arguments(arguments):
    from .cli import default_device
    return Settings(model=arguments.model, width=arguments.width, n_classes=arguments.n_classes,
                    size=parse_size(arguments.size), batch=arguments.batch,
                    device=arguments.device or default_device(),
                    repeats=arguments.repeats, warmup=arguments.warmup, torch=not arguments.no_torch,
                    tf32=arguments.tf32 == "on", layers=arguments.layers, threads=arguments.threads,
                    seed=arguments.seed)


def main(argv=None):
    import argparse
    parser = add_arguments(argparse.ArgumentParser(
        description="Time an FCN's training step and inference with fcnlite, beside PyTorch."))
    arguments = parser.parse_args(argv)
    from .cli import UsageError, check_json_output
    try:
        if arguments.json:
            # before the minutes of timing, not after
            check_json_output(arguments.json, "--json", JSON_KEYS, "an earlier benchmark's figures")
        results = run(settings_from_arguments(arguments))
    except UsageError as error:
        print(f"benchmark: {error}")
        return 1
    except BenchmarkError as error:
        print(f"benchmark: {error}")
        return 1
    print()
    print(format_report(results))
    if arguments.json:
        def write(temporary):
            with open(temporary, "w") as file:
                json.dump(results, file, indent=2)
        try:
            atomic_write(arguments.json, write)
        except WeightsError as error:   # (a disk that filled during the timing)
            print(f"benchmark: {error}")
            return 1
        print(f"\nwrote {arguments.json}")
    return 0
