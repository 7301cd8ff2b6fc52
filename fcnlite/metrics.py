"""Segmentation metrics from a confusion matrix, as the FCN paper defines them.

Everything starts from the confusion matrix: matrix[i, j] counts pixels whose
ground truth is class i and whose prediction is class j (rows = truth,
columns = prediction). Pixels labelled `ignore_index` (255, "void") are not
counted. With n_ij = matrix[i, j], t_i = sum_j n_ij (pixels of class i) and
n_cl classes, Long et al. (2015, section 5) report

    pixel accuracy       sum_i n_ii / sum_i t_i
    mean accuracy        (1/n_cl) sum_i n_ii / t_i
    mean IU              (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
    frequency weighted   (1 / sum_k t_k) sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)

A class that is absent from the ground truth has no accuracy (0/0), and one
absent from both truth and prediction has no IU: such classes are NaN and the
means skip them (nanmean), as the reference evaluation code does. The
per-class dictionaries hold None where a value is NaN, so they go into JSON as is;
the four means are NaN only where no pixel was counted (ConfusionMatrix.why_empty
says why), which JSON cannot hold.

For two-class tasks (road vs rest), binary_metrics gives precision, recall,
F1 / F-beta and IoU of the positive class.

The matrix itself is one np.bincount over n_classes * label + prediction.
"""
import numpy

from . import backend


