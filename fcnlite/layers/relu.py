"""ReLU: y = max(x, 0).

    x, y, dy, dx   (N, C, ...), all the same shape
    backward       dx = dy * [x > 0]

inplace=True overwrites x with y (the networks use it: a convolution's output has
no other reader, and not allocating y saves one activation-sized array per layer).
"""
import numpy

from ..backend import array_module, split_over_threads
from .base import Layer, grad_enabled


class ReLU(Layer):
    def __init__(self, inplace=False, dtype=numpy.float32):
        super().__init__(dtype)
        self.inplace = inplace

    def forward(self, x):
        xp = array_module(x)
        y = x if self.inplace else xp.empty_like(x)
        positive = xp.empty(x.shape, dtype=bool) if grad_enabled() else None

        def relu(c0, c1):   # channels c0..c1: the mask and the max while they are in cache
            if positive is not None:
                xp.greater(x[:, c0:c1], 0, out=positive[:, c0:c1])
            xp.maximum(x[:, c0:c1], 0, out=y[:, c0:c1])
        split_over_threads(relu, x.shape[1], x.nbytes, blocked=True, xp=xp)
        self._positive = positive
        return y

    def backward(self, dy):
        xp = array_module(dy)
        dx = xp.empty(dy.shape, dtype=dy.dtype)

        def mask(c0, c1):
            xp.multiply(dy[:, c0:c1], self._positive[:, c0:c1], out=dx[:, c0:c1])
        split_over_threads(mask, dy.shape[1], dy.nbytes, xp=xp)
        return dx
