"""The small contract every layer keeps.

    forward(x) -> y              remembers what backward needs
    backward(dy) -> dx           ADDS dL/dparam into grads (accumulation across calls)
    params / grads               dicts with the same keys ("W", "b") and shapes
    zero_grad()                  set every gradient to 0
    train() / eval()             for layers that differ between the two (dropout)

Sum and Crop take a second input (Sum.backward returns one gradient per input); the loss
is forward(scores, labels) -> scalar, backward(dloss=1) -> dscores. What forward keeps for
backward starts as None, and backward reads it through kept(), which says so when it is missing;
check_gradient refuses a gradient of another shape than forward's output.
"""
import contextlib

import numpy

from .. import backend

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside this block Conv2d, ConvTranspose2d, ReLU and MaxPool2d keep nothing for backward
    (as torch.no_grad): inference then needs less memory, and the CPU skips max pooling's arg-max
    bookkeeping. The loss still keeps its probabilities (validation reads the loss), and a
    Dropout in training mode its mask."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def grad_enabled():
    return _grad_enabled


class Layer:
    def __init__(self, dtype=numpy.float32):
        self.dtype = numpy.dtype(dtype)
        self.params = {}
        self.grads = {}
        self.training = True

    def add_param(self, key, value):
        """Register a parameter (host array) on the chosen device, with a zero gradient beside it.
        Parameters are C-contiguous, so that reshaping them makes views. A model may later move
        them into one flat array (Model.pack_parameters): always reach them through self.params."""
        value = backend.to_device(numpy.ascontiguousarray(value, dtype=self.dtype))
        self.params[key] = value
        self.grads[key] = backend.array_module(value).zeros_like(value)

    def zero_grad(self):
        for grad in self.grads.values():
            backend.zero(grad)

    def check_batch(self, x, what="input"):
        """A clear error where x is not a batch of maps (N, C, H, W): one image's (C, H, W) would otherwise
        fail in an unpacking of its shape, in words that do not say which array."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: {what} {tuple(x.shape)} should be (N, C, H, W), a batch "
                             f"(for one image, add the batch axis: array[None])")

    def check_channels(self, x, expected):
        """A clear error where x (N, C, H, W) has another channel count than the layer takes, or is not of
        floats: the matrix products of integers failed in NumPy's words ("Cannot cast ufunc 'matmul' output")."""
        if x.ndim != 4 or x.shape[1] != expected:
            raise ValueError(f"{type(self).__name__}: input {tuple(x.shape)} should be (N, {expected}, H, W): "
                             f"the layer takes {expected} channels")
        if x.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: input is {x.dtype}: the layer takes floats (an image of 0..255 "
                            f"goes through fcnlite.data.preprocess first)")

    def check_gradient(self, dy, output_shape):
        """A clear error where dy, the gradient backward was given, is not of the shape of the last forward's
        output: NumPy would broadcast it, and the products read it as another size, into wrong gradients
        without a word."""
        if tuple(dy.shape) != tuple(output_shape):
            raise ValueError(f"{type(self).__name__}.backward: the gradient has shape {tuple(dy.shape)}, the output "
                             f"of the last forward {tuple(output_shape)}: backward takes the gradient of that output "
                             f"(has a forward on other inputs run since?)")

    keeps_under_no_grad = False   # True for the layers whose forward keeps what backward needs even there

    def kept(self, value):
        """What forward kept for backward, or a clear error where it kept nothing (value None): forward
        has not run, or ran under no_grad."""
        if value is None:
            cause, fix = "it has not run", "run forward first"
            if not self.keeps_under_no_grad:
                cause, fix = "it has not run, or ran under no_grad", "run forward outside no_grad first"
            raise RuntimeError(f"{type(self).__name__}.backward: its forward kept nothing for backward "
                               f"({cause}): {fix}")
        return value

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def __call__(self, *args):
        return self.forward(*args)

    def __repr__(self):
        shapes = ", ".join(f"{key}={tuple(value.shape)}" for key, value in self.params.items())
        return f"{type(self).__name__}({shapes})"
