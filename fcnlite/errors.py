"""Quoting a foreign exception inside fcnlite's one-line errors.

fcnlite's errors (DataError, WeightsError, BackendError, ...) are one line each, so that
the programs can print them instead of a traceback. When h5py, Pillow or SciPy fails
underneath, the error names the file and quotes that library's reason: its first line.
"""


def first_line(error):
    """The first line of an exception's message, or its type's name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
