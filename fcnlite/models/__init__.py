from .base import CAFFE_PREPROCESSING, Model
from .fcn import FCN_ARCHITECTURES, FCN8s, FCN16s, FCN32s, build_model
from .vgg16 import VGG16

__all__ = ["Model", "VGG16", "FCN32s", "FCN16s", "FCN8s", "FCN_ARCHITECTURES", "build_model", "CAFFE_PREPROCESSING"]
