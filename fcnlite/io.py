"""Model weights in HDF5 (schema: weights/README.md).

    /<layer>/W, /<layer>/b     float32 datasets, one group per layer (reference names)
    attributes of /            fcnlite_format, architecture, n_classes, width, conv1_padding (optional: a
                               VGG16 padded otherwise than the FCN encoder's 100), learnable_upsampling
                               (optional: an FCN that trains its upscore layers),
                               channel_order, input_scale, mean, std, class_names (optional),
                               class_colors (optional: an RGB colour per class), source,
                               train_max_side (optional: final.h5's training image size),
                               train_resize (optional: the run's --resize),
                               training_options (optional: final.h5's run options, JSON),
                               best_mean_iu, best_iteration (best.h5's evaluation)

save_weights(model, path) writes atomically (temporary file, then rename);
load_weights(model, path, strict=True) fills a model and raises WeightsError
with one line naming the file and the layer on any mismatch (a missing or an
unexpected layer, or both shapes where they differ).
"""
import contextlib
import json
import math
import os
import secrets
import shlex
import shutil
import signal
import threading
import types

import numpy

from . import backend
from .errors import first_line, os_reason

FORMAT_VERSION = 1
# the first bytes of the files that weights/README.md's converters read: a zip (PyTorch since 1.6, NumPy's
# .npz) and a pickle (older PyTorch files)
ZIP_SIGNATURE, PICKLE_SIGNATURE = b"PK\x03\x04", b"\x80"
CONVERTERS = ("weights/convert_vgg16.py (VGG16, for train_voc.py --init) or weights/convert_fcn.py (a trained "
              "FCN; weights/README.md)")
PREPROCESSING_KEYS = ("channel_order", "input_scale", "mean", "std")


def preprocessing_from(values, path):
    """A model's preprocessing dict from the values a file stored (HDF5 attributes, or JSON in a
    checkpoint): its four keys, with mean and std as tuples of floats; WeightsError naming path and the
    attribute where one cannot be used."""
    preprocessing = {key: values[key] for key in PREPROCESSING_KEYS}
    check_attributes(path, preprocessing)
    for key in ("mean", "std"):
        preprocessing[key] = tuple(float(v) for v in preprocessing[key])
    return preprocessing


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value):
    return _number(value) and float(value).is_integer() and value >= 0


def _three_numbers(value):
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(_number(v) for v in value)


# what a weight file's attributes must be, where present: (test, what the message says is expected)
ATTRIBUTE_CHECKS = {
    "n_classes": (_whole, "a whole number of classes"),
    "width": (lambda value: _number(value) and value > 0, "a positive number (1.0: VGG16's channels)"),
    "conv1_padding": (_whole, "a whole number of pixels (1: the original VGG16's)"),
    "learnable_upsampling": (lambda value: isinstance(value, bool), "true or false"),
    "channel_order": (lambda value: isinstance(value, str) and value.upper() in ("RGB", "BGR"), "RGB or BGR"),
    "input_scale": (lambda value: _number(value) and value > 0, "a positive number (1.0 or 1/255)"),
    "mean": (_three_numbers, "3 numbers, one per channel"),
    "std": (lambda value: _three_numbers(value) and 0 not in value, "3 numbers, one per channel, none of them 0"),
    "train_max_side": (_whole, "a whole number of pixels (0: no limit)"),
    "train_resize": (lambda value: isinstance(value, (list, tuple)) and len(value) == 2
                     and all(_whole(side) and side >= 1 for side in value), "(height, width) in pixels"),
    "class_colors": (lambda value: isinstance(value, (list, tuple)) and all(
        isinstance(row, (list, tuple)) and len(row) == 3 and all(_whole(v) and 0 <= v <= 255 for v in row)
        for row in value), "an RGB colour (3 numbers of 0..255) per class"),
}


def check_attributes(path, attributes):
    """WeightsError naming path and the attribute unless each of attributes that fcnlite reads can be used
    (a whole number of classes, a preprocessing that divides by no zero ...)."""
    for key, (usable, expected) in ATTRIBUTE_CHECKS.items():
        if key in attributes and not usable(attributes[key]):
            raise WeightsError(f"{path}: attribute {key} is {attributes[key]!r}, expected {expected}")


