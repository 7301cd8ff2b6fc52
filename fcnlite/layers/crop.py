"""Crop: cut a window the size of a reference out of x, at a fixed offset (Caffe's Crop layer, axis=2).

    x          (N, C, H, W)
    reference  (.., .., h, w) an array or a shape, with h <= H - offset, w <= W - offset
    y          (N, C, h, w) = x[:, :, offset:offset+h, offset:offset+w]
    backward   dx = dy placed back at the same window, zeros elsewhere; dy must be y's shape

The FCN heads use it to align an upsampled score map with a skip layer or the
input; the offsets are the reference nets' (they undo conv1's 100-pixel padding).
"""
import numbers

from ..backend import array_module
from .base import Layer


class Crop(Layer):
    keeps_under_no_grad = True   # what it keeps is small (see no_grad)

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        if isinstance(offset, bool) or not isinstance(offset, numbers.Integral) or offset < 0:
            # a negative offset slices from the far end: an empty (or misplaced) window, without a word
            raise ValueError(f"Crop: offset is {offset!r}: give the window's offset in pixels, a whole number 0 or more")
        self.offset = int(offset)
        self._input_shape = self._output_shape = None   # kept for backward

    def forward(self, x, reference):
        self.check_batch(x)
        h, w = (reference.shape if hasattr(reference, "shape") else reference)[2:]
        o = self.offset
        if o + h > x.shape[2] or o + w > x.shape[3]:
            raise ValueError(f"Crop: cannot cut {h}x{w} at offset {o} from {x.shape[2]}x{x.shape[3]}")
        self._input_shape = x.shape
        self._output_shape = (*x.shape[:2], h, w)
        return x[:, :, o:o + h, o:o + w]

    def backward(self, dy):
        input_shape = self.kept(self._input_shape)
        self.check_gradient(dy, self._output_shape)   # (a network's last layer: dy is the user's dscores)
        dx = array_module(dy).zeros(input_shape, dtype=dy.dtype)
        h, w = dy.shape[2:]
        o = self.offset
        dx[:, :, o:o + h, o:o + w] = dy
        return dx
