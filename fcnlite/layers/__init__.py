"""fcnlite's layers: one file per kind, each with its forward and backward side by side.

The helpers they share: im2col.py (patch matrices), winograd.py (the CPU's form for wide 3x3
convolutions), cuda_kernels.py (the GPU kernels beside the NumPy code they replace)."""
from .base import Layer, grad_enabled, no_grad
from .conv2d import Conv2d
from .conv_transpose2d import ConvTranspose2d, bilinear_kernel
from .crop import Crop
from .dropout import Dropout
from .elementwise import Scale, Sum
from .maxpool2d import MaxPool2d
from .relu import ReLU
from .softmax_cross_entropy import SoftmaxCrossEntropy

__all__ = ["Layer", "no_grad", "grad_enabled", "Conv2d", "ConvTranspose2d", "bilinear_kernel", "Crop", "Dropout", "Scale", "Sum",
           "MaxPool2d", "ReLU", "SoftmaxCrossEntropy"]