class WeightsError(Exception):
    """A weight file that cannot be used with a model: the message is one line naming the file."""


def _h5py():
    import h5py
    return h5py


# atomic_write's temporary files: ".tmp-<random><name>" beside the file they become
TEMPORARY_PREFIX = ".tmp-"
TEMPORARY_RANDOM_HEX = 8
TEMPORARY_NAME_EXTRA = len(TEMPORARY_PREFIX) + TEMPORARY_RANDOM_HEX   # what a temporary name adds to the file's
# room for HDF5's own records (headers, attributes, checksums) beside the arrays' bytes
HDF5_OVERHEAD_BYTES = 1 << 20


def _read_umask():
    # os.umask can only be read by setting it: done once, at import, not while other threads make files
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def cannot_write_in(folder):
    """Why files cannot be written in `folder` (made first where it is missing), in words; None where
    they can. The nearest folder that exists decides, walked up to as given, not normalised: in
    afile/../run, afile must be a folder."""
    existing = folder
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    existing = existing or "."
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in {existing}"
    return None


def check_writable(path):
    """Before any long work: WeightsError unless a file can be written at path (not a folder; its folder
    one that exists and takes files, or one atomic_write can make)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise WeightsError(f"cannot write {path} (it is a folder: name the file to write in it)")
    problem = cannot_write_in(os.path.dirname(path))
    if problem:
        raise WeightsError(f"cannot write {path} ({problem})")


def atomic_write(path, write, size=0):
    """Call write(temporary_path), then rename it onto path: a crash never leaves a half-written file.

    size: the bytes write stores (its arrays'). A disk with less room is refused before writing starts,
    not after minutes of writing (a disk that fills meanwhile: write_hdf5).
    Any failure is a WeightsError "cannot write <path> (<cause>)", and leaves no temporary file."""
    path = os.fspath(path)
    check_writable(path)
    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        os.makedirs(directory, exist_ok=True)
        free = shutil.disk_usage(directory).free
        if size + HDF5_OVERHEAD_BYTES > free:
            raise WeightsError(f"cannot write {path} (no space left on device: it needs "
                               f"{(size + HDF5_OVERHEAD_BYTES) / 1e6:.1f} MB, {free / 1e6:.1f} MB are free)")
        while temporary is None or not _created(temporary):   # (another name where that one is taken)
            # named before the file exists, so that a Ctrl-C at any moment leaves nothing unknown
            # here (inside tempfile.mkstemp it left a file)
            random = secrets.token_hex(TEMPORARY_RANDOM_HEX // 2)
            temporary = os.path.join(directory, f"{TEMPORARY_PREFIX}{random}{os.path.basename(path)}")
        write(temporary)
        # the temporary file is private (0600): give it the mode of the file it replaces, or that of
        # any new file
        os.chmod(temporary, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            with contextlib.suppress(OSError):   # (a folder made read-only meanwhile keeps it)
                os.remove(temporary)
        if isinstance(error, OSError):
            raise WeightsError(f"cannot write {path} ({os_reason(error)})") from None
        raise


def _created(path):
    """Make an empty private file (0600) at path; False where a file is there already."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(handle)
    return True


class WriteErrorKept:
    """A file for h5py to write through that keeps the first exception of any call h5py makes on it (a
    full disk's OSError, a Ctrl-C's KeyboardInterrupt) instead of raising it into HDF5, and skips the
    calls after it. HDF5 meeting a failed write prints pages of errors and crashes the process as it
    closes the file (a segfault: h5py 3.16, a disk filled by another program while the weights were
    written); given this file, it closes the file cleanly, and write_hdf5 raises the kept exception
    after."""

    def __init__(self, raw):
        self.raw = raw   # unbuffered (buffering=0), so that a write fails here, not at a later flush
        self.error = None

    def _keep(self, call, *args, skipped=None):
        """call(*args), or where it raises (or an earlier call did) keep that and return `skipped`."""
        if self.error is None:
            try:
                return call(*args)
            except BaseException as error:   # (HDF5 cannot take a Python exception through its C frames)
                self.error = error
        return skipped

    def _write_all(self, view):
        written = 0
        while written < len(view):   # a disk nearly full takes part of a write, then fails
            written += self.raw.write(view[written:])

    def write(self, data):
        view = memoryview(data).cast("B")
        self._keep(self._write_all, view)
        return len(view)

    def truncate(self, size):   # HDF5 sets the file's length as it closes: that can fail as writes do
        self._keep(self.raw.truncate, size)
        return size

    def seek(self, offset, whence=os.SEEK_SET):
        return self._keep(self.raw.seek, offset, whence, skipped=offset)

    def readinto(self, buffer):   # a read skipped reads nothing: h5py fills the buffer with zeros
        return self._keep(self.raw.readinto, buffer, skipped=0)

    def read(self, size=-1):
        return self._keep(self.raw.read, size, skipped=b"")

    def flush(self):
        self._keep(self.raw.flush)

    def tell(self):
        return self._keep(self.raw.tell, skipped=0)


def write_hdf5(path, fill, size):
    """Write a new HDF5 file at path atomically (atomic_write): fill(file) stores its contents in the
    open h5py.File; size: the bytes of its arrays. A failure of the file underneath (WriteErrorKept)
    is raised once h5py has closed it, whatever h5py made of the calls skipped after it."""
    h5py = _h5py()

    def write(temporary):
        with open(temporary, "w+b", buffering=0) as raw:
            kept = WriteErrorKept(raw)
            try:
                with signals_kept_by(kept), h5py.File(kept, "w") as file:
                    fill(file)
            except Exception:
                if kept.error is None:
                    raise
        if kept.error is not None:
            raise kept.error

    atomic_write(path, write, size)


@contextlib.contextmanager
def signals_kept_by(kept):
    """While the block runs (in the main thread), an exception that a SIGINT or SIGTERM handler raises
    (Python's Ctrl-C, the Trainer's second Ctrl-C) goes to kept.error, not into the code that the signal
    interrupts: inside h5py's callbacks it escaped HDF5's C frames, and left a chunk unwritten in a
    file that was then renamed into place, or crashed the process. WriteErrorKept then skips the
    rest of the writing, and write_hdf5 raises the exception once h5py has closed the file."""
    if threading.current_thread() is not threading.main_thread():   # (signals reach the main thread only)
        yield
        return
    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if callable(handler):
                def keep_what_it_raises(number, frame, handler=handler):
                    try:
                        handler(number, frame)
                    except BaseException as error:
                        if kept.error is None:
                            kept.error = error
                previous[signum] = signal.signal(signum, keep_what_it_raises)
        yield
    finally:   # (a signal during the installing above: what was installed is undone)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def nonfinite_count(array):
    """How many of array's values are NaN or infinite (weights holding any are refused, read or written)."""
    return int(array.size - numpy.count_nonzero(numpy.isfinite(array)))


def write_checked_array(file, name, array):
    """Store array as dataset `name` of an open HDF5 file, with a checksum (HDF5's fletcher32 filter):
    a file damaged later then fails to read (read_weights names the array) instead of loading garbage.
    One chunk per array: with HDF5's default small chunks an FCN-8s file took 3.4x as long to load
    (BENCHMARKS.md, "Weight files with checksums").
    (A 0-d array cannot take a filter: it is stored as it is.)"""
    if array.ndim == 0:
        file.create_dataset(name, data=array)
        return
    file.create_dataset(name, data=array, fletcher32=True, chunks=array.shape if array.size else None)


def read_checked_array(path, dataset, what):
    """dataset's values; WeightsError naming `what` when its checksum (or its storage) fails."""
    if dataset.size and dataset.id.get_storage_size() == 0:
        # HDF5 reads a chunk never written as zeros, past any checksum: a write cut short left it so
        raise WeightsError(f"{path}: {what} was never written (the file was cut short as it was saved): "
                           f"it holds no values")
    try:
        return dataset[()]
    except OSError as error:   # h5py's "filter returned failure during read", or a short read
        raise WeightsError(f"{path}: {what} cannot be read, the file is damaged ({first_line(error)})") from None


def write_arrays(path, arrays, attributes):
    """Write {"layer/W": array, ...} and root attributes into a new HDF5 file, atomically."""
    h5py = _h5py()
    arrays = {name: numpy.asarray(value, dtype=numpy.float32) for name, value in arrays.items()}

    def fill(file):
        for key, value in attributes.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
                value = numpy.array(value, dtype=h5py.string_dtype())
            file.attrs[key] = value
        for name, value in arrays.items():
            write_checked_array(file, name, value)

    write_hdf5(path, fill, size=sum(value.nbytes for value in arrays.values()))


def model_attributes(model):
    attributes = {"fcnlite_format": FORMAT_VERSION}
    for key, value in model.config().items():
        attributes[key] = value
    for key in PREPROCESSING_KEYS:
        attributes[key] = model.preprocessing[key]
    if model.class_names:
        attributes["class_names"] = list(model.class_names)
    if getattr(model, "class_colors", None) is not None:
        attributes["class_colors"] = numpy.asarray(model.class_colors, dtype=numpy.uint8)
    return attributes


def save_weights(model, path, extra_attributes=None):
    """Write every parameter of model and its preprocessing / architecture attributes to path. What
    load_weights would refuse (a preprocessing that divides by 0, NaN weights) is refused here,
    before anything is written, and so are class names that are not one per class (load_weights
    would drop them)."""
    path = os.fspath(path)
    arrays = {name: backend.to_numpy(value) for name, value, _ in model.named_parameters()}
    attributes = model_attributes(model)
    attributes.update(extra_attributes or {})
    # checked as they will read back: a mean of numpy.float32s, or a NumPy array, is 3 numbers too
    check_attributes(f"cannot write {path}", {key: _decode(numpy.asarray(value) if isinstance(value, (list, tuple))
                                                           else value) for key, value in attributes.items()
                                              if value is not None})   # (None: not written, write_arrays)
    names, n_classes = model.class_names, model.config().get("n_classes")
    if names is not None and (isinstance(names, str) or not all(isinstance(name, str) for name in names)
                              or (n_classes and names and len(names) != n_classes)):
        raise WeightsError(f"cannot write {path}: model.class_names is {names!r}, expected a list of names, "
                           f"one per class ({n_classes})")
    colors = getattr(model, "class_colors", None)
    if colors is not None and n_classes and len(colors) != n_classes:
        raise WeightsError(f"cannot write {path}: model.class_colors has {len(colors)} colours, expected one per "
                           f"class ({n_classes})")
    for name, array in arrays.items():
        bad = nonfinite_count(array)
        if bad:
            raise WeightsError(f"cannot write {path}: {name} holds {bad} values that are NaN or infinite "
                               f"(load_weights would refuse the file)")
    write_arrays(path, arrays, attributes)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, numpy.ndarray):
        if value.dtype.kind in "OSU":
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, numpy.generic):
        return value.item()
    return value


