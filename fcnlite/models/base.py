"""What every fcnlite model shares: its layers by reference name, and the training API.

A model keeps an ordered dict `layers` whose keys are the reference nets'
layer names (conv1_1 ... fc7, score_fr, upscore2, ...). Parameters are named
"<layer>/W" and "<layer>/b", the names used in HDF5 weight files.
"""
import numpy


# How inputs must be prepared for a model (written into weight files): the original
# Caffe VGG16 was trained on BGR pixels in 0..255 with the ImageNet mean subtracted.
CAFFE_PREPROCESSING = {
    "channel_order": "BGR",
    "input_scale": 1.0,
    "mean": (104.00698793, 116.66876762, 122.67891434),
    "std": (1.0, 1.0, 1.0),
}


class Model:
    architecture = "model"

    def __init__(self, dtype=numpy.float32):
        self.dtype = numpy.dtype(dtype)
        self.layers = {}
        self.training = True
        self.preprocessing = dict(CAFFE_PREPROCESSING)
        self.class_names = None

    def add(self, name, layer):
        self.layers[name] = layer
        return layer

    def named_parameters(self):
        """Yield (name, value, grad) for every parameter: the live arrays, not copies."""
        for layer_name, layer in self.layers.items():
            for key, value in layer.params.items():
                yield f"{layer_name}/{key}", value, layer.grads[key]

    def parameter_multipliers(self):
        """{name: (lr_mult, decay_mult)}: the reference's weights x1 with decay, biases x2 without."""
        multipliers = {}
        for layer_name, layer in self.layers.items():
            for key in layer.params:
                if getattr(layer, "frozen", False):
                    multipliers[f"{layer_name}/{key}"] = (0.0, 0.0)
                elif key == "b":
                    multipliers[f"{layer_name}/{key}"] = (2.0, 0.0)
                else:
                    multipliers[f"{layer_name}/{key}"] = (1.0, 1.0)
        return multipliers

    def zero_grad(self):
        for layer in self.layers.values():
            layer.zero_grad()

    def train(self):
        self.training = True
        for layer in self.layers.values():
            layer.train()
        return self

    def eval(self):
        self.training = False
        for layer in self.layers.values():
            layer.eval()
        return self

    def parameter_count(self):
        return sum(int(value.size) for _, value, _ in self.named_parameters())

    def config(self):
        """The arguments that rebuild this model (written into weight files)."""
        return {"architecture": self.architecture}

    def predict(self, x):
        """Label map (N, H, W): the arg-max class of every pixel, computed in eval mode."""
        from ..layers.base import no_grad
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                scores = self.forward(x)
        finally:
            if was_training:
                self.train()
        return scores.argmax(axis=1)

    def __call__(self, x):
        return self.forward(x)


def channels(count, width):
    """A channel count scaled by `width` (at least 1)."""
    return max(1, int(round(count * width)))

