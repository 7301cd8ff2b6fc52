"""What every fcnlite model shares: its layers by reference name, and the training API.

A model keeps an ordered dict `layers` whose keys are the reference nets'
layer names (conv1_1 ... fc7, score_fr, upscore2, ...). Parameters are named
"<layer>/W" and "<layer>/b", the names used in HDF5 weight files.

pack_parameters() (which the optimizer calls) moves every parameter into one flat
array and every gradient into another, the layers keeping views of them: the
update and zero_grad are then a few passes over flat slices, not one per
parameter (on the GPU each pass is a kernel launch, and launches set the pace
of a step with TF32 on; BENCHMARKS.md).
"""
from collections import namedtuple

import numpy

from .. import backend

# the parameters that share one (lr_mult, decay_mult) lie together: flat_values[start:stop]
ParameterGroup = namedtuple("ParameterGroup", "lr_mult decay_mult start stop")

# every packed parameter starts on a 256-byte boundary, as a fresh allocation would: cuBLAS
# and vectorized loads may take slower paths on operands that are not aligned
PARAMETER_ALIGNMENT_BYTES = 256


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
        # set by pack_parameters
        self.flat_values = self.flat_grads = None
        self.parameter_groups = self.parameter_offsets = self._packed_multipliers = None

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

    def pack_parameters(self):
        """Move the parameters into one flat array (flat_values) and their gradients into another
        (flat_grads), keeping their contents; layer.params and layer.grads then hold views of them.
        The parameters are ordered by group of multipliers, trained groups first, so that each
        group is one slice. Returns the groups [ParameterGroup]. Calling it again changes nothing
        unless the multipliers have changed since (a layer frozen or unfrozen): then it packs anew.

        Arrays taken from layer.params before packing are no longer the live ones afterwards."""
        multipliers = self.parameter_multipliers()
        if self.parameter_groups is not None and multipliers == self._packed_multipliers:
            return self.parameter_groups
        groups = {}   # (lr_mult, decay_mult) -> [(name, layer, key)], in layer order
        for layer_name, layer in self.layers.items():
            for key in layer.params:
                name = f"{layer_name}/{key}"
                groups.setdefault(multipliers[name], []).append((name, layer, key))
        groups = sorted(groups.items(), key=lambda item: item[0][0] == 0)   # stable: trained groups first
        members = [member for _, group in groups for member in group]
        if not members:
            return []
        first_name, first_layer, first_key = members[0]
        first = first_layer.params[first_key]
        xp, dtype = backend.array_module(first), first.dtype
        align = max(1, PARAMETER_ALIGNMENT_BYTES // dtype.itemsize)
        offsets, parameter_groups, end = {}, [], 0
        for (lr_mult, decay_mult), group in groups:
            start = end
            for name, layer, key in group:
                value = layer.params[key]
                if backend.array_module(value) is not xp or value.dtype != dtype:
                    raise ValueError(f"pack_parameters: {name} is a {type(value).__name__} of {value.dtype}, "
                                     f"{first_name} a {type(first).__name__} of {dtype}")
                offsets[name] = end
                end += -(-value.size // align) * align
            parameter_groups.append(ParameterGroup(lr_mult, decay_mult, start, end))
        # the gradients first, then the values: at most one old and one new set alive at once
        for kind in ("grads", "params"):
            flat = xp.zeros(end, dtype=dtype)
            for name, layer, key in members:
                arrays = getattr(layer, kind)
                view = flat[offsets[name]: offsets[name] + arrays[key].size].reshape(arrays[key].shape)
                view[...] = arrays[key]
                arrays[key] = view
            setattr(self, "flat_grads" if kind == "grads" else "flat_values", flat)
        self.parameter_groups, self.parameter_offsets = parameter_groups, offsets
        self._packed_multipliers = multipliers
        return parameter_groups

    def zero_grad(self):
        if self.flat_grads is not None:   # one fill (on the CPU over the host's threads)
            backend.split_flat(lambda part: part.fill(0), self.flat_grads)
            return
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