def read_weights(path, with_arrays=True):
    """(arrays {"layer/key": numpy array}, attributes dict) of a weight file, or WeightsError.
    with_arrays=False: the file's layout is checked, but no array is read (arrays is {})."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise WeightsError(f"{path}: no such file")
    if os.path.isdir(path):
        raise WeightsError(f"{path} is a folder, not a weight file")
    try:   # a file that cannot be opened is not a bad format: HDF5 would say it is, at length
        with open(path, "rb") as file:
            start = file.read(8)
    except OSError as error:
        raise WeightsError(f"{path}: cannot be read ({os_reason(error)})") from None
    # the files the READMEs say to download (an HDF5 file may begin with any user block: not one of them)
    if start.startswith((ZIP_SIGNATURE, PICKLE_SIGNATURE)) and not _h5py().is_hdf5(path):
        if path.lower().endswith(".keras"):   # (a zip too, which no converter reads)
            raise WeightsError(f"{path}: a Keras 3 .keras file, which the converters do not read: convert the "
                               f"Keras VGG16 .h5 that weights/README.md names")
        raise WeightsError(f"{path}: a PyTorch or NumPy (.npz) file, not an fcnlite weight file: convert it first, "
                           f"with {CONVERTERS}")
    # a Ctrl-C raised inside h5py's reading, or as h5py's objects are freed, is lost in their cleanup
    # ("Exception ignored") or crashes the process: it is kept, and raised once they are gone
    kept = types.SimpleNamespace(error=None)
    try:
        with signals_kept_by(kept):
            return _read_hdf5(path, _h5py(), with_arrays)
    except WeightsError:
        raise
    except Exception as error:
        raise WeightsError(f"{path}: not a readable HDF5 weight file ({first_line(error)})") from None
    finally:
        if kept.error is not None:   # (before any other failure: the user asked to stop)
            raise kept.error


def _iteration(attributes):
    """The iteration a checkpoint's attributes were saved at ("N" where they do not say)."""
    try:
        return int(json.loads(attributes["state"])["iteration"])
    except (TypeError, ValueError, KeyError):
        return "N"


