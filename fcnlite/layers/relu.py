"""ReLU: y = max(x, 0).

    x, y, dy, dx   (any shape, all the same)
    backward       dx = dy * [x > 0]
"""
from ..backend import array_module
from .base import Layer


class ReLU(Layer):
    def forward(self, x):
        self._positive = x > 0
        return array_module(x).maximum(x, 0, dtype=x.dtype)

    def backward(self, dy):
        return dy * self._positive
