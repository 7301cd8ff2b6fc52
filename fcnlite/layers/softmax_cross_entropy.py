"""SoftmaxCrossEntropy: the per-pixel multinomial logistic loss of the FCN paper.

    scores   (N, C, H, W)  any real values
    labels   (N, H, W)     integers in [0, C), or ignore_index (void pixels)
    loss     scalar:  L = -(1/Z) * sum over counted pixels of log softmax(scores)[label]

    Z = number of counted pixels   (normalize=True)
      = 1                          (normalize=False: the sum over all pixels; the reference's
                                    Caffe loss, `normalize: false`, divides by the batch size N,
                                    which is 1 there)

    backward   dscores = dloss * (softmax(scores) - onehot(labels)) / Z   at counted pixels, 0 at ignored ones
               (dloss = 1 unless the loss is itself scaled)

Stable for large scores: softmax is computed after subtracting each pixel's
maximum score. A batch with no counted pixel has loss 0 and gradient 0.

On a GPU, forward returns the loss as a 0-d CuPy array that stays on the device
(float(loss) reads it), so that the host can queue backward while the GPU is still
busy with the forward pass; with NumPy it returns a float. Labels are checked where
they are: pass them as the NumPy array a data loader gives, and the check costs the
GPU nothing; labels already on the GPU cost one wait for it.
"""
import numpy

from .. import backend
from ..backend import array_module
from .base import Layer


class SoftmaxCrossEntropy(Layer):
    keeps_under_no_grad = True   # what it keeps is small (see no_grad)

    def __init__(self, ignore_index=255, normalize=True, dtype=numpy.float32):
        super().__init__(dtype)
        self.ignore_index = ignore_index
        self.normalize = normalize
        # kept for backward: softmax(scores), the labels (void ones read as 0), their mask and 1/Z
        self._probs = self._safe_labels = self._counted = self._scale = None

    def forward(self, scores, labels):
        self.check_batch(scores, "scores")
        xp = array_module(scores)
        n, n_classes, h, w = scores.shape
        if labels.shape != (n, h, w):
            raise ValueError(f"SoftmaxCrossEntropy: labels {tuple(labels.shape)} do not match scores {tuple(scores.shape)}")
        if labels.dtype.kind not in "iub":
            raise ValueError(f"SoftmaxCrossEntropy: labels must be integers (class indices), not {labels.dtype}")
        # one integer type for the check and the loss, wide enough for any label and any ignore
        # index (a uint8 mask against -1), cast where the labels are: the check runs there
        labels = labels.astype(numpy.intp, copy=False)
        count = self._count_checked(labels, n_classes)
        labels = xp.asarray(labels)
        counted = labels != self.ignore_index
        # void pixels read class 0 (any class would do: take_along_axis needs an index); counted
        # masks them out of the loss and the gradient
        safe_labels = xp.where(counted, labels, 0)

        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        probs = exp / total
        picked = xp.take_along_axis(shifted, safe_labels[:, None], axis=1)[:, 0]
        # -log softmax(scores)[label], >= 0: a batch of void pixels only then sums to 0, not to -0
        negative_log_likelihood = xp.log(total[:, 0]) - picked

        scale = 1.0 / count if (self.normalize and count > 0) else 1.0
        self._probs, self._safe_labels, self._counted, self._scale = probs, safe_labels, counted, scale
        loss = (negative_log_likelihood * counted).sum() * scale
        return float(loss) if xp is numpy else loss

    def _count_checked(self, labels, n_classes):
        """The number of counted pixels; raises ValueError on a label that is not a class.

        Runs on the labels' own device: both numbers come to the host in one transfer.
        """
        lp = array_module(labels)
        counted = labels != self.ignore_index
        bad = counted & ((labels < 0) | (labels >= n_classes))
        bad_count, count = (int(value) for value in backend.to_numpy(lp.stack([bad.sum(), counted.sum()])))
        if bad_count:
            value = int(labels[bad].ravel()[0])
            raise ValueError(f"label value {value} is not a class (0..{n_classes - 1}) or the ignore index {self.ignore_index}")
        return count

    def backward(self, dloss=1.0):
        xp = array_module(self.kept(self._probs))
        n_classes = self._probs.shape[1]
        onehot = xp.arange(n_classes).reshape(1, -1, 1, 1) == self._safe_labels[:, None]
        dscores = self._probs - onehot
        dscores *= (self._counted[:, None] * (self._scale * dloss)).astype(dscores.dtype)
        return dscores
