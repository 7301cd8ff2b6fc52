#!/usr/bin/env python
"""Time an FCN's training step and inference with fcnlite, beside PyTorch on the same network.

    python examples/benchmark.py                                   # FCN-8s, 375x500, GPU if there is one
    python examples/benchmark.py --device cpu --repeats 3 --json bench.json
    python examples/benchmark.py --size 32x32 --width 0.0625 --repeats 2   # a quick smoke run

Run with --help for the options; what is measured and how is in BENCHMARKS.md,
and the logic lives in fcnlite/benchmark.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from fcnlite.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
