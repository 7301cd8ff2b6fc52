"""Element-wise layers of the skip architecture.

Sum (the "fuse" layers, Caffe's Eltwise SUM):
    a, b       same shape
    y          a + b
    backward   da = db = dy

Scale (FCN-8s all-at-once: pool4 * 0.01, pool3 * 0.0001 before their score layers):
    y          factor * x
    backward   dx = factor * dy
"""
from .base import Layer


class Sum(Layer):
    def forward(self, a, b):
        if a.shape != b.shape:
            raise ValueError(f"Sum: shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
        return a + b

    def backward(self, dy):
        return dy, dy   # the same array twice: whoever receives them must not change one in place


class Scale(Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def forward(self, x):
        return x * x.dtype.type(self.factor)

    def backward(self, dy):
        return dy * dy.dtype.type(self.factor)
