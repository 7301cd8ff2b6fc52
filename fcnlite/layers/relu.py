"""ReLU: y = max(x, 0).

    x, y, dy, dx   any shape, all the same (on the CPU split over channels, axis 1)
    backward       dx = dy * [x > 0]

inplace=True overwrites x with y (the networks use it: a convolution's output has
no other reader, and not allocating y saves one activation-sized array per layer).
"""
import numpy

from ..backend import array_module, split_channels
from .base import Layer, grad_enabled


class ReLU(Layer):
    def __init__(self, inplace=False, dtype=numpy.float32):
        super().__init__(dtype)
        self.inplace = inplace
        self._positive = None   # forward's mask x > 0, kept for backward

    def forward(self, x):
        xp = array_module(x)
        y = x if self.inplace else xp.empty_like(x)
        positive = xp.empty(x.shape, dtype=bool) if grad_enabled() else None

        def relu(x, positive, y):   # on the CPU a block of channels: mask and max while it is in cache
            if positive is not None:
                xp.greater(x, 0, out=positive)
            xp.maximum(x, 0, out=y)
        split_channels(relu, x, positive, y, blocked=True)
        self._positive = positive
        return y

    def backward(self, dy):
        positive = self.kept(self._positive)
        self.check_gradient(dy, positive.shape)
        xp = array_module(dy)
        dx = xp.empty(dy.shape, dtype=dy.dtype)

        def mask(dy, positive, dx):
            xp.multiply(dy, positive, out=dx)
        split_channels(mask, dy, positive, dx)
        return dx