def confusion_matrix(labels, predictions, n_classes, ignore_index=255):
    """(n_classes, n_classes) int64 counts; rows = ground truth, columns = prediction.

    labels, predictions: integer (or boolean) arrays of the same shape, class indices.
    Pixels whose label is ignore_index are left out; any other label outside
    0..n_classes-1 is an error, and so is a prediction outside that range. Float arrays
    are refused rather than truncated: foreground probabilities passed as predictions
    would all count as class 0, and a label 1.7 as class 1.
    """
    labels = numpy.asarray(backend.to_numpy(labels))
    predictions = numpy.asarray(backend.to_numpy(predictions))
    # equal pixel counts are not enough: a transposed (W, H) prediction would be scored pixel by wrong pixel
    if labels.shape != predictions.shape:
        raise ValueError(f"labels have shape {labels.shape} but predictions {predictions.shape}: "
                         f"give one prediction per labelled pixel, in the same layout")
    if labels.dtype.kind not in "biu" and labels.size:   # (numpy.array([]) is float64, and counts nothing)
        raise TypeError(f"labels are {labels.dtype}: give the class index of each pixel as integers "
                        f"(0..{n_classes - 1}, {ignore_index} for void)")
    if predictions.dtype.kind not in "biu" and predictions.size:
        raise TypeError(f"predictions are {predictions.dtype}: give class indices (the argmax of the scores), "
                        f"not probabilities or scores")
    labels, predictions = labels.ravel(), predictions.ravel()
    keep = labels != ignore_index
    labels = labels[keep].astype(numpy.int64)
    predictions = predictions[keep].astype(numpy.int64)
    for what, values in (("label", labels), ("prediction", predictions)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            bad = values[(values < 0) | (values >= n_classes)][0]
            raise ValueError(f"{what} value {bad} is not a class (0..{n_classes - 1})"
                             + (f" or {ignore_index}" if what == "label" else ""))
    counts = numpy.bincount(n_classes * labels + predictions, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


class ConfusionMatrix:
    """A confusion matrix accumulated over many images: update() per image, metrics() at the end."""

    def __init__(self, n_classes, ignore_index=255):
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.matrix = numpy.zeros((n_classes, n_classes), dtype=numpy.int64)
        self.skipped = []   # samples an evaluation could not load (skip_bad), one message each

    def update(self, labels, predictions):
        """Add one image (or a batch) of labels and predictions; NumPy or CuPy arrays."""
        self.matrix += confusion_matrix(labels, predictions, self.n_classes, self.ignore_index)
        return self

    def reset(self):
        self.matrix[...] = 0

    def metrics(self, class_names=None):
        return segmentation_metrics(self.matrix, class_names)

    def why_empty(self):
        """Why no pixel was counted, in words (every image skipped, or void throughout); None where some were.
        Metrics of an empty matrix are NaN: the programs say this instead."""
        if self.matrix.sum():
            return None
        if self.skipped:
            return f"every image was skipped as bad (the first: {self.skipped[0]})"
        return "its masks are void (255) throughout"

    def binary_metrics(self, positive=1, beta=1.0):
        return binary_metrics(self.matrix, positive, beta)


def _divide(numerator, denominator):
    """numerator / denominator elementwise, NaN where the denominator is 0 (and no warning)."""
    numerator = numpy.asarray(numerator, dtype=numpy.float64)
    denominator = numpy.asarray(denominator, dtype=numpy.float64)
    out = numpy.full(numpy.broadcast(numerator, denominator).shape, numpy.nan)
    return numpy.divide(numerator, denominator, out=out, where=denominator != 0)


def _nanmean(values):
    """Mean of the non-NaN values; NaN when there are none (numpy.nanmean would warn)."""
    values = numpy.asarray(values, dtype=numpy.float64)
    kept = values[~numpy.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def _json_safe(value):
    value = float(value)
    return None if numpy.isnan(value) else value


def segmentation_metrics(matrix, class_names=None):
    """The FCN paper's four numbers and the IU of every class (see the module docstring).

    Returns {"pixel_accuracy", "mean_accuracy", "mean_iu", "fwiu": float (NaN when
    nothing was counted), "per_class_iu": {name: IU or None}, "per_class_accuracy":
    {name: accuracy or None}, "n_pixels": int}.
    """
    matrix = numpy.asarray(matrix, dtype=numpy.float64)
    n_classes = matrix.shape[0]
    if class_names is None:
        class_names = [str(index) for index in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for a {n_classes}-class confusion matrix")
    correct = numpy.diag(matrix)                 # n_ii
    truth = matrix.sum(axis=1)                   # t_i
    predicted = matrix.sum(axis=0)               # sum_j n_ji
    total = truth.sum()
    accuracy = _divide(correct, truth)           # NaN for classes absent from the ground truth
    iu = _divide(correct, truth + predicted - correct)  # NaN for classes absent from truth and prediction
    frequency = _divide(truth, total)
    present = ~numpy.isnan(iu)
    fwiu = float((frequency[present] * iu[present]).sum()) if total else float("nan")
    return {
        "pixel_accuracy": float(_divide(correct.sum(), total)),
        "mean_accuracy": _nanmean(accuracy),
        "mean_iu": _nanmean(iu),
        "fwiu": fwiu,
        "per_class_iu": {name: _json_safe(value) for name, value in zip(class_names, iu)},
        "per_class_accuracy": {name: _json_safe(value) for name, value in zip(class_names, accuracy)},
        "n_pixels": int(total),
    }


def binary_metrics(matrix, positive=1, beta=1.0):
    """Precision, recall, F1, F-beta and IoU of class `positive` against every other class.

    tp = matrix[p, p], fp = column p minus tp, fn = row p minus tp. With more
    than two classes, the other classes together are "the rest".
    F-beta = (1 + beta^2) P R / (beta^2 P + R): beta > 1 weighs recall more. It is computed
    from the counts, (1 + beta^2) tp / ((1 + beta^2) tp + beta^2 fn + fp): that equals the P/R
    formula wherever P and R exist, and, like F1, it is defined whenever tp + fp + fn > 0
    (a pixel of the class was predicted or labelled; 0 when tp = 0), for beta > 0 (beta = 0
    is the precision: undefined where nothing was predicted).
    Values are floats, None where undefined (0/0).
    """
    matrix = numpy.asarray(matrix, dtype=numpy.float64)
    n_classes = matrix.shape[0]
    # a negative index would pick a class from the end: binary_metrics(positive=-1) scored the last class
    if not (isinstance(positive, (int, numpy.integer)) and 0 <= positive < n_classes):
        raise ValueError(f"positive is {positive!r}: give the index of the positive class, 0..{n_classes - 1}")
    tp = matrix[positive, positive]
    fp = matrix[:, positive].sum() - tp
    fn = matrix[positive, :].sum() - tp
    precision = _divide(tp, tp + fp)
    recall = _divide(tp, tp + fn)
    beta2 = beta * beta
    fbeta = _divide((1 + beta2) * tp, (1 + beta2) * tp + beta2 * fn + fp)
    f1 = _divide(2 * tp, 2 * tp + fp + fn)
    iou = _divide(tp, tp + fp + fn)
    return {"precision": _json_safe(precision), "recall": _json_safe(recall), "f1": _json_safe(f1),
            "iou": _json_safe(iou), "fbeta": _json_safe(fbeta), "beta": float(beta),
            "tp": int(tp), "fp": int(fp), "fn": int(fn)}


def format_number(value, digits=4):
    """value with `digits` decimals, or "n/a" where it is undefined (None or NaN)."""
    if value is None or (isinstance(value, float) and numpy.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def format_metrics(metrics):
    """A readable multi-line summary of segmentation_metrics (and binary_metrics keys, if present)."""
    lines = [f"pixel accuracy  {format_number(metrics.get('pixel_accuracy'))}",
             f"mean accuracy   {format_number(metrics.get('mean_accuracy'))}",
             f"mean IU         {format_number(metrics.get('mean_iu'))}",
             f"f.w. IU         {format_number(metrics.get('fwiu'))}"]
    for key in ("precision", "recall", "f1", "iou"):
        if key in metrics:
            lines.append(f"{key:<16}{format_number(metrics[key])}")
    if "fbeta" in metrics and metrics.get("beta", 1.0) != 1.0:
        lines.append(f"{'F' + format(metrics['beta'], 'g'):<16}{format_number(metrics['fbeta'])}")
    per_class = metrics.get("per_class_iu")
    if per_class:
        accuracy = metrics.get("per_class_accuracy", {})
        width = max(12, max(len(name) for name in per_class))
        lines.append("")
        lines.append(f"{'class':<{width}}  {'IU':>7}  {'acc':>7}")
        for name, value in per_class.items():
            lines.append(f"{name:<{width}}  {format_number(value):>7}  {format_number(accuracy.get(name)):>7}")
    return "\n".join(lines)