def _read_hdf5(path, h5py, with_arrays):
    """read_weights' reading, in a function of its own so that h5py's objects are freed when it returns."""
    with h5py.File(path, "r") as file:
        attributes = {key: _decode(value) for key, value in file.attrs.items()}
        keras = {"layer_names", "keras_version", "model_config"} & set(attributes) or "model_weights" in file
        if keras and "fcnlite_format" not in attributes:   # (Keras's weights, or its whole saved model)
            raise WeightsError(f"{path}: a Keras file, not an fcnlite weight file: convert it first, with "
                               f"{CONVERTERS}")
        if "state" in attributes and "model" in file:
            raise WeightsError(f"{path}: a training checkpoint, not a weight file: use the final.h5 (or best.h5) "
                               f"that training writes; for a run stopped early, train_voc.py --resume --out "
                               f"{shlex.quote(os.path.dirname(os.path.abspath(path)))} --max-iter "
                               f"{_iteration(attributes)} "
                               f"writes its final.h5 at once")
        check_attributes(path, attributes)
        arrays = {}
        for layer_name, group in file.items():
            if not isinstance(group, h5py.Group):
                raise WeightsError(f"{path}: /{layer_name} is not a layer group (expected /{layer_name}/W)")
            for key, dataset in group.items():
                if not isinstance(dataset, h5py.Dataset):
                    raise WeightsError(f"{path}: /{layer_name}/{key} is not an array (expected /{layer_name}/W)")
                if dataset.dtype.kind not in "biuf":
                    held = "text" if dataset.dtype.kind in "SUO" else f"values of type {dataset.dtype}"
                    raise WeightsError(f"{path}: layer {layer_name}/{key} holds {held}, not numbers")
                if with_arrays:
                    arrays[f"{layer_name}/{key}"] = read_checked_array(path, dataset, f"layer {layer_name}/{key}")
    return arrays, attributes


