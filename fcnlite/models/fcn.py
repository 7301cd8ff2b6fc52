"""The FCN decoders of Long, Shelhamer & Darrell (CVPR 2015), after the reference
Caffe nets (shelhamer/fcn.berkeleyvision.org, voc-fcn32s / 16s / 8s / 8s-atonce).

Scores are predicted by 1x1 convolutions at 1/32 (score_fr, from fc7), 1/16
(score_pool4) and 1/8 (score_pool3), upsampled by transposed convolutions
initialised to bilinear interpolation, fused by summation, and cropped back to
the input's size. The crop offsets undo conv1_1's 100-pixel padding and the
kernels' half-widths; they are the reference's.

    FCN-32s  fc7 -> score_fr -> upscore (64x64, /32) -> crop 19                     -> score
    FCN-16s  fc7 -> score_fr -> upscore2 (4x4, /2)    (+ crop 5 of score_pool4)
                 -> upscore16 (32x32, /16) -> crop 27                               -> score
    FCN-8s   fc7 -> score_fr -> upscore2 (4x4, /2)    (+ crop 5 of score_pool4)
                 -> upscore_pool4 (4x4, /2)           (+ crop 9 of score_pool3)
                 -> upscore8 (16x16, /8) -> crop 31                                 -> score

The score layers start at zero and the upsampling layers stay fixed at bilinear
interpolation (frozen), as in the reference; learnable_upsampling=True trains them.
"""
import numbers

import numpy

from ..layers import Conv2d, ConvTranspose2d, Crop, Scale, Sum
from .vgg16 import FCN_CONV1_PADDING, VGG16
from .base import channels


class _FCN(VGG16):
    """Shared by the three heads: the VGG16 encoder plus helpers to build score / upscore layers."""

    def __init__(self, n_classes=21, width=1.0, learnable_upsampling=False, dtype=numpy.float32):
        # VGG16 without its fc8 classifier; from here on n_classes counts the score layers' classes
        # (the heads' forward replaces VGG16's, which would run fc8 when n_classes is set)
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
            # one class would give a loss of 0 everywhere: the softmax of one score is 1
            raise ValueError(f"n_classes is {n_classes!r}: an FCN scores a whole number of classes, at least 2 "
                             f"(one class against the rest is 2: background and it; masks of only 0 and 255 "
                             f"count 1, as 255 means 'ignore' unless a class map names it)")
        super().__init__(width=width, conv1_padding=FCN_CONV1_PADDING, n_classes=None, dtype=dtype)
        self.n_classes = int(n_classes)
        self.learnable_upsampling = learnable_upsampling

    def config(self):
        config = {"architecture": self.architecture, "width": self.width, "n_classes": self.n_classes}
        if self.learnable_upsampling:   # (files without it, the reference's recipe, have frozen upscore layers)
            config["learnable_upsampling"] = True
        return config

    def _score(self, name, in_channels):
        layer = self.add(name, Conv2d(in_channels, self.n_classes, 1, dtype=self.dtype))
        for value in layer.params.values():
            value.fill(0)  # the reference starts every score layer at zero
        return layer

    def _upscore(self, name, kernel, stride):
        layer = ConvTranspose2d(self.n_classes, self.n_classes, kernel, stride, bias=False, dtype=self.dtype)
        layer.init_bilinear()
        layer.frozen = not self.learnable_upsampling
        return self.add(name, layer)

    def backward(self, dscores):
        raise NotImplementedError


class FCN32s(_FCN):
    architecture = "fcn32s"

    def __init__(self, n_classes=21, width=1.0, learnable_upsampling=False, dtype=numpy.float32):
        super().__init__(n_classes, width, learnable_upsampling, dtype)
        self._score("score_fr", channels(4096, width))
        self._upscore("upscore", 64, 32)
        self.add("score", Crop(19, dtype=dtype))

    def forward(self, x):
        fc7 = self.encode(x)
        score_fr = self.layers["score_fr"].forward(fc7)              # 1/32
        upscore = self.layers["upscore"].forward(score_fr)           # 1/1, with margins
        return self.layers["score"].forward(upscore, x)

    def backward(self, dscores):
        dupscore = self.layers["score"].backward(dscores)
        dscore_fr = self.layers["upscore"].backward(dupscore)
        dfc7 = self.layers["score_fr"].backward(dscore_fr)
        return self.encode_backward(dfc7)


class FCN16s(_FCN):
    architecture = "fcn16s"

    def __init__(self, n_classes=21, width=1.0, learnable_upsampling=False, dtype=numpy.float32):
        super().__init__(n_classes, width, learnable_upsampling, dtype)
        self._score("score_fr", channels(4096, width))
        self._upscore("upscore2", 4, 2)
        self._score("score_pool4", channels(512, width))
        self.add("score_pool4c", Crop(5, dtype=dtype))
        self.add("fuse_pool4", Sum(dtype=dtype))
        self._upscore("upscore16", 32, 16)
        self.add("score", Crop(27, dtype=dtype))

    def forward(self, x):
        layers = self.layers
        fc7 = self.encode(x)
        upscore2 = layers["upscore2"].forward(layers["score_fr"].forward(fc7))                  # 1/16
        score_pool4 = layers["score_pool4"].forward(self.features["pool4"])
        fuse_pool4 = layers["fuse_pool4"].forward(upscore2, layers["score_pool4c"].forward(score_pool4, upscore2))
        upscore16 = layers["upscore16"].forward(fuse_pool4)                                    # 1/1
        return layers["score"].forward(upscore16, x)

    def backward(self, dscores):
        layers = self.layers
        dfuse_pool4 = layers["upscore16"].backward(layers["score"].backward(dscores))
        dupscore2, dscore_pool4c = layers["fuse_pool4"].backward(dfuse_pool4)
        dpool4 = layers["score_pool4"].backward(layers["score_pool4c"].backward(dscore_pool4c))
        dfc7 = layers["score_fr"].backward(layers["upscore2"].backward(dupscore2))
        return self.encode_backward(dfc7, dpool4=dpool4)


