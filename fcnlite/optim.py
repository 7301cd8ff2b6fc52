"""SGD with momentum and weight decay, as Caffe's solver runs it:

    g  = dL/dw + weight_decay * decay_mult * w
    v  = momentum * v - lr * lr_mult * g
    w += v

(Caffe's solver keeps h = -v in its history and applies w -= h: the same steps, the
history's sign flipped.)
lr_mult / decay_mult come from the model (weights x1 with decay, biases x2
without, frozen upsampling x0), as in the reference FCN nets. The optimizer
packs the model's parameters (Model.pack_parameters): the parameters of one
group of multipliers are then one flat slice, and the update runs once per
group (twice for an FCN) rather than once per parameter (32 to 36). The
momentum buffers, by parameter name, and the hyperparameters (lr, momentum,
weight decay) are the optimizer's state: state_dict() / load_state_dict() move
them in and out of checkpoints.
"""
import math
import numbers

import numpy

from . import backend


class SGD:
    def __init__(self, model, lr, momentum=0.99, weight_decay=5e-4):
        check_hyperparameters("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.model = model
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        # one pass per group over flat slices, not one per parameter (Model.pack_parameters)
        self.groups = [group for group in model.pack_parameters() if group.lr_mult != 0]
        trained = self.groups[-1].stop if self.groups else 0   # the trained groups come first
        self._flat_values, self.flat_velocity = model.flat_values, None
        if model.flat_values is not None:
            self.flat_velocity = backend.array_module(model.flat_values).zeros(trained, dtype=model.flat_values.dtype)
        self.velocity = {}   # views of flat_velocity by parameter name: what checkpoints hold
        for name, value, _ in model.named_parameters():
            offset = model.parameter_offsets[name]
            if offset < trained:
                self.velocity[name] = self.flat_velocity[offset: offset + value.size].reshape(value.shape)

    def step(self):
        if self.model.flat_values is not self._flat_values or (self._flat_values is not None
                                                               and not self.model.packing_intact()):
            raise RuntimeError("SGD: the model's parameters changed after this optimizer was made (a layer "
                               "frozen or unfrozen, or a parameter array replaced): make a new SGD")
        for group in self.groups:
            value = self.model.flat_values[group.start: group.stop]
            grad = self.model.flat_grads[group.start: group.stop]
            velocity = self.flat_velocity[group.start: group.stop]
            lr, weight_decay = self.lr * group.lr_mult, self.weight_decay * group.decay_mult
            if backend.is_gpu_array(value):   # the same update in one CuPy kernel: one pass over the memory
                from .layers import cuda_kernels
                cuda_kernels.sgd_update(value, grad, velocity, lr, self.momentum, weight_decay)
            else:
                _sgd_update_host(value, grad, velocity, lr, self.momentum, weight_decay)

    def state_dict(self):
        """Host copies of the momentum buffers and the hyper-parameters."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "velocity": {name: _host_copy(v) for name, v in self.velocity.items()}}

    def load_state_dict(self, state):
        """Take a state_dict's buffers and settings; every buffer is checked before any is copied, so
        that a state refused (KeyError, ValueError, TypeError) leaves the optimizer as it was."""
        check_hyperparameters("optimizer state", **{key: state[key] for key in ("lr", "momentum", "weight_decay")
                                                    if key in state})
        for name, value in state["velocity"].items():
            if name not in self.velocity:
                raise KeyError(f"optimizer state has a buffer for {name}, which this model does not train")
            if tuple(value.shape) != tuple(self.velocity[name].shape):
                raise ValueError(f"optimizer state for {name} has shape {tuple(value.shape)}, "
                                 f"the model {tuple(self.velocity[name].shape)}")
        for name, value in state["velocity"].items():
            self.velocity[name][...] = backend.to_device(value, dtype=self.velocity[name].dtype)
        self.lr = state.get("lr", self.lr)
        self.momentum = state.get("momentum", self.momentum)
        self.weight_decay = state.get("weight_decay", self.weight_decay)


def check_hyperparameters(where, **values):
    """TypeError or ValueError, "<where>: ...", unless each is a finite number, at least 0 (momentum at
    most 1): a NaN learning rate, or one read from a file as the string "1e-4", would fail only at the
    first step, the first making every weight NaN."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{where}: {name} must be a number, not {type(value).__name__} {value!r}")
        highest = 1 if name == "momentum" else math.inf
        if not (math.isfinite(value) and 0 <= value <= highest):
            allowed = "0..1" if name == "momentum" else "a finite number, at least 0"
            raise ValueError(f"{where}: {name} is {value}: it must be {allowed}")


def _sgd_update_host(value, grad, velocity, lr, momentum, weight_decay):
    """The update above, in place: its six NumPy passes run a cache-sized block at a time (so that
    w, g and v cross main memory once), the blocks shared among the host's threads."""
    lr, momentum, weight_decay = (value.dtype.type(number) for number in (lr, momentum, weight_decay))

    def update(w, g, v):
        step = numpy.multiply(w, weight_decay)
        step += g
        step *= lr
        v *= momentum
        v -= step
        w += v
    backend.split_flat(update, value, grad, velocity, blocked=True)


def _host_copy(x):
    """A NumPy copy of x that later steps cannot change (to_numpy hands NumPy arrays back as they are)."""
    return backend.to_numpy(x) if backend.is_gpu_array(x) else x.copy()
