"""The training loop: SGD on one image at a time (the reference's batch of one
full-size image), gradient accumulation over several, evaluation, pictures,
logs and resumable checkpoints.

    trainer = Trainer(model, optimizer, train_set, val_set, TrainConfig(out="runs/x"))
    trainer.run()

One iteration = `accumulate` images forward and backward (gradients add up in
the layers), then one optimizer step. Everything random is a function of the
seed and of the (epoch, position) being read, or lives in fcnlite.rng whose
state the checkpoint saves: a run interrupted and resumed ends with the same
weights as one that was not.
"""
import contextlib
import hashlib
import json
import math
import numbers
import os
import shlex
import signal
import time
from dataclasses import asdict, dataclass, field

import numpy

from . import backend
from .checkpoint import load_checkpoint, save_checkpoint
from .data.errors import DataError, load_sample, sample_name
from .data.images import check_label
from .data.prefetch import Prefetcher
from .data.preprocess import check_pixel_range, preprocess
from .data.transforms import limit_max_side, random_flip, random_scale_crop, resize
from .errors import os_reason
from .io import TEMPORARY_PREFIX, WeightsError, atomic_write, save_weights
from .layers import SoftmaxCrossEntropy
from .plots import RunningAverage


class TrainingStopped(Exception):
    """Training ended early: the message says why and where the last good checkpoint is. signal_number:
    the signal that asked for the stop (the programs exit with 128 + it, as a shell does), or None."""

    def __init__(self, message, signal_number=None):
        super().__init__(message)
        self.signal_number = signal_number


@dataclass
class TrainConfig:
    out: str = "runs/fcn"
    max_iter: int = 1000
    accumulate: int = 1
    loss_normalize: bool = False
    eval_every: int = 0            # 0: only at the end
    checkpoint_every: int = 1000
    val_limit: int = 0             # evaluate on the first N val images (0: all)
    seed: int = 0
    flip: bool = True
    scale_range: tuple = None      # e.g. (0.5, 2.0) for random scaling
    crop_size: int = 0             # random crop to this square size (0: full image)
    max_side: int = 0              # downscale larger images (0: keep)
    resize: tuple = None           # fixed (height, width) for every image
    lr_policy: str = "fixed"       # "fixed" (reference) or "poly": lr * (1 - iteration/max_iter) ** 0.9
    n_progress_images: int = 3
    progress: bool = True
    options: dict = field(default_factory=dict)  # the command line's run options, saved for --resume
    extra: dict = field(default_factory=dict)   # recorded in logs (preset, dataset ...)

    def __post_init__(self):
        self.validate()

    def validate(self):
        """ValueError naming the first field whose value would train wrong without a word: a crop of -5 cut
        empty windows (a loss of 0 every step), a negative val_limit evaluated no image at all."""
        for name, least, meaning in _COUNT_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OFF_AT_ZERO:   # off, as 0 is: the loop reads these as `value or None`
                continue
            if name == "crop_size" and _is_pair(value):   # (height, width), as random_scale_crop takes it
                if not all(isinstance(side, numbers.Integral) and side >= 1 for side in value):
                    raise ValueError(f"TrainConfig.crop_size is {meaning}, or (height, width) of 1 or more each, "
                                     f"not {value!r}")
                self.crop_size = tuple(int(side) for side in value)   # (a NumPy array has no truth value)
                continue
            if not isinstance(value, numbers.Integral):
                raise ValueError(f"TrainConfig.{name} is {meaning}: a whole number, not {value!r}")
            if value < least:
                raise ValueError(f"TrainConfig.{name} is {meaning}: {least} or more, not {value!r}")
        if self.scale_range is not None:
            if not (_is_pair(self.scale_range) and all(isinstance(v, numbers.Real) for v in self.scale_range)
                    and 0 < self.scale_range[0] <= self.scale_range[1]):
                raise ValueError(f"TrainConfig.scale_range is the random scaling's (min, max), with "
                                 f"0 < min <= max, or None, not {self.scale_range!r}")
            self.scale_range = tuple(float(bound) for bound in self.scale_range)
        if self.resize is not None and not (numpy.isscalar(self.resize) and self.resize == 0):
            # None (or 0, as fit_size reads it): the images keep their size
            if not (_is_pair(self.resize) and all(isinstance(v, numbers.Integral) and v >= 1 for v in self.resize)):
                raise ValueError(f"TrainConfig.resize is the (height, width) every image is resized to, each "
                                 f"1 or more, or None, not {self.resize!r}")
            self.resize = tuple(int(side) for side in self.resize)   # (from a NumPy array too: logged as JSON)
        if self.lr_policy not in LR_POLICIES:
            raise ValueError(f"TrainConfig.lr_policy is one of {', '.join(LR_POLICIES)}, not {self.lr_policy!r}")


