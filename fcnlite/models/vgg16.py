"""VGG16 as the FCN encoder: thirteen 3x3 convolutions in five blocks, each block
ending in a 2x2 max pooling, then the classifier "convolutionalized":

    layer      kernel  channels (width=1)   resolution of the padded input
    conv1_x    3x3     64                   1
    pool1      2x2/2                        1/2
    conv2_x    3x3     128
    pool2                                   1/4
    conv3_x    3x3     256
    pool3                                   1/8     <- skip to FCN-8s
    conv4_x    3x3     512
    pool4                                   1/16    <- skip to FCN-16s / 8s
    conv5_x    3x3     512
    pool5                                   1/32
    fc6        7x7     4096                 (ReLU, dropout)
    fc7        1x1     4096                 (ReLU, dropout)

conv1_1 pads by 100 (reference FCN): every input size, down to 1x1, then survives
the five poolings and fc6's 7x7 window. The other 3x3 convolutions pad by 1.
"""
import numpy

from ..layers import Conv2d, Dropout, MaxPool2d, ReLU
from .base import Model, channels, check_input, check_width

BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
FCN_CONV1_PADDING = 100   # (reference FCN) so that any input size survives five 2x poolings and fc6's 7x7


class VGG16(Model):
    """The encoder alone. forward(x) returns fc7's activations (N, 4096*width, h, w).

    conv1_padding=100 as the reference FCN; use 1 for the original VGG16 on 224x224.
    n_classes=1000 adds fc8 (a 1x1 convolution) for ImageNet classification checks.
    """
    architecture = "vgg16"

    def __init__(self, width=1.0, conv1_padding=FCN_CONV1_PADDING, n_classes=None, dtype=numpy.float32):
        super().__init__(dtype)
        check_width(width)
        self.width = width
        self.conv1_padding = conv1_padding
        self.n_classes = n_classes
        self._build_encoder(width, conv1_padding, dtype)
        if n_classes:
            self.add("fc8", Conv2d(channels(4096, width), n_classes, 1, dtype=dtype))

    def _build_encoder(self, width, conv1_padding, dtype):
        in_channels = 3
        for block, (count, repeats) in enumerate(BLOCKS, start=1):
            out_channels = channels(count, width)
            for index in range(1, repeats + 1):
                padding = conv1_padding if (block, index) == (1, 1) else 1
                self.add(f"conv{block}_{index}", Conv2d(in_channels, out_channels, 3, padding=padding, dtype=dtype))
                self.add(f"relu{block}_{index}", ReLU(inplace=True, dtype=dtype))
                in_channels = out_channels
            self.add(f"pool{block}", MaxPool2d(2, 2, ceil_mode=True, dtype=dtype))
        fc_channels = channels(4096, width)
        self.add("fc6", Conv2d(in_channels, fc_channels, 7, dtype=dtype))
        self.add("relu6", ReLU(inplace=True, dtype=dtype))
        self.add("drop6", Dropout(0.5, dtype=dtype))
        self.add("fc7", Conv2d(fc_channels, fc_channels, 1, dtype=dtype))
        self.add("relu7", ReLU(inplace=True, dtype=dtype))
        self.add("drop7", Dropout(0.5, dtype=dtype))
        self.encoder_names = [name for name in self.layers]

    def config(self):
        config = {"architecture": self.architecture, "width": self.width, "n_classes": self.n_classes or 0}
        if self.conv1_padding != FCN_CONV1_PADDING:   # (files without it, the converters', are the FCN encoder's)
            config["conv1_padding"] = self.conv1_padding
        return config

    def set_input_grad(self, enabled):
        """Whether backward returns the gradient for the input image (training does not need it)."""
        self.layers["conv1_1"].input_grad = enabled

    def encode(self, x):
        """Run conv1_1 ... drop7; returns fc7's output and keeps pool3 / pool4 in self.features."""
        self.features = {}
        x = check_input(x, self.dtype)
        for name in self.encoder_names:
            x = self.layers[name].forward(x)
            if name in ("pool3", "pool4"):
                self.features[name] = x
        return x

    def encode_backward(self, dfc7, dpool4=None, dpool3=None):
        """Backward through drop7 ... conv1_1, adding the skip gradients at pool4 / pool3."""
        grad = dfc7
        for name in reversed(self.encoder_names):
            if name == "pool4" and dpool4 is not None:
                grad = grad + dpool4
            if name == "pool3" and dpool3 is not None:
                grad = grad + dpool3
            grad = self.layers[name].backward(grad)
        return grad

    def forward(self, x):
        x = self.encode(x)
        if self.n_classes:
            x = self.layers["fc8"].forward(x)
        return x

    def backward(self, dout):
        if self.n_classes:
            dout = self.layers["fc8"].backward(dout)
        return self.encode_backward(dout)
