#!/usr/bin/env bash
# The GPU checks of issue 6, in one call on a lent GPU machine (the `device` tool; see BENCHMARKS.md):
#   1. the two ceilings (a large float32 matrix product with TF32 off and on, a device-to-device copy)
#   2. examples/benchmark.py on the GPU beside PyTorch, TF32 off and on, layer by layer
#   3. the whole test suite, whose CuPy parametrisations and tests/test_cuda_kernels.py run only there
#   4. variants (extra arguments: python .ci/gpu_variants.py's)
# Logs and JSON go to $OUT (or ./gpu_out); a short summary is printed last. Every step runs even
# when one fails (the call is too dear to stop early); the exit status says whether any failed.
set -o pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_out}"; mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
failed=0
{
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv
  $python -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'numpy', numpy.__version__)"
  timeout 60 $python .ci/gpu_variants.py ceilings
} 2>&1 | tee "$out/gpu.txt" || failed=1

for tf32 in off on; do
  timeout 100 $python examples/benchmark.py --device gpu --repeats 20 --warmup 3 --tf32 $tf32 --layers \
      --json "$out/bench_$tf32.json" 2>&1 | tee "$out/bench_$tf32.log" || failed=1
done

# eight processes with pytest-xdist; without it, one process runs only the tests that meet CuPy, or
# the suite would not fit. SIGINT at the limit: pytest stops as on Ctrl-C and still prints its summary.
: > "$out/pytest.log"; selection=(-n 8 tests)
if ! $python -c "import xdist" 2>/dev/null; then
  echo "note: pytest-xdist is missing: one process, the CuPy tests only" | tee -a "$out/pytest.log"
  selection=(-k "cupy or gpu or cuda" tests)
fi
timeout -s INT -k 30 "${TEST_TIMEOUT:-180}" $python -m pytest -q -p no:cacheprovider -rfEs "${selection[@]}" 2>&1 \
  | tee -a "$out/pytest.log" | tail -40 || failed=1

# the variants get what is left of the call (CHECK_SECONDS, the device tool's 600 s less a margin
# for the summary), at most 150 s: a call cut off by the tool would lose the summary below
left=$(( ${CHECK_SECONDS:-580} - SECONDS ))
if [ $# -gt 0 ] && [ "$left" -gt 20 ]; then
  timeout -s INT -k 10 $(( left < 150 ? left : 150 )) $python .ci/gpu_variants.py "$@" 2>&1 \
    | tee "$out/variants.log" || failed=1
elif [ $# -gt 0 ]; then
  echo "variants not run: ${left} s left of the call" | tee "$out/variants.log"; failed=1
fi

echo "==================== summary"
cat "$out/gpu.txt"
for tf32 in off on; do grep -E "^(training step|inference|peak memory|  GFLOP|check)" "$out/bench_$tf32.log" | sed "s/^/tf32 $tf32: /"; done
tail -3 "$out/pytest.log"
[ -f "$out/variants.log" ] && tail -20 "$out/variants.log"
echo "failed steps: $failed"
exit $failed
