"""Floating-point operations of a model's forward pass and training step, counted from its layer shapes.

One multiply-add counts as 2 FLOPs. Only the convolutions are counted: they are
the arithmetic of an FCN. ReLU, max pooling, crops, sums, dropout, the bias adds,
the softmax loss and the SGD update are left out (each is a few operations per
element, together well under 1% of a step). PyTorch's torch.utils.flop_counter
counts the same way, and the test suite checks the two agree.

These are the direct forms' FLOPs below, whatever the layers run: the same count
divides fcnlite's and PyTorch's times. (On the CPU fcnlite computes wide 3x3 layers in
Winograd's form, with 2.25x fewer multiplications; on both devices it computes a
transposed convolution as a convolution over its output phases; see conv2d.py and
conv_transpose2d.py.)

    Conv2d           x (N, Cin, H, W) -> y (N, Cout, H', W')
        forward      2 * N * Cin*kh*kw * Cout * H'*W'       y  = W @ im2col(x)
        backward dW  the same product                        dW = dy @ im2col(x).T
        backward dx  the same product                        dx = col2im(W.T @ dy)
    ConvTranspose2d  x (N, Cin, H, W) -> y (N, Cout, (H-1)*s + k, ...)
        forward      2 * N * Cin * Cout*k*k * H*W            y  = col2im(W.T @ x)
        backward dx  the same product                        dx = W @ im2col(dy)
        backward dW  the same, or 0 when the layer is frozen (the FCNs' fixed bilinear upsampling)

The input image needs no gradient in training, so the first convolution's dx is
not counted unless input_gradient=True (PyTorch skips it; fcnlite's model.backward
computes it unless that layer's input_grad is False). A layer with input_grad=False
has no dx counted either way.

How the layers connect (the skip branches of FCN-16s / 8s) is taken from the
model itself: count_flops runs the model's own forward with every layer's
forward swapped for a stub that only computes the output's shape, on zero-cost
stand-in arrays (a broadcast zero: one element, zero strides). So a new head
needs no new counting code, and nothing of the real forward's cost is paid.
"""
from dataclasses import dataclass

import numpy

from .layers import Conv2d, ConvTranspose2d, Crop, Dropout, MaxPool2d, ReLU, Scale, Sum


@dataclass
class LayerFlops:
    """FLOPs of one layer call: forward, and the two halves of its backward."""
    name: str
    kind: str
    input_shape: tuple
    output_shape: tuple
    forward: int = 0
    backward_input: int = 0      # dx
    backward_weights: int = 0    # dW

    @property
    def backward(self):
        return self.backward_input + self.backward_weights


class FlopCount:
    """Per-layer rows in forward order, and the totals: forward, backward, step = forward + backward."""

    def __init__(self, rows, input_shape):
        self.rows = rows
        self.input_shape = tuple(input_shape)

    @property
    def forward(self):
        return sum(row.forward for row in self.rows)

    @property
    def backward(self):
        return sum(row.backward for row in self.rows)

    @property
    def step(self):
        return self.forward + self.backward

    def as_dict(self):
        return {"input_shape": list(self.input_shape), "forward": self.forward, "backward": self.backward,
                "step": self.step,
                "layers": [{"name": row.name, "kind": row.kind, "input_shape": list(row.input_shape),
                            "output_shape": list(row.output_shape), "forward": row.forward,
                            "backward_input": row.backward_input, "backward_weights": row.backward_weights}
                           for row in self.rows]}

    def table(self, all_layers=False):
        """A text table in GFLOP; only the convolutions unless all_layers."""
        lines = [f"{'layer':<14} {'output shape':<22} {'forward':>9} {'dx':>9} {'dW':>9}   (GFLOP)"]
        for row in self.rows:
            if all_layers or row.forward or row.backward:
                lines.append(f"{row.name:<14} {'x'.join(map(str, row.output_shape)):<22} {row.forward / 1e9:9.3f} "
                             f"{row.backward_input / 1e9:9.3f} {row.backward_weights / 1e9:9.3f}")
        lines.append(f"{'total':<14} {'':<22} {self.forward / 1e9:9.3f} "
                     f"{sum(r.backward_input for r in self.rows) / 1e9:9.3f} "
                     f"{sum(r.backward_weights for r in self.rows) / 1e9:9.3f}")
        lines.append(f"training step (forward + backward): {self.step / 1e9:.3f} GFLOP")
        return "\n".join(lines)


