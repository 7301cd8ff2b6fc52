#!/usr/bin/env python
"""Evaluate saved FCN weights: pixel accuracy, mean accuracy, mean IU, frequency-weighted IU, per-class IU.

Run with --help for the options; the logic lives in fcnlite/cli.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from fcnlite.cli import main_evaluate, run_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_main(main_evaluate))