LR_POLICIES = ("fixed", "poly")

# (field, least value, what it counts): the whole-number fields of TrainConfig
_COUNT_FIELDS = (
    ("max_iter", 1, "the number of optimizer steps"),
    ("accumulate", 1, "the number of images per step"),
    ("eval_every", 0, "the number of steps between evaluations (0: only at the end)"),
    ("checkpoint_every", 0, "the number of steps between checkpoints (0: only at the end)"),
    ("val_limit", 0, "the number of validation images evaluated (0: all)"),
    ("seed", 0, "the seed of the data order and augmentation"),
    ("n_progress_images", 0, "the number of validation images drawn at each evaluation"),
    ("crop_size", 0, "the side of the random square crop in pixels (0: no crop)"),
    ("max_side", 0, "the limit of an image's longer side in pixels (0: no limit)"),
)


# the fields that 0 (or None) turns off
_OFF_AT_ZERO = {"eval_every", "checkpoint_every", "val_limit", "crop_size", "max_side"}


def _is_pair(value):
    return isinstance(value, (tuple, list, numpy.ndarray)) and numpy.shape(value) == (2,)


def fit_size(image, label, resize_to=None, max_side=0):
    """The size the model sees: a fixed (height, width), or the longer side capped; labels never interpolated."""
    if resize_to:
        return resize(image, label, tuple(resize_to))
    if max_side:
        return limit_max_side(image, label, max_side)
    return image, label


def prepare_sample(image, label, config, rng_sample, training):
    """Resize / augment one (image, label) pair with numpy arrays; labels never interpolated."""
    image, label = fit_size(image, label, config.resize, config.max_side)
    if training:
        if config.scale_range is not None or config.crop_size:
            image, label = random_scale_crop(image, label, rng_sample, scale_range=config.scale_range,
                                             crop_size=config.crop_size)
        if config.flip:
            image, label = random_flip(image, label, rng_sample)
    return image, label


def load_checked_sample(dataset, index, n_classes):
    """dataset's sample `index` as (uint8 image, label), loaded (load_sample) and checked (check_sample);
    DataError naming it where it cannot be trained or evaluated on."""
    image, label = load_sample(dataset, index)
    return check_sample(image, label, n_classes, sample_name(dataset, index))


def check_sample(image, label, n_classes, where):
    """(image as uint8, label) where image is RGB pixels of 0..255 (H, W, 3) and label an integer (H, W)
    map of its size whose values are classes (0..n_classes-1) or 255; otherwise DataError naming
    `where`: the loss or preprocess would refuse the sample in the middle of a step, after all the
    training since the last checkpoint (the datasets here check what they read; one's own may not)."""
    image, label = numpy.asarray(image), numpy.asarray(label)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(where, f"image has shape {image.shape}: give RGB pixels (H, W, 3)")
    if image.dtype != numpy.uint8:
        try:
            check_pixel_range(image)
        except ValueError as error:
            raise DataError(where, str(error)) from None
        image = numpy.rint(image).astype(numpy.uint8)   # what the resizing (Pillow) takes
    if label.dtype.kind not in "biu":
        raise DataError(where, f"label is {label.dtype}: give the class index of each pixel as integers")
    check_label(label, n_classes, where, image_shape=image.shape)
    return image, label


def learning_rate(base_lr, policy, iteration, max_iter):
    """The rate for step `iteration` (0-based): fixed, or decayed polynomially to 0 at max_iter."""
    if policy == "fixed":
        return base_lr
    if policy == "poly":
        return base_lr * (1 - iteration / max_iter) ** 0.9
    raise ValueError(f"unknown learning-rate policy {policy!r}: use fixed or poly")