def conv2d_flops(layer, input_shape, output_shape):
    """(forward, dx, dW) of a Conv2d: each is one product of W (Cout, Cin*kh*kw) with the patch matrix."""
    n, in_c = input_shape[:2]
    _, out_c, out_h, out_w = output_shape
    product = 2 * n * in_c * layer.kernel_h * layer.kernel_w * out_c * out_h * out_w
    return product, product, product


def conv_transpose2d_flops(layer, input_shape, output_shape):
    """(forward, dx, dW) of a ConvTranspose2d: each is one product of W.T (Cout*k*k, Cin) with x (Cin, H*W)."""
    n, in_c, h, w = input_shape
    product = 2 * n * in_c * layer.out_channels * layer.kernel * layer.kernel * h * w
    return product, product, 0 if layer.frozen else product


def _output_shape(name, layer, inputs):
    """The shape a layer's forward would return for inputs of these shapes."""
    first = inputs[0].shape
    if isinstance(layer, (Conv2d, ConvTranspose2d, MaxPool2d)):
        return tuple(layer.output_shape(first))
    if isinstance(layer, Crop):
        reference = inputs[1]
        h, w = (reference.shape if hasattr(reference, "shape") else reference)[2:]
        if layer.offset + h > first[2] or layer.offset + w > first[3]:
            raise ValueError(f"{name}: cannot cut {h}x{w} at offset {layer.offset} from {first[2]}x{first[3]}")
        return tuple(first[:2]) + (h, w)
    if isinstance(layer, Sum):
        if inputs[0].shape != inputs[1].shape:
            raise ValueError(f"{name}: shapes differ: {inputs[0].shape} and {inputs[1].shape}")
        return tuple(first)
    if isinstance(layer, (ReLU, Dropout, Scale)):
        return tuple(first)
    raise TypeError(f"count_flops: no shape rule for layer {name!r} of type {type(layer).__name__}; "
                    f"add one in fcnlite/flops.py")


def _stand_in(shape, dtype):
    """A read-only array of the given shape that holds one element: a shape without the memory."""
    return numpy.broadcast_to(numpy.zeros((), dtype=dtype), shape)


def count_flops(model, input_shape, input_gradient=False):
    """FlopCount of one forward pass and one training step of `model` on an input of input_shape (N, C, H, W).

    The model's own forward defines the order and the connections; each layer's
    forward is replaced, for the duration of the call, by a stub that records its
    FLOPs and returns a stand-in of the right shape. The layers' real forwards
    (and anything they keep for backward) are untouched.
    """
    dtype = getattr(model, "dtype", numpy.float32)
    image = _stand_in(tuple(input_shape), dtype)
    rows = []

    def stub(name, layer):
        def forward(*inputs):
            shape = _output_shape(name, layer, inputs)
            row = LayerFlops(name, type(layer).__name__, tuple(inputs[0].shape), shape)
            if isinstance(layer, (Conv2d, ConvTranspose2d)):
                counter = conv2d_flops if isinstance(layer, Conv2d) else conv_transpose2d_flops
                row.forward, row.backward_input, row.backward_weights = counter(layer, inputs[0].shape, shape)
                if (inputs[0] is image and not input_gradient) or not getattr(layer, "input_grad", True):
                    row.backward_input = 0  # the image needs no gradient; or the layer is told to skip dx
            rows.append(row)
            return _stand_in(shape, dtype)
        return forward

    saved = {name: layer.__dict__.get("forward") for name, layer in model.layers.items()}
    saved_features = model.__dict__.get("features")   # the encoder keeps pool3 / pool4 for the skips
    try:
        for name, layer in model.layers.items():
            layer.forward = stub(name, layer)
        model.forward(image)
    finally:
        for name, layer in model.layers.items():
            layer.__dict__.pop("forward", None)
            if saved[name] is not None:
                layer.forward = saved[name]
        if saved_features is not None:
            model.features = saved_features
        else:
            model.__dict__.pop("features", None)
    return FlopCount(rows, input_shape)
