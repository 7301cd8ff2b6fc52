"""ReLU: y = max(x, 0).

    x, y, dy, dx   (any shape, all the same)
    backward       dx = dy * [x > 0]

inplace=True overwrites x with y (the networks use it: a convolution's output has
no other reader, and not allocating y saves one activation-sized array per layer).
"""
import numpy

from ..backend import array_module
from .base import Layer, grad_enabled


class ReLU(Layer):
    def __init__(self, inplace=False, dtype=numpy.float32):
        super().__init__(dtype)
        self.inplace = inplace

    def forward(self, x):
        self._positive = x > 0 if grad_enabled() else None
        return array_module(x).maximum(x, 0, dtype=x.dtype, out=x if self.inplace else None)

    def backward(self, dy):
        return dy * self._positive
