"""GPU measurements beside the benchmark, for .ci/gpu_check.sh.

    python .ci/gpu_variants.py ceilings            float32 matrix product (TF32 off/on) and copy bandwidth
    python .ci/gpu_variants.py bands 64 256 1024   the FCN-8s benchmark with im2col bands of that many MiB
"""
import os
import sys

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
    for tf32 in (False, True):
        for size in sizes:
            im2col.GPU_BAND_BYTES = int(size) * 2**20
            im2col.workspace.clear()
            results = benchmark.run(benchmark.Settings(device="gpu", repeats=15, warmup=2, tf32=tf32), log=lambda *_: None)
            ours, theirs, ratio = results["fcnlite"], results["torch"], results["ratio"]
            print(f"{size:>9}{'on' if tf32 else 'off':>6}{ours['step_seconds'] * 1e3:>9.2f}{theirs['step_seconds'] * 1e3:>8.2f}"
                  f"{ratio['step']:>7.2f}{ours['inference_seconds'] * 1e3:>10.2f}{theirs['inference_seconds'] * 1e3:>8.2f}"
                  f"{ratio['inference']:>7.2f}{ours['peak_memory_bytes'] / 2**30:>10.2f}"
                  f"{theirs['peak_memory_bytes'] / 2**30:>7.2f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["ceilings"]:
        ceilings()
    elif sys.argv[1:2] == ["bands"]:
        bands(sys.argv[2:])
    else:
        sys.exit(__doc__)
