"""Resumable training checkpoints: one HDF5 file holding everything a run needs to go on.

    /model/<layer>/<W|b>      the parameters
    /momentum/<layer>/<W|b>   SGD's momentum buffers
    attrs["state"]            JSON: iteration, epoch, position in the epoch's order,
                              the order itself, fcnlite.rng's state, the run's options
    attrs["optimizer"]        JSON: the optimizer's hyperparameters (lr, momentum, weight decay)
    attrs["model_inputs"]     JSON: the model's preprocessing, class names and colours, which the
                              weights need (a run started from --init weights keeps theirs)

Written atomically (temporary file, then rename), so an interrupted write leaves
the previous checkpoint intact.
"""
import json
import os

from . import backend, rng
from .errors import first_line
from .io import (WeightsError, check_attributes, nonfinite_count, preprocessing_from, read_checked_array,
                 write_checked_array, write_hdf5)


def save_checkpoint(path, model, optimizer, state):
    hyper = optimizer.state_dict()
    velocity = hyper.pop("velocity")

    def fill(file):
        for name, value, _ in model.named_parameters():
            write_checked_array(file, f"model/{name}", backend.to_numpy(value))
        for name, value in velocity.items():
            write_checked_array(file, f"momentum/{name}", value)
        file.attrs["state"] = json.dumps(dict(state, rng=rng.get_state()))
        file.attrs["optimizer"] = json.dumps(hyper)
        file.attrs["model_inputs"] = json.dumps({"preprocessing": model.preprocessing,
                                                 "class_names": model.class_names,
                                                 "class_colors": model.class_colors and
                                                 [[int(v) for v in color] for color in model.class_colors]})

    size = sum(value.nbytes for _, value, _ in model.named_parameters()) + sum(v.nbytes for v in velocity.values())
    write_hdf5(path, fill, size=size)


def _require_checkpoint(path, file):
    """WeightsError unless the open HDF5 file is a checkpoint; a weight file in its place is named as one."""
    if "state" in file.attrs and "optimizer" in file.attrs:
        return
    if "fcnlite_format" in file.attrs:
        raise WeightsError(f"{path}: a weight file (as final.h5 is), not a training checkpoint: a run resumes "
                           f"from the checkpoint.h5 it wrote; to start a new run from these weights, pass --init")
    raise WeightsError(f"{path}: not a training checkpoint (it holds no training state)")


def read_checkpoint_state(path):
    """The state saved with a checkpoint (iteration, the run's options ...) and, under "optimizer", its
    optimizer's hyperparameters, without loading its arrays."""
    import h5py
    path = os.fspath(path)
    try:
        with h5py.File(path, "r") as file:
            _require_checkpoint(path, file)
            return dict(json.loads(file.attrs["state"]), optimizer=json.loads(file.attrs["optimizer"]))
    except WeightsError:
        raise
    except Exception as error:
        raise WeightsError(f"{path}: not a readable checkpoint ({first_line(error)})") from None


def _classes(names, shown=5):
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} classes ({listed})"


def _read_checkpoint(path, model):
    """(state, optimizer settings, the model's inputs or None, {"model/<name>" or "momentum/<name>": array}):
    all that load_checkpoint applies, read and checked; WeightsError naming path where any is unusable."""
    import h5py
    try:
        with h5py.File(path, "r") as file:
            _require_checkpoint(path, file)
            state = json.loads(file.attrs["state"])
            hyper = json.loads(file.attrs["optimizer"])
            inputs = json.loads(file.attrs["model_inputs"]) if "model_inputs" in file.attrs else None
            if inputs is not None:   # (checkpoints of earlier versions did not save the model's inputs)
                try:
                    inputs = {"preprocessing": preprocessing_from(inputs["preprocessing"], path),
                              "class_names": inputs["class_names"],
                              "class_colors": inputs.get("class_colors")}   # (checkpoints before colours: none)
                    if inputs["class_colors"] is not None:
                        check_attributes(path, {"class_colors": inputs["class_colors"]})
                except KeyError as error:
                    raise WeightsError(f"{path}: attribute model_inputs has no {error}") from None
                trained = inputs["class_names"]
                if trained and model.class_names and list(trained) != list(model.class_names):
                    raise WeightsError(f"{path}: the run trained {_classes(inputs['class_names'])}, and this model "
                                       f"has {_classes(model.class_names)}: resume it with the run's data and class "
                                       f"options")
            arrays = {}
            for name, value, _ in model.named_parameters():
                key = f"model/{name}"
                if key not in file:
                    raise WeightsError(f"{path}: checkpoint has no {name}: it was written by another model")
                arrays[key] = read_checked_array(path, file[key], f"checkpoint array {key}")
                if arrays[key].shape != value.shape:
                    raise WeightsError(f"{path}: {name} has shape {arrays[key].shape} in the checkpoint, "
                                       f"{tuple(value.shape)} in the model")
            if "momentum" in file:
                file["momentum"].visititems(lambda name, item: arrays.__setitem__(
                    f"momentum/{name}", read_checked_array(path, item, f"checkpoint array momentum/{name}"))
                    if isinstance(item, h5py.Dataset) else None)
    except WeightsError:
        raise
    except Exception as error:   # not HDF5, a damaged file, attributes edited by hand
        raise WeightsError(f"{path}: not a readable checkpoint ({first_line(error)})") from None
    for key, array in arrays.items():
        bad = nonfinite_count(array)
        if bad:
            raise WeightsError(f"{path}: checkpoint array {key} holds {bad} values that are NaN or infinite: "
                               f"training cannot go on from it")
    return state, hyper, inputs, arrays


def load_checkpoint(path, model, optimizer):
    """Restore model and optimizer in place; returns the saved state dict (rng restored too). Every array
    is read and checked before the model takes any: a checkpoint refused leaves the model as it was."""
    path = os.fspath(path)
    state, hyper, inputs, arrays = _read_checkpoint(path, model)
    velocity = {key[len("momentum/"):]: array for key, array in arrays.items() if key.startswith("momentum/")}
    try:
        optimizer.load_state_dict(dict(hyper, velocity=velocity))
    except (KeyError, ValueError, TypeError) as error:   # a buffer for no parameter of the model, or of another
        # shape; a setting edited to one that cannot train
        raise WeightsError(f"{path}: the checkpoint's {error.args[0]}") from None
    for name, value, _ in model.named_parameters():
        value[...] = backend.to_device(arrays[f"model/{name}"], dtype=value.dtype)
    if inputs is not None:
        model.preprocessing, model.class_names = inputs["preprocessing"], inputs["class_names"]
        if inputs["class_colors"] is not None:   # (a checkpoint from before colours: the data's stay)
            model.class_colors = inputs["class_colors"]
    rng.set_state(state.pop("rng"))
    return state
