"""fcnlite's layers: one file per kind, each with its forward and backward side by side."""
from .base import Layer
from .conv2d import Conv2d
from .conv_transpose2d import ConvTranspose2d, bilinear_kernel
from .crop import Crop
from .dropout import Dropout
from .elementwise import Scale, Sum
from .maxpool2d import MaxPool2d
from .relu import ReLU
from .softmax_cross_entropy import SoftmaxCrossEntropy

__all__ = ["Layer", "Conv2d", "ConvTranspose2d", "bilinear_kernel", "Crop", "Dropout", "Scale", "Sum",
           "MaxPool2d", "ReLU", "SoftmaxCrossEntropy"]
