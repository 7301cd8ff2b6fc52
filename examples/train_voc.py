#!/usr/bin/env python
"""Train an FCN on PASCAL VOC, on your own images and masks, or on the built-in synthetic data.

Run with --help for the options; the logic lives in fcnlite/cli.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from fcnlite.cli import main_train, run_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_main(main_train))
