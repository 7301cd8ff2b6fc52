#!/usr/bin/env python
"""Segment images with saved FCN weights: a VOC-palette label PNG and a coloured overlay with a legend per image.

Run with --help for the options; the logic lives in fcnlite/cli.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from fcnlite.cli import main_predict, run_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_main(main_predict))
