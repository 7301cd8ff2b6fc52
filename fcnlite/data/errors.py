"""The one error type for bad data: its message is one line, "<file>: <what is wrong>"."""


class DataError(Exception):
    def __init__(self, path, problem):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def sample_name(dataset, index):
    """How an error names sample `index` of `dataset`: its image file where the dataset says which,
    else "<dataset name>[index]"."""
    try:
        return str(dataset.image_path(index))
    except Exception:   # a dataset of one's own need not have image_path
        return f"{getattr(dataset, 'name', type(dataset).__name__)}[{index}]"


def load_sample(dataset, index):
    """(image, label) = dataset.load(index). Whatever else than a DataError goes wrong there (a dataset of
    one's own: an OSError, a bug in its load, no pair returned), a MemoryError apart, becomes a
    DataError naming the sample, so that training stops as for bad data: with a checkpoint, or
    skips it with skip_bad."""
    try:
        image, label = dataset.load(index)
        return image, label
    except (DataError, MemoryError):   # (no memory is no fault of the sample's: not to be skipped)
        raise
    except Exception as error:
        from ..errors import first_line
        raise DataError(sample_name(dataset, index),
                        f"load({index}) failed: {type(error).__name__}: {first_line(error)}") from None