def epoch_order(seed, epoch, count):
    """The order in which epoch `epoch` visits the training images (a function of the seed alone)."""
    return numpy.random.default_rng([seed, epoch]).permutation(count)


def in_use(out, holder):
    return f"{out} is in use by another training (process {holder}): wait for it to end, or choose another --out"


def folder_user(out):
    """The process that holds out/.lock (a training running there: Trainer.folder_claimed), or None."""
    try:
        import fcntl
    except ImportError:
        return None
    path = os.path.join(out, ".lock")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as lock:
            try:   # (held for an instant: a run starting in that instant is refused as if two ran)
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return lock.read().strip() or "?"
            fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:   # unreadable, or a file system without locks: nothing to tell
        return None
    return None


class Trainer:
    def __init__(self, model, optimizer, train_set, val_set, config, log=print):
        self.model, self.optimizer = model, optimizer
        model.set_input_grad(False)  # no gradient for the image itself: about half of conv1_1's backward
        self.train_set, self.val_set = train_set, val_set
        self.config = config
        self.log = log
        self.loss = SoftmaxCrossEntropy(ignore_index=255, normalize=config.loss_normalize, dtype=model.dtype)
        self.base_lr = optimizer.lr
        self.iteration = 0
        self.samples_read = 0   # images taken from the data order, skipped ones included
        self.skipped = {}       # message -> times met; a bad sample is reported once
        self.seconds_before = 0.0          # training seconds of the sessions before a resume
        self._session_started = None       # perf_counter() when this session's loop began
        self._eval_pending = False         # an evaluation met bad data: the resumed run does it first
        self.best = None                   # {"mean_iu", "iteration"} of the best evaluation, kept in best.h5
        self.checkpoint_iteration = None   # the iteration of the checkpoint in out/, once one is written or resumed
        config.validate()   # again: a field may have been set since the config was made
        if train_set is not None and len(train_set) == 0:
            raise ValueError(f"the training set {getattr(train_set, 'name', train_set)!r} is empty")
        for role, dataset in (("training", train_set), ("validation", val_set)):
            # other counts train classes the data never show, or fail at the first evaluation
            if dataset is not None and dataset.n_classes != model.n_classes:
                raise ValueError(f"the model scores {model.n_classes} classes, the {role} set "
                                 f"{getattr(dataset, 'name', dataset)!r} has {dataset.n_classes}: build the model "
                                 f"with n_classes={dataset.n_classes}, or give data of {model.n_classes} classes")
        preprocess(numpy.zeros((1, 1, 3), numpy.uint8), model.preprocessing)   # a bad one: ValueError now, not
        # at every sample (where it would read as bad data)
        self._stop_signal = self._second_signal = None
        self._closing = self._joining = False   # run's finally: cleaning up, waiting for the loader thread
        try:
            os.makedirs(config.out, exist_ok=True)
        except OSError as error:   # a file in the way, a folder without write permission
            raise TrainingStopped(f"cannot make the run's folder {config.out} ({os_reason(error)})") from None
        self.checkpoint_path = os.path.join(config.out, "checkpoint.h5")
        self.log_path = os.path.join(config.out, "log.jsonl")
        self._name_classes()   # last: a Trainer that refuses its arguments leaves the model as it was

    def _name_classes(self):
        """Give the model the training data's class names, and a colour table's colours: its score i is
        trained on the data's class i, whatever an --init file called it. final.h5 then names the classes
        (predict said "class 0" for a model built in Python), and the progress strips have a legend.
        Data without a name per class leave the model's own."""
        names = getattr(self.train_set, "class_names", None)
        if names is None or len(names) != self.model.n_classes:
            return
        from .visualize import class_colors_of
        self.model.class_names = list(names)
        self.model.class_colors = class_colors_of(self.train_set)

    # ---- data ---------------------------------------------------------------------------------
    def _sample_at(self, step):
        """The `step`-th image of the run (counting across epochs), prepared on the host."""
        count = len(self.train_set)
        epoch, position = divmod(step, count)
        index = int(epoch_order(self.config.seed, epoch, count)[position])
        rng_sample = numpy.random.default_rng([self.config.seed, epoch, position, 1])
        try:
            image, label = load_checked_sample(self.train_set, index, self.model.n_classes)
        except DataError as error:
            if not getattr(self.train_set, "skip_bad", False):
                raise
            return None, str(error)
        image, label = prepare_sample(image, label, self.config, rng_sample, training=True)
        return preprocess(image, self.model.preprocessing), label

    # ---- one iteration -----------------------------------------------------------------------
    def _step(self, samples):
        """Forward and backward `accumulate` images, then one SGD step. Returns the mean loss."""
        self.model.train()
        self.model.zero_grad()
        total, counted = 0.0, 0
        for sample, label in samples:
            x = backend.to_device(sample[None], dtype=self.model.dtype)
            scores = self.model.forward(x)
            # labels stay on the host: the loss checks them there, and on a GPU returns a device
            # scalar, so backward is queued without waiting for the forward pass to finish
            total += self.loss.forward(scores, label[None])
            counted += 1
            # Caffe's iter_size: the accumulated gradient is the mean over the images
            self.model.backward(self.loss.backward(1.0 / len(samples)))
        mean_loss = float(total) / max(counted, 1)   # the step's one wait for the GPU
        if not math.isfinite(mean_loss):
            return mean_loss
        self.optimizer.step()
        return mean_loss

    # ---- evaluation --------------------------------------------------------------------------
    def evaluate(self, stop=None):
        """The validation set's confusion matrix; None where stop() said True before its end (run's signals)."""
        from .evaluate import evaluate_dataset
        limit = self.config.val_limit or None
        return evaluate_dataset(self.model, self.val_set, max_side=self.config.max_side, resize=self.config.resize,
                                limit=limit, progress=False, stop=stop)

    def _write_progress_images(self):
        from .visualize import strip
        from .evaluate import predict_image
        from .visualize import palette_for
        folder = os.path.join(self.config.out, "progress")
        with self._writing(folder):
            os.makedirs(folder, exist_ok=True)
        palette = palette_for(self.val_set)
        count = min(self.config.n_progress_images, len(self.val_set))
        ids = getattr(self.val_set, "ids", None)
        for index in range(count):
            try:   # (the evaluation reported a bad sample, or skipped it with skip_bad)
                image, label = load_checked_sample(self.val_set, index, self.val_set.n_classes)
            except DataError:
                continue
            image, label = fit_size(image, label, self.config.resize, self.config.max_side)
            prediction = predict_image(self.model, image)
            # named by the image's id, so that a strip is found again among the data (and one
            # image's strips sort together by iteration); the legend names the classes shown
            name = str(ids[index]).replace(os.sep, "_") if ids else str(index)
            picture = strip(image, label, prediction, palette, titles=(name, "ground truth", "prediction"),
                            class_names=self.model.class_names or None)
            path = os.path.join(folder, f"{name}_iter{self.iteration:07d}.png")
            with self._writing(path):
                picture.save(path)

    # ---- bookkeeping -------------------------------------------------------------------------
    def _append_log(self, record):
        with self._writing(self.log_path), open(self.log_path, "a") as file:
            file.write(json.dumps(record) + "\n")

    @contextlib.contextmanager
    def _writing(self, path):
        """A file of the run that cannot be written (a full disk, a folder made read-only) stops it in one
        line that says what is kept: io.atomic_write's WeightsError, or any other write's OSError."""
        try:
            yield
        except WeightsError as error:
            raise self._write_failed(error) from None
        except OSError as error:
            raise self._write_failed(WeightsError(f"cannot write {path} ({os_reason(error)})")) from None

    def _state(self):
        return {"iteration": self.iteration, "samples_read": self.samples_read, "seed": self.config.seed,
                "skipped": len(self.skipped), "seconds": round(self.seconds(), 3), "eval_pending": self._eval_pending,
                "best": self.best, "validation": self._validation_fingerprint(),
                "config": {k: v for k, v in asdict(self.config).items() if k != "extra"}}

    def _validation_fingerprint(self):
        """What the evaluations measure on: the validation images, their classes and size. A resume on
        other validation data (another --val-fraction, images added) cannot compare its scores with the
        run's best."""
        if self.val_set is None:
            return None
        ids = getattr(self.val_set, "ids", None)
        what = [list(map(str, ids)) if ids is not None else len(self.val_set), list(self.val_set.class_names),
                self.config.val_limit, self.config.max_side, self.config.resize]
        return hashlib.sha256(json.dumps(what, default=str).encode()).hexdigest()[:16]

    def seconds(self):
        """The run's training time so far, across resumes (evaluations included)."""
        session = time.perf_counter() - self._session_started if self._session_started is not None else 0.0
        return self.seconds_before + session

    def save_checkpoint(self):
        with self._writing(self.checkpoint_path):
            save_checkpoint(self.checkpoint_path, self.model, self.optimizer, self._state())
        self.checkpoint_iteration = self.iteration

    def _write_failed(self, error):
        """The stop that a file which could not be written makes (io.atomic_write's WeightsError: a full
        disk, a folder made read-only), saying what is kept and how to go on."""
        return TrainingStopped(f"{error}; {self._what_is_kept(once='the file can be written')}")

    def resume(self):
        """Continue from out/checkpoint.h5 if it exists; returns True when it did."""
        if not os.path.exists(self.checkpoint_path):
            return False
        # the checkpoint gives the weights and momentum buffers; this trainer's optimizer keeps the
        # hyperparameters it was made with (the programs restore the run's own unless told otherwise)
        momentum, weight_decay = self.optimizer.momentum, self.optimizer.weight_decay
        state = load_checkpoint(self.checkpoint_path, self.model, self.optimizer)
        self._name_classes()   # (a checkpoint from before the Trainer named them holds none)
        self.optimizer.momentum, self.optimizer.weight_decay = momentum, weight_decay
        self.iteration = state["iteration"]
        self.samples_read = state["samples_read"]
        self.seconds_before = state.get("seconds", 0.0)   # checkpoints of earlier versions did not count them
        self._eval_pending = state.get("eval_pending", False)
        self.best = state.get("best")
        if self.best is not None and state.get("validation") != self._validation_fingerprint():
            why = ("the validation data differ from those of the run's best evaluation" if "validation" in state else
                   "the checkpoint is older than the validation fingerprint, and a folder's split (by a hash of "
                   "each name since) may have moved images between training and validation")
            self.log(f"note: {why} (mean IU {self.best['mean_iu']:.4f} at iteration {self.best['iteration']}): "
                     f"best.h5 starts again at the next evaluation")
            self.best = None
        self.checkpoint_iteration = self.iteration
        self.log(f"resumed from {self.checkpoint_path} at iteration {self.iteration}")
        return True

    @contextlib.contextmanager
    def folder_claimed(self):
        """Hold out/.lock while the block runs: a second run into the same folder (a job started twice, a
        --resume in another terminal) would interleave its checkpoints and log lines with this one's. An
        advisory lock, which the system drops when the process ends, however it ends; none on Windows."""
        try:
            import fcntl
        except ImportError:
            yield
            return
        os.makedirs(self.config.out, exist_ok=True)
        path, lock = os.path.join(self.config.out, ".lock"), None
        try:
            lock = open(path, "a+")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:   # held: by another process, or another run in this one
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise TrainingStopped(in_use(self.config.out, holder)) from None
        except OSError as error:   # a file system without locks (some network mounts), a .lock not ours
            if lock is not None:
                lock.close()
            self.log(f"note: {path} cannot be locked ({os_reason(error)}): nothing stops a second run into "
                     f"{self.config.out} meanwhile")
            yield
            return
        with lock:
            lock.truncate(0)
            lock.write(str(os.getpid()))
            lock.flush()
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def work_left(self):
        """Whether run() has anything to do: steps before max_iter, an evaluation that met bad data, or
        final.h5 to write (a full disk refused it)."""
        return (self.iteration < self.config.max_iter or self._eval_pending
                or not os.path.exists(os.path.join(self.config.out, "final.h5")))

    def _truncate_log(self):
        """Drop log lines written after the checkpoint (they will be written again)."""
        if not os.path.exists(self.log_path):
            return
        records = []
        with open(self.log_path) as file:
            for line in file:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:   # a line cut off by a kill or a full disk: drop it
                    continue
        # (an evaluation pending at the checkpoint's iteration is done again: a record of it left by a run
        # stopped before its checkpoint would be there twice)
        kept = [r for r in records if r.get("iteration", 0) < self.iteration or (
            r.get("iteration", 0) == self.iteration and not (self._eval_pending and r.get("type") == "eval"))]

        def write(temporary):
            with open(temporary, "w") as file:
                file.writelines(json.dumps(r) + "\n" for r in kept)
        with self._writing(self.log_path):   # atomically: a full disk must not empty the log of the whole run
            atomic_write(self.log_path, write)

    def _remove_stale_temporary_files(self):
        """A run killed while saving (kill -9, power loss) leaves the temporary file it was writing; the
        file it was to replace is intact (io.atomic_write). This run owns the folder now: remove them."""
        stale = [name for name in os.listdir(self.config.out)
                 if name.startswith(TEMPORARY_PREFIX) and name.endswith((".h5", ".jsonl"))]
        for name in stale:
            os.remove(os.path.join(self.config.out, name))
        if stale:
            self.log(f"removed {len(stale)} temporary file(s) left in {self.config.out} by an interrupted save")

    def _install_signal_handlers(self, previous):
        """Ctrl-C and SIGTERM ask the loop to stop (a second one stops it at once); the handlers replaced
        go into `previous`, as they are replaced, for run's finally to put back."""
        def request_stop(signum, frame):
            if self._closing:   # the loop is over (its finally is cleaning up): nothing left to stop but
                if self._joining:   # the wait for a loader stuck in load() (its thread is a daemon)
                    raise KeyboardInterrupt
                return
            if self._stop_signal is not None:  # a second signal: stop now
                self._second_signal = signum
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum)
            self.log(f"\n{self._stop_signal.name} received: finishing this iteration, then saving a checkpoint (an "
                     f"evaluation under way is left for the resumed run; a second signal stops at once, keeping "
                     f"the last checkpoint instead)")
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, request_stop)
            except ValueError:  # not in the main thread
                pass

    # ---- the loop ----------------------------------------------------------------------------
    def run(self):
        """Train until max_iter; returns the final metrics dict (or None with no val set). A checkpoint in
        out/ is another run's unless resume() took it up: refused, not overwritten."""
        config = self.config
        config.validate()   # a field may have been set since the trainer was made
        if self.checkpoint_iteration is None and os.path.exists(self.checkpoint_path):
            raise TrainingStopped(f"{config.out} already holds a run ({self.checkpoint_path}): call resume() "
                                  f"first to continue it, or choose another out")
        if self.iteration > config.max_iter:
            raise ValueError(f"TrainConfig.max_iter is {config.max_iter}, below the iteration of the checkpoint "
                             f"resumed ({self.iteration}): nothing to train")
        self._remove_stale_temporary_files()
        # log lines written after the checkpoint resumed from (or, on a fresh start, by a run killed before
        # its first checkpoint) will be written again: drop them
        self._truncate_log()
        first_step = self.samples_read
        # endless: with --skip-bad, how many reads the remaining steps need depends on how many are skipped
        prefetch = Prefetcher(lambda k: self._sample_at(first_step + k), None, depth=4)
        previous_handlers = {}
        self._stop_signal = self._second_signal = None   # (a run stopped before, in this process, is over)
        self._closing = self._joining = False
        bar = None
        metrics = None
        try:
            self._install_signal_handlers(previous_handlers)
            if config.progress:
                from tqdm import tqdm
                bar = tqdm(total=config.max_iter, initial=self.iteration, unit="it", dynamic_ncols=True,
                           desc="train")
            samples_iter = iter(prefetch)
            running = RunningAverage()
            started = self._session_started = time.perf_counter()
            images_done = skipped_in_a_row = 0
            first_skipped = None
            if self._eval_pending:   # resumed after an evaluation that met bad data or a stop: do it now
                metrics = self._evaluate_and_log()
                if not self._eval_pending:   # done: a checkpoint says so, or a later resume would do it again
                    self.save_checkpoint()
                self._stop_if_asked(finished=self.iteration >= config.max_iter)
            while self.iteration < config.max_iter:
                samples = []
                step_start = self.samples_read
                while len(samples) < config.accumulate:
                    try:
                        sample, label = next(samples_iter)
                    except DataError as error:   # a bad training sample must not cost the training done so far
                        self.samples_read = step_start   # the resumed run redoes this step from its first image
                        raise self._stopped_by_bad_data(error, f"in the training data after iteration "
                                                               f"{self.iteration}") from None
                    self.samples_read += 1
                    if sample is None:
                        skipped_in_a_row += 1
                        # a run of bad samples spans two epochs at most while one good sample is left
                        if skipped_in_a_row >= 2 * len(self.train_set):
                            name = getattr(self.train_set, "name", "the training set")
                            raise TrainingStopped(f"every training sample of {name} was skipped as bad "
                                                  f"(the first: {first_skipped or label})")
                        first_skipped = first_skipped or label
                        self._note_skipped(label)
                        continue
                    skipped_in_a_row = 0
                    samples.append((sample, label))
                self.optimizer.lr = learning_rate(self.base_lr, config.lr_policy, self.iteration, config.max_iter)
                with numpy.errstate(over="ignore", invalid="ignore"):   # a diverging step: the check below says it
                    loss = self._step(samples)
                if not math.isfinite(loss):
                    raise TrainingStopped(
                        f"loss became {loss} at iteration {self.iteration + 1}: stopping; the last good checkpoint "
                        f"is {self.checkpoint_path if os.path.exists(self.checkpoint_path) else 'not written yet'} "
                        f"(try a lower --lr)")
                self.iteration += 1
                images_done += len(samples)
                smoothed_loss = running.add(loss)
                elapsed = time.perf_counter() - started
                # "time" counts the whole run's training seconds, across resumes
                self._append_log({"iteration": self.iteration, "loss": loss, "lr": self.optimizer.lr,
                                  "time": round(self.seconds(), 3)})
                if bar is not None:
                    bar.set_postfix(loss=f"{smoothed_loss:.4g}", img_s=f"{images_done / max(elapsed, 1e-9):.2f}")
                    bar.update(1)
                finished = self.iteration >= config.max_iter
                if (config.eval_every and self.iteration % config.eval_every == 0) or finished:
                    metrics = self._evaluate_and_log()
                if (config.checkpoint_every and self.iteration % config.checkpoint_every == 0) or finished:
                    self.save_checkpoint()
                self._stop_if_asked(finished)
            if bar is not None:
                bar.close()
            self.finish()   # (under the handlers still: a signal now lets final.h5 be written)
        except KeyboardInterrupt:   # a second signal: no checkpoint now, the last one kept
            raise TrainingStopped(f"interrupted at iteration {self.iteration}, without saving: "
                                  f"{self._what_is_kept()}", signal_number=self._second_signal or signal.SIGINT) \
                from None
        finally:
            self._closing = True   # a signal now must not replace what is raised
            self.seconds_before, self._session_started = self.seconds(), None   # the clock stops with the loop
            self._joining = True
            try:
                prefetch.close()
            except KeyboardInterrupt:   # a signal cut the wait short: the loader is left to end by itself
                pass
            self._joining = False
            if bar is not None:
                bar.close()
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        return metrics

    def _stop_if_asked(self, finished):
        """After an iteration (or the evaluation a resumed run begins with): where a signal asked for a stop,
        save a checkpoint (unless this iteration's is saved) and stop. At the last iteration there is
        nothing to stop, unless its evaluation was abandoned."""
        if self._stop_signal is None or (finished and not self._eval_pending):
            return
        if self.checkpoint_iteration != self.iteration:   # (this iteration's, if written, holds eval_pending)
            self.save_checkpoint()
        left = " (its evaluation is left for the resumed run)" if self._eval_pending else ""
        raise TrainingStopped(f"stopped by {self._stop_signal.name} at iteration {self.iteration}{left}; checkpoint saved "
                              f"to {self.checkpoint_path}: to continue, rerun with {self._resume_options()}",
                              signal_number=self._stop_signal)

    def _what_is_kept(self, once=None):
        """Where a stopped run can go on from, in words; once: what must be so first ("the file can be
        written")."""
        first = f"once {once}, " if once else ""
        if self.checkpoint_iteration is None:
            return f"no checkpoint was written yet: {first}start the run again"
        return (f"the checkpoint of iteration {self.checkpoint_iteration} is kept: {first or 'to continue, '}rerun "
                f"with {self._resume_options()}")

    def _note_skipped(self, message):
        """--skip-bad: count a sample skipped as bad; the first time, log why."""
        if message not in self.skipped:
            self.log(f"skipped: {message}")
        self.skipped[message] = self.skipped.get(message, 0) + 1

    def _resume_options(self):
        """What the programs need to go on from the checkpoint: the run's other options come from it."""
        return f"--resume --out {shlex.quote(self.config.out)}"

    def _stopped_by_bad_data(self, error, where):
        """Save a checkpoint and say how to go on: the stop that bad data (a DataError) makes."""
        self.save_checkpoint()
        return TrainingStopped(f"{error}; met {where}, checkpoint saved to {self.checkpoint_path}: fix it or "
                               f"pass --skip-bad, then rerun with {self._resume_options()}")

    def _evaluate_and_log(self):
        if self.val_set is None or len(self.val_set) == 0:
            return None
        try:
            matrix = self.evaluate(stop=lambda: self._stop_signal is not None)
        except DataError as error:   # a bad validation sample must not cost the training done so far
            self._eval_pending = True
            raise self._stopped_by_bad_data(error, f"evaluating at iteration {self.iteration}") from None
        if matrix is None:   # abandoned for a stop signal: the resumed run does it first
            self._eval_pending = True
            return None
        empty = matrix.why_empty()
        if empty:   # nothing to measure: metrics of NaN would only hide it
            self._eval_pending = True
            self.save_checkpoint()
            name = getattr(self.val_set, "name", "the validation set")
            raise TrainingStopped(f"no validation pixel of {name} could be evaluated at iteration {self.iteration}: "
                                  f"{empty}; checkpoint saved to {self.checkpoint_path}: fix the validation data, "
                                  f"then rerun with {self._resume_options()}")
        metrics = matrix.metrics(self.val_set.class_names)
        record = {"iteration": self.iteration, "type": "eval",
                  **{k: metrics[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fwiu")}}
        if matrix.n_classes == 2:
            from .metrics import binary_metrics
            binary = binary_metrics(matrix.matrix)
            record.update({key: binary[key] for key in ("precision", "recall", "f1", "iou")})
        self._eval_pending = False
        for message in matrix.skipped:   # --skip-bad: validation samples skipped
            self._note_skipped(message)
        self._append_log(record)
        summary = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if isinstance(v, float))
        self.log(f"iteration {self.iteration}: {summary}")
        self._write_progress_images()
        self._keep_if_best(record["mean_iu"])
        self.last_metrics = dict(metrics, **{k: record[k] for k in record if k not in metrics})
        return self.last_metrics

    def _keep_if_best(self, mean_iu):
        """best.h5: the weights of the evaluation with the highest mean IU so far (the last one may not
        be the best: a late learning rate or a noisy validation set can lower it)."""
        if mean_iu is None or math.isnan(mean_iu) or (self.best is not None and mean_iu <= self.best["mean_iu"]):
            return
        self.best = {"mean_iu": float(mean_iu), "iteration": self.iteration}
        self._save_weights("best.h5", best_mean_iu=self.best["mean_iu"], best_iteration=self.iteration)

    def _save_weights(self, name, **attributes):
        """out/<name> with what predict and evaluate read besides the weights (see finish)."""
        config = self.config
        largest_side = max(config.resize) if config.resize else config.max_side   # (resize wins: fit_size)
        path = os.path.join(config.out, name)
        with self._writing(path):
            save_weights(self.model, path, extra_attributes={"train_max_side": int(largest_side),
                                                             "train_resize": list(config.resize) if config.resize
                                                             else None,
                                                             "training_options": json.dumps(config.options),
                                                             **attributes})

    def finish(self):
        """Write final.h5 (with the training images' largest side, which predict and evaluate then
        default to: a network sees objects at the scale it learnt them; and the run's options, whose
        data options evaluate defaults to) and the curves."""
        self._save_weights("final.h5")
        from .plots import plot_training_curves
        curves = os.path.join(self.config.out, "curves.png")
        with self._writing(curves):
            plot_training_curves(self.log_path, curves, log=self.log)
