"""Run a model over a dataset: label maps for single images, and the confusion
matrix of a whole split (the input of the FCN paper's metrics, fcnlite.metrics)."""
import numpy

from . import backend
from .data.errors import DataError
from .data.preprocess import preprocess
from .metrics import ConfusionMatrix


def model_input(model, image):
    """A batch of one (1, 3, H, W) on the model's device: the uint8 RGB image (H, W, 3) preprocessed as
    the model's weights expect."""
    return backend.to_device(preprocess(image, model.preprocessing)[None], dtype=model.dtype)


def label_dtype(n_classes):
    """The narrowest unsigned dtype that holds every class index 0..n_classes-1: uint8 up to 256 classes,
    as the datasets' label maps, and wider past that, where uint8 would wrap class 299 round to 43."""
    for dtype in (numpy.uint8, numpy.uint16, numpy.uint32):
        if n_classes - 1 <= numpy.iinfo(dtype).max:
            return dtype
    return numpy.uint64


def predict_image(model, image):
    """Label map (H, W) of one uint8 RGB image (H, W, 3): uint8 up to 256 classes, else label_dtype's."""
    return backend.to_numpy(model.predict(model_input(model, image))[0]).astype(label_dtype(model.n_classes))


def predict_probabilities(model, image):
    """Class probabilities (n_classes, H, W) float32 of one uint8 RGB image: the softmax of its scores,
    exp(s_c - max_c s) / sum_c exp(s_c - max_c s) (the max subtracted so that exp cannot overflow)."""
    scores = backend.to_numpy(model.predict_scores(model_input(model, image))[0]).astype(numpy.float32)
    exponentials = numpy.exp(scores - scores.max(axis=0, keepdims=True))
    return exponentials / exponentials.sum(axis=0, keepdims=True)


def evaluate_dataset(model, dataset, max_side=0, resize=None, limit=None, progress=True, stop=None):
    """Confusion matrix of model's predictions over dataset (void pixels excluded); its `skipped` lists
    the samples a dataset with skip_bad could not load (one message each). A sample that cannot be
    evaluated (unreadable, or a label that is no class map of its image) is a DataError naming it.
    stop: a callable asked before each image; where it says True, the evaluation is abandoned and
    None returned (the Trainer's Ctrl-C)."""
    from .train import fit_size, load_checked_sample
    matrix = ConfusionMatrix(dataset.n_classes)
    count = len(dataset) if not limit else min(limit, len(dataset))
    indices = range(count)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc="evaluate", unit="img", dynamic_ncols=True)
    for index in indices:
        if stop is not None and stop():
            return None
        try:
            image, label = load_checked_sample(dataset, index, dataset.n_classes)
        except DataError as error:
            if not getattr(dataset, "skip_bad", False):
                raise
            matrix.skipped.append(str(error))
            continue
        image, label = fit_size(image, label, resize, max_side)
        matrix.update(label, predict_image(model, image))
    return matrix
