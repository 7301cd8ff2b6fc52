"""Dropout (inverted): in training, zero each activation with probability p and scale the rest by 1/(1-p).

    x, y, dy, dx   (any shape, all the same)
    training       y = x * m,   m = [u >= p] / (1 - p),  u ~ Uniform[0, 1)
    eval           y = x        (m = 1: the expectation is already right, so nothing to rescale)
    backward       dx = dy * m

The mask comes from fcnlite.rng, whose state checkpoints save, so a resumed
run draws the same masks as an uninterrupted one.
"""
import numpy

from .. import rng
from ..backend import array_module
from .base import Layer

UNMASKED = "unmasked"   # what forward keeps in eval mode (or p = 0): y = x, so dx = dy


class Dropout(Layer):
    keeps_under_no_grad = True   # in training mode its mask (see no_grad)

    def __init__(self, p=0.5, dtype=numpy.float32):
        super().__init__(dtype)
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self._mask = None   # forward's m (or UNMASKED), kept for backward

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = UNMASKED
            return x
        xp = array_module(x)
        keep = rng.uniform(xp, x.shape, x.dtype) >= self.p
        self._mask = keep * x.dtype.type(1 / (1 - self.p))
        return x * self._mask

    def backward(self, dy):
        mask = self.kept(self._mask)
        if mask is UNMASKED:
            return dy
        self.check_gradient(dy, mask.shape)
        return dy * mask
