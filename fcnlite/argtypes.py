"""argparse types for the programs' options: each turns the text into a value, or refuses a value
that cannot work (--accumulate 0, --max-side -1, --resize 0x0, --width nan) with one line naming
the option, before any data is read.
"""
import argparse
import math


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints its whole usage first: 17 lines
    for train_voc.py), pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def size_pair(text):
    """'224x224' -> (224, 224): height x width."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH in pixels such as 224x224, got {text!r}")
    return height, width


def checked_number(convert, description, least=None, most=None, above=None, below=None):
    """An argparse type: text -> convert(text), refused (one line, naming the option) unless finite and
    within the bounds given."""
    def parse(text):
        try:
            value = convert(text)
            finite = math.isfinite(value)
        except (ValueError, OverflowError):   # OverflowError: an int too large to compare as a float
            value, finite = None, False
        if (not finite or (least is not None and value < least)
                or (most is not None and value > most) or (above is not None and value <= above)
                or (below is not None and value >= below)):
            raise argparse.ArgumentTypeError(f"expected {description}, not {text!r}")
        return value
    return parse


COUNT = checked_number(int, "a whole number, 1 or more", least=1)
COUNT_OR_ZERO = checked_number(int, "a whole number, 0 or more", least=0)
POSITIVE = checked_number(float, "a number above 0", above=0)
POSITIVE_OR_ZERO = checked_number(float, "a number, 0 or more", least=0)
FRACTION = checked_number(float, "a number between 0 and 1 (not 0 or 1)", above=0, below=1)
