"""fcnlite: Fully Convolutional Networks for semantic segmentation, from scratch on NumPy / CuPy.

    import fcnlite
    model = fcnlite.FCN8s(n_classes=21, width=1.0)
    fcnlite.load_weights(model, "weights/vgg16.h5")    # encoder from converted VGG16
    optimizer = fcnlite.SGD(model, lr=1e-4)
"""
import os

# OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s) after each matrix product,
# holding the core that the next copy or element-wise pass wants for its second thread
# (backend.split_over_threads); 2^4 cycles lets them sleep at once. OpenBLAS reads this
# when it loads, so it takes effect only where fcnlite is imported before NumPy.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import backend, data, evaluate, layers, metrics, visualize  # noqa: E402
from .io import WeightsError, load_weights, model_from_file, save_weights
from .models import FCN8s, FCN16s, FCN32s, VGG16, build_model
from .optim import SGD
from .train import TrainConfig, Trainer

__version__ = "0.1.0"
__all__ = ["backend", "data", "evaluate", "layers", "metrics", "visualize", "VGG16", "FCN32s", "FCN16s", "FCN8s", "build_model", "SGD",
           "save_weights", "load_weights", "model_from_file", "WeightsError", "Trainer", "TrainConfig"]