class FCN8s(_FCN):
    """FCN-8s. at_once=True is voc-fcn8s-atonce: pool4 and pool3 are scaled by 0.01 and
    0.0001 before their score layers, so that all skips can be trained together from VGG16."""

    def __init__(self, n_classes=21, width=1.0, at_once=False, learnable_upsampling=False, dtype=numpy.float32):
        super().__init__(n_classes, width, learnable_upsampling, dtype)
        self.at_once = at_once
        self._score("score_fr", channels(4096, width))
        self._upscore("upscore2", 4, 2)
        if at_once:
            self.add("scale_pool4", Scale(0.01, dtype=dtype))
        self._score("score_pool4", channels(512, width))
        self.add("score_pool4c", Crop(5, dtype=dtype))
        self.add("fuse_pool4", Sum(dtype=dtype))
        self._upscore("upscore_pool4", 4, 2)
        if at_once:
            self.add("scale_pool3", Scale(0.0001, dtype=dtype))
        self._score("score_pool3", channels(256, width))
        self.add("score_pool3c", Crop(9, dtype=dtype))
        self.add("fuse_pool3", Sum(dtype=dtype))
        self._upscore("upscore8", 16, 8)
        self.add("score", Crop(31, dtype=dtype))

    @property
    def architecture(self):
        return "fcn8s-atonce" if self.at_once else "fcn8s"

    def _skip(self, name, pool):
        """pool -> (scale, at once) -> score_<name>"""
        if self.at_once:
            pool = self.layers[f"scale_{name}"].forward(pool)
        return self.layers[f"score_{name}"].forward(pool)

    def _skip_backward(self, name, dscore):
        dpool = self.layers[f"score_{name}"].backward(dscore)
        if self.at_once:
            dpool = self.layers[f"scale_{name}"].backward(dpool)
        return dpool

    def forward(self, x):
        layers = self.layers
        fc7 = self.encode(x)
        upscore2 = layers["upscore2"].forward(layers["score_fr"].forward(fc7))                  # 1/16
        score_pool4c = layers["score_pool4c"].forward(self._skip("pool4", self.features["pool4"]), upscore2)
        upscore_pool4 = layers["upscore_pool4"].forward(layers["fuse_pool4"].forward(upscore2, score_pool4c))  # 1/8
        score_pool3c = layers["score_pool3c"].forward(self._skip("pool3", self.features["pool3"]), upscore_pool4)
        upscore8 = layers["upscore8"].forward(layers["fuse_pool3"].forward(upscore_pool4, score_pool3c))       # 1/1
        return layers["score"].forward(upscore8, x)

    def backward(self, dscores):
        layers = self.layers
        dfuse_pool3 = layers["upscore8"].backward(layers["score"].backward(dscores))
        dupscore_pool4, dscore_pool3c = layers["fuse_pool3"].backward(dfuse_pool3)
        dpool3 = self._skip_backward("pool3", layers["score_pool3c"].backward(dscore_pool3c))
        dfuse_pool4 = layers["upscore_pool4"].backward(dupscore_pool4)
        dupscore2, dscore_pool4c = layers["fuse_pool4"].backward(dfuse_pool4)
        dpool4 = self._skip_backward("pool4", layers["score_pool4c"].backward(dscore_pool4c))
        dfc7 = layers["score_fr"].backward(layers["upscore2"].backward(dupscore2))
        return self.encode_backward(dfc7, dpool4=dpool4, dpool3=dpool3)


ARCHITECTURES = {"fcn32s": FCN32s, "fcn16s": FCN16s, "fcn8s": FCN8s, "vgg16": VGG16}
# the FCNs build_model makes, by the names weight files and the programs' --model give them
FCN_ARCHITECTURES = ("fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce")


def build_model(architecture, n_classes=21, width=1.0, dtype=numpy.float32, **kwargs):
    """Build a model by name: "fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce" or "vgg16"."""
    architecture = architecture.lower()
    if architecture == "fcn8s-atonce":
        return FCN8s(n_classes=n_classes, width=width, at_once=True, dtype=dtype, **kwargs)
    if architecture == "vgg16":
        return VGG16(width=width, n_classes=n_classes or None, dtype=dtype, **kwargs)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: use fcn32s, fcn16s, fcn8s, fcn8s-atonce or vgg16")
    return ARCHITECTURES[architecture](n_classes=n_classes, width=width, dtype=dtype, **kwargs)
