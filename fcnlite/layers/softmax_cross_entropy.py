"""SoftmaxCrossEntropy: the per-pixel multinomial logistic loss of the FCN paper.

    scores   (N, C, H, W)  any real values
    labels   (N, H, W)     integers in [0, C), or ignore_index (void pixels)
    loss     scalar:  L = -(1/Z) * sum over counted pixels of log softmax(scores)[label]

    Z = number of counted pixels   (normalize=True)
      = 1                          (normalize=False: the sum, as the reference's Caffe loss)

    backward   dscores = (softmax(scores) - onehot(labels)) / Z   at counted pixels, 0 at ignored ones

Stable for large scores: softmax is computed after subtracting each pixel's
maximum score. A batch with no counted pixel has loss 0 and gradient 0.
"""
import numpy

from .. import backend
from ..backend import array_module
from .base import Layer


class SoftmaxCrossEntropy(Layer):
    def __init__(self, ignore_index=255, normalize=True, dtype=numpy.float32):
        super().__init__(dtype)
        self.ignore_index = ignore_index
        self.normalize = normalize

    def forward(self, scores, labels):
        xp = array_module(scores)
        n, n_classes, h, w = scores.shape
        if labels.shape != (n, h, w):
            raise ValueError(f"SoftmaxCrossEntropy: labels {tuple(labels.shape)} do not match scores {tuple(scores.shape)}")
        labels = xp.asarray(labels)
        counted = labels != self.ignore_index
        bad = counted & ((labels < 0) | (labels >= n_classes))
        safe_labels = xp.where(counted & ~bad, labels, 0).astype(numpy.intp)

        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        probs = exp / total
        picked = xp.take_along_axis(shifted, safe_labels[:, None], axis=1)[:, 0]
        log_likelihood = picked - xp.log(total[:, 0])

        # the three numbers the host needs, fetched together (on a GPU each fetch waits for the
        # device), as float64 so that the counts stay exact
        bad_count, count, log_likelihood_sum = (float(value) for value in backend.to_numpy(xp.stack([
            bad.sum(), counted.sum(), (log_likelihood * counted).sum()]).astype(numpy.float64)))
        if bad_count:
            value = int(labels[bad].ravel()[0])
            raise ValueError(f"label value {value} is not a class (0..{n_classes - 1}) or the ignore index {self.ignore_index}")
        scale = 1.0 / count if (self.normalize and count > 0) else 1.0
        self._probs, self._labels, self._counted, self._scale = probs, safe_labels, counted, scale
        return -log_likelihood_sum * scale

    def backward(self, dloss=1.0):
        xp = array_module(self._probs)
        n_classes = self._probs.shape[1]
        onehot = xp.arange(n_classes).reshape(1, -1, 1, 1) == self._labels[:, None]
        dscores = self._probs - onehot
        dscores *= (self._counted[:, None] * (self._scale * dloss)).astype(dscores.dtype)
        return dscores
