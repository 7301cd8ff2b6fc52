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
import math
import numbers
from collections import namedtuple

import numpy

from .. import backend

# the parameters that share one (lr_mult, decay_mult) lie together: flat_values[start:stop]
ParameterGroup = namedtuple("ParameterGroup", "lr_mult decay_mult start stop")

# every packed parameter starts 256 bytes (or a multiple) after the flat array's start, so on the
# GPU (CuPy's allocations start on 512-byte boundaries) it is 256-byte aligned, what cudaMalloc
# guarantees: cuBLAS and vectorized loads may take slower paths on operands that are not
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
        self.class_colors = None   # [r, g, b] per class where the data has its own (a colour table), for pictures
        # set by pack_parameters
        self.flat_values = self.flat_grads = None
        self.parameter_groups = self.parameter_offsets = self._packed_views = None

    def add(self, name, layer):
        self.layers[name] = layer
        return layer

    def named_parameters(self):
        """Yield (name, value, grad) for every parameter: the live arrays, not copies."""
        for layer_name, layer in self.layers.items():
            for key, value in layer.params.items():
                yield f"{layer_name}/{key}", value, layer.grads[key]

    def parameter_multipliers(self):
        """{name: (lr_mult, decay_mult)}: the reference's weights x1 with decay, biases x2 without,
        frozen layers' parameters (0, 0)."""
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
        group is one slice. Returns the groups [ParameterGroup].

        Calling it again changes nothing, unless the multipliers have changed (a layer frozen or
        unfrozen, a layer added) or an array is no longer the view packing made (a layer's array
        replaced): then it packs anew. An optimizer made before such a change refuses to step,
        packed anew or not (packing_intact). Layers write their parameters in place
        (value[...] = ...), which keeps the views."""
        if self.packing_intact():
            return self.parameter_groups
        multipliers = self.parameter_multipliers()
        members, groups, offsets, size = self._packed_layout(multipliers)
        if not members:
            return []
        # peak: the old parameters and gradients, and one new flat array beside them
        places = [offsets[name] for name, _, _ in members]
        self.flat_grads = _move_into_flat([(layer.grads, key) for _, layer, key in members], places, size)
        self.flat_values = _move_into_flat([(layer.params, key) for _, layer, key in members], places, size)
        self.parameter_groups, self.parameter_offsets = groups, offsets
        # what packing_intact compares: each parameter's layer, its frozen flag and its two views
        self._packed_views = [(name.split("/")[0], layer, getattr(layer, "frozen", False), key, layer.params[key],
                               layer.grads[key]) for name, layer, key in members]
        return groups

    def packing_intact(self):
        """Whether the parameters are as pack_parameters left them: the same layers, none frozen or
        unfrozen since, none added, and every parameter and gradient the very view packing made
        (none replaced). About 10 microseconds at FCN-8s: SGD asks before each step."""
        if self._packed_views is None:
            return False
        layers = self.layers
        for layer_name, layer, frozen, key, value, grad in self._packed_views:
            if (layers.get(layer_name) is not layer or getattr(layer, "frozen", False) != frozen
                    or layer.params.get(key) is not value or layer.grads.get(key) is not grad):
                return False
        return len(self._packed_views) == sum(len(layer.params) for layer in layers.values())   # none added

    def _packed_layout(self, multipliers):
        """Where each parameter goes: ([(name, layer, key)] in flat order, [ParameterGroup], {name: offset},
        the flat arrays' size)."""
        by_group = {}   # (lr_mult, decay_mult) -> [(name, layer, key)], in layer order
        for layer_name, layer in self.layers.items():
            for key in layer.params:
                name = f"{layer_name}/{key}"
                by_group.setdefault(multipliers[name], []).append((name, layer, key))
        members, groups, offsets, end = [], [], {}, 0
        for (lr_mult, decay_mult), group in sorted(by_group.items(), key=lambda item: item[0][0] == 0):
            start = end   # (the sort is stable: trained groups first, each in layer order)
            for name, layer, key in group:
                value = layer.params[key]
                if members:
                    _check_same_kind(name, value, members[0])
                members.append((name, layer, key))
                offsets[name] = end
                align = max(1, PARAMETER_ALIGNMENT_BYTES // value.itemsize)
                end += -(-value.size // align) * align   # the size rounded up to a multiple of align
            groups.append(ParameterGroup(lr_mult, decay_mult, start, end))
        return members, groups, offsets, end

    def zero_grad(self):
        if self.flat_grads is not None:   # one fill
            backend.zero(self.flat_grads)
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

    def predict_scores(self, x):
        """Scores (N, n_classes, H, W) computed in eval mode (no dropout), keeping nothing for backward."""
        from ..layers.base import no_grad
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                return self.forward(x)
        finally:
            if was_training:
                self.train()

    def predict(self, x):
        """Label map (N, H, W): the arg-max class of every pixel, computed in eval mode."""
        return self.predict_scores(x).argmax(axis=1)

    def __call__(self, x):
        return self.forward(x)


def _check_same_kind(name, value, first_member):
    first_name, first_layer, first_key = first_member
    first = first_layer.params[first_key]
    if backend.is_gpu_array(value) != backend.is_gpu_array(first) or value.dtype != first.dtype:
        def kind(array):
            return f"{array.dtype} {'CuPy' if backend.is_gpu_array(array) else 'NumPy'} array"
        raise ValueError(f"pack_parameters: {name} is a {kind(value)}, {first_name} a {kind(first)}: "
                         f"a model's parameters share one dtype and device")


def _move_into_flat(slots, places, size):
    """A flat array of `size` zeros. slots: [(dict, key)], where each array lives; each array is
    copied into the flat array at its place, and replaced in its dict by that view."""
    first_dict, first_key = slots[0]
    flat = backend.array_module(first_dict[first_key]).zeros(size, dtype=first_dict[first_key].dtype)
    for (array_dict, key), offset in zip(slots, places):
        array = array_dict[key]
        view = flat[offset: offset + array.size].reshape(array.shape)
        view[...] = array
        array_dict[key] = view
    return flat


def check_width(width):
    """ValueError unless width, the channel multiplier, is a finite number above 0."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not (math.isfinite(width) and width > 0):
        raise ValueError(f"width is {width!r}: it must be a number above 0 (1.0: VGG16's channels)")


def check_input(x, dtype):
    """The network's input x as an array of `dtype` (a float input of another precision converted); TypeError
    for anything else than a float array: an image of 0..255 integers goes through preprocess first."""
    if not hasattr(x, "dtype") or not hasattr(x, "ndim"):
        raise TypeError(f"input is a {type(x).__name__}: give a NumPy or CuPy array (N, 3, H, W)")
    if x.dtype.kind != "f":
        raise TypeError(f"input is {x.dtype}: the network takes floats, an image as model.preprocessing "
                        f"prepares it (fcnlite.data.preprocess, or model_input for one image)")
    return x.astype(dtype, copy=False)


def channels(count, width):
    """A channel count scaled by `width` (at least 1)."""
    return max(1, int(round(count * width)))