def read_attributes(path):
    """The root attributes of a weight file (architecture, n_classes, width, preprocessing ...), read
    without its arrays (fc6's alone are 400 MB)."""
    return read_weights(path, with_arrays=False)[1]


def load_weights(model, path, strict=True, verbose=False):
    """Fill model's parameters from an HDF5 weight file.

    strict=True: every model parameter must be in the file with the same shape, and
    the file must hold nothing else. Exception: a VGG16 file loaded into an FCN fills
    the encoder (conv1_1 ... fc7) and leaves the head as initialised; fc8 is ignored.
    strict=False: loads what matches by name and shape, leaves the rest as initialised,
    and warns in one line about layers whose shapes differ (e.g. score layers of a model
    trained on another number of classes).

    The file's preprocessing and class names are copied onto the model. Returns a
    report {"loaded": [...], "missing": [...], "unexpected": [...], "reinitialized": [...]}.
    """
    path = os.fspath(path)
    arrays, attributes = read_weights(path)
    parameters = {name: value for name, value, _ in model.named_parameters()}
    from_vgg = attributes.get("architecture") == "vgg16" and model.architecture != "vgg16"
    expected = set(parameters)
    if from_vgg:
        expected = {name for name in parameters if name.split("/")[0] in getattr(model, "encoder_names", ())}
    missing = sorted(expected - set(arrays))
    unexpected = sorted(name for name in arrays if name not in parameters and not (from_vgg and name.startswith("fc8/")))
    if strict and missing:
        raise WeightsError(f"{path}: layer {missing[0]} is missing from the file (model shape {tuple(parameters[missing[0]].shape)})"
                           + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    if strict and unexpected:
        raise WeightsError(f"{path}: layer {unexpected[0]} {tuple(arrays[unexpected[0]].shape)} is not in this "
                           f"{model.architecture} model" + (f" ({len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    loaded, reinitialized = [], []
    for name, value in parameters.items():
        if name not in arrays:
            continue
        source = arrays[name]
        if tuple(source.shape) != tuple(value.shape):
            if strict:
                raise WeightsError(f"{path}: layer {name} has shape {tuple(source.shape)} in the file "
                                   f"but {tuple(value.shape)} in the model")
            reinitialized.append(name)
            continue
        loaded.append(name)
    for name in loaded:
        bad = nonfinite_count(arrays[name])
        if bad:
            raise WeightsError(f"{path}: layer {name} holds {bad} values that are NaN or infinite: the file is "
                               f"damaged, or was saved from a run that diverged")
    # copy only once every array is known to fit: a load that fails leaves the model as it was
    for name in loaded:
        parameters[name][...] = backend.to_device(arrays[name], dtype=parameters[name].dtype)
    if reinitialized:
        layers = sorted({name.split("/")[0] for name in reinitialized})
        print(f"warning: {path}: shapes differ for {', '.join(layers)}; those layers keep their fresh initialisation")
    if all(key in attributes for key in PREPROCESSING_KEYS):
        model.preprocessing = preprocessing_from(attributes, path)
    names = attributes.get("class_names")
    if names and len(names) == getattr(model, "n_classes", None):
        model.class_names = list(names)
    colors = attributes.get("class_colors")
    if colors and len(colors) == getattr(model, "n_classes", None):
        model.class_colors = [list(color) for color in colors]
    report = {"loaded": loaded, "missing": [m for m in missing if m not in arrays],
              "unexpected": unexpected, "reinitialized": reinitialized}
    if verbose:
        print(f"{path}: loaded {len(loaded)} tensors; {len(report['missing'])} left as initialised")
    return report


def model_from_file(path, dtype=numpy.float32):
    """Build the model a weight file describes (model_described_by) and load it strictly."""
    model = model_described_by(read_attributes(path), path, dtype)
    load_weights(model, path, strict=True)
    return model


def model_described_by(attributes, path, dtype=numpy.float32):
    """The model, freshly initialised, that a weight file's attributes describe (architecture,
    n_classes, width, a VGG16's conv1_padding, an FCN's learnable_upsampling); WeightsError naming
    path where they describe none fcnlite builds."""
    from .models import FCN_ARCHITECTURES, build_model
    architecture = attributes.get("architecture")
    if not architecture:
        raise WeightsError(f"{os.fspath(path)}: no 'architecture' attribute: cannot tell which model wrote it")
    # (a model of one's own, a Model subclass, saves and loads its weights but is not built from them)
    architectures = (*FCN_ARCHITECTURES, "vgg16")
    if str(architecture).lower() not in architectures:
        raise WeightsError(f"{os.fspath(path)}: attribute architecture is {architecture!r}, not a model fcnlite "
                           f"builds ({', '.join(architectures)})")
    n_classes = int(attributes.get("n_classes", 21) or 0)
    # a VGG16 of the original padding (ImageNet checks) is another network on the same weights; the FCNs pad by
    # 100, and train their upscore layers only where the file says so
    if str(architecture).lower() == "vgg16":
        options = {"conv1_padding": int(attributes["conv1_padding"])} if "conv1_padding" in attributes else {}
    else:
        options = {"learnable_upsampling": bool(attributes.get("learnable_upsampling", False))}
    try:
        return build_model(architecture, n_classes=n_classes, width=float(attributes.get("width", 1.0)), dtype=dtype,
                           **options)
    except ValueError as error:   # an FCN of fewer than 2 classes
        raise WeightsError(f"{os.fspath(path)}: attribute {error}") from None


