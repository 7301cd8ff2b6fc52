"""Quoting a foreign exception inside fcnlite's one-line errors (and counting things in them).

fcnlite's errors (DataError, WeightsError, BackendError, ...) are one line each, so that
the programs can print them instead of a traceback. When h5py, Pillow or SciPy fails
underneath, the error names the file and quotes that library's reason: its first line.
"""


import os
import re

# terminal colour codes, which some libraries (PyTorch's unpickler) put in their messages
_ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


def first_line(error):
    """The first line of an exception's message, without terminal colour codes; with its type's name
    when the message is empty or too short to say anything alone (KeyError(105) -> "KeyError: 105")."""
    text = _ANSI_ESCAPES.sub("", str(error)).strip()
    if not text:
        return type(error).__name__
    line = text.splitlines()[0].strip()
    if isinstance(error, KeyError) or not (len(line) > 12 or " " in line):
        return f"{type(error).__name__}: {line}"   # a key, a number: meaningless without the type
    return line


def os_reason(error):
    """An OSError's cause in words ("permission denied", "no space left on device"), from its errno
    alone: h5py's own message, which carries the errno too, quotes HDF5's internals (times, file
    descriptors, the temporary file's name)."""
    return os.strerror(error.errno).lower() if error.errno else first_line(error)


def count(number, noun, plural=None):
    """'1 image', '3 images' (plural: where adding an s is wrong)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


class UsageError(Exception):
    """A problem with the command line or the data's whereabouts (one line for the user)."""
