"""The command-line programs' arguments and set-up, shared by examples/train_voc.py,
examples/evaluate_voc.py and examples/predict.py (which only call main_* here). The data
options they share are in data/options.py, the argument types that refuse impossible
numbers in argtypes.py, how a run's options are saved and restored (--resume) in
run_options.py.

Every expected failure (bad data, bad weights, no GPU, a NaN loss) ends the program
with one line on stderr and exit status 2, not a traceback.
"""
import argparse
import copy
import json
import math
import os
import sys
import warnings

from PIL import Image

from . import backend
from .data.errors import DataError
from .data.folder import LISTED_EXTENSIONS, image_files, no_images_problem, unnamed_classes
from .argtypes import COUNT, COUNT_OR_ZERO, POSITIVE, POSITIVE_OR_ZERO, OneLineParser, checked_number, size_pair
from .data.options import (DATA_OPTIONS, DATA_SOURCE_OPTIONS, add_data_arguments, data_root_used, datasets_from_args,
                           uses_folders)
from .errors import UsageError, count, os_reason
from .io import WeightsError, atomic_write, cannot_write_in
from .models.fcn import FCN_ARCHITECTURES
from .predictions import check_outputs, output_names, output_stems
from .visualize import palette_with
from .run_options import (NOT_GIVEN, PATH_OPTIONS, RUN_OPTIONS, TRAIN_DATA_OPTIONS, fill_not_given,
                          parse_noting_given, restore_run_options, restore_training_data_options, saved_data_option)


class OutputOutlivingItsReader:
    """The programs' sys.stdout and sys.stderr (tqdm's bars): where the program reading one stops (| head -3,
    2>&1 | head), what follows goes nowhere and the program goes on, for its real output is files (weights,
    pictures, metrics): a BrokenPipeError stopped training without a checkpoint, and evaluate before its --json."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._to_nowhere()
            return len(text)

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._to_nowhere()

    def _to_nowhere(self):
        try:   # the file descriptor too: Python flushes it again at exit
            nowhere = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(nowhere, self.stream.fileno())
            finally:
                os.close(nowhere)
        except (OSError, ValueError, AttributeError):
            self.stream = open(os.devnull, "w")

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run_main(main, argv=None):
    """Call main(argv); turn the expected failures into one line on stderr and exit status 2."""
    from .train import TrainingStopped
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = OutputOutlivingItsReader(sys.stdout), OutputOutlivingItsReader(sys.stderr)
    try:
        with warnings.catch_warnings():
            # Pillow warns, in a raw two-line warning, of any image over 89 million pixels as a possible
            # decompression bomb; predict notes a large photo in its own words, and one twice that
            # size is refused in one line (images.open_image)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return main(argv) or 0
    except (DataError, WeightsError, backend.BackendError, UsageError, TrainingStopped) as error:
        signal_number = getattr(error, "signal_number", None)   # a stop asked for (Ctrl-C): no error
        print(str(error) if signal_number else f"error: {error}", file=sys.stderr)
        return 128 + signal_number if signal_number else 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()   # (here, where a closed pipe is caught: not at exit, where it is reported)
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


# the installed commands (setup.cfg's console_scripts), the same programs as examples/*.py
def train_command():
    sys.exit(run_main(main_train))


def evaluate_command():
    sys.exit(run_main(main_evaluate))


def predict_command():
    sys.exit(run_main(main_predict))


# a metrics file is a few kilobytes; a larger file at the --json path is no earlier run's metrics
LARGEST_JSON_REPLACED = 2**20


def replaceable_json(path, keys):
    """Whether the file at path may be replaced by a program's JSON: an empty file, or a JSON object (of
    at most LARGEST_JSON_REPLACED bytes) with every one of `keys`, those the program writes."""
    if not os.path.isfile(path):   # (a pipe or a device: never read)
        return False
    try:
        with open(path, "rb") as file:
            text = file.read(LARGEST_JSON_REPLACED + 1)
        document = json.loads(text) if text.strip() else {key: None for key in keys}
    except (OSError, ValueError):   # (UnicodeDecodeError is a ValueError)
        return False
    return len(text) <= LARGEST_JSON_REPLACED and isinstance(document, dict) and set(keys) <= set(document)


def check_json_output(path, option, keys, what):
    """Before any long work: the folder that the JSON file `path` is to be written in must exist and take
    files, and a file already there is replaced only if it is `what` (a JSON object with `keys`): a
    mistyped --json must not turn the weights, a mask or a colour table into a page of metrics."""
    if not path:
        raise UsageError(f"{option} is empty: give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):   # (a file's folder is not made: a typo in it would go unseen)
        raise UsageError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a folder, not a file name")
    problem = cannot_write_in(folder)
    if problem:
        raise UsageError(f"{option} {path}: {problem}")
    if os.path.lexists(path) and not replaceable_json(path, keys):
        raise UsageError(f"{option} {path}: a file is there that is not {what}, and this would replace it: "
                         f"give another name")


def refuse_empty(args, keys, what="a path"):
    """An empty value (--images "", a shell variable that was not set) would otherwise mean "not given"."""
    for key in keys:
        if getattr(args, key, None) == "":
            raise UsageError(f"--{key.replace('_', '-')} is empty: give {what}")


def check_output_folder(folder, option, what):
    """Before any long work: `folder` is a folder that takes files, or one that can be made."""
    if not folder:
        raise UsageError(f"{option} is empty: give a folder for {what}")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{option} {folder} is a file: give a folder for {what}")
    problem = cannot_write_in(folder)
    if problem:
        raise UsageError(f"{option} {folder}: {problem}")


def report_skipped(messages, what):
    """--skip-bad: one line for the samples skipped, naming the first (messages: one per sample)."""
    if messages:
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        print(f"skipped {len(messages)} {what}: {messages[0]}{more}")


def report_dropped(dataset):
    """--skip-bad: say which listed samples a dataset dropped when it was read (files missing)."""
    report_skipped(getattr(dataset, "skipped", None) or [], f"listed sample(s) of {dataset.name}")


DEVICE_HELP = "auto: the GPU when CuPy finds one, else the CPU (default: $FCNLITE_DEVICE, else auto)"


def default_device():
    """The device of a program not given --device: the environment's FCNLITE_DEVICE (as for a library
    user), else auto; UsageError for a value that is not a device."""
    name = os.environ.get("FCNLITE_DEVICE", "auto")
    if name.lower() not in backend.ALIASES:
        raise UsageError(f"FCNLITE_DEVICE={name!r} is not a device: set auto, cpu or gpu (or give --device)")
    return name


def choose_device(name):
    backend.use(name or default_device())   # backend's errors then name the device as the user did
    if backend.name() == "numpy":
        backend.reuse_host_memory()
    print(backend.describe())


# ---- training ----------------------------------------------------------------------------------

class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help, unless the help says its default itself, the option
    is a switch, or its default is None (filled in later by a preset or the reference recipe)."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0 or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def train_parser():
    from .presets import PRESETS
    parser = OneLineParser(
        prog="train_voc.py", description="Train an FCN (Long et al. 2015) on PASCAL VOC or your own images.",
        formatter_class=DefaultsHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--download", action="store_true", help="fetch VOC 2012 trainval into --data-root first")
    parser.add_argument("--split", default="train", help="training split (VOC: train/trainval; SBD: train)")
    parser.add_argument("--val-split", default="val", help="validation split (with --sbd-root: seg11valid)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a named small recipe (quickstart: CPU minutes)")
    parser.add_argument("--model", choices=FCN_ARCHITECTURES, default=None,
                        help="architecture (default: an FCN --init's own, fcn8s-atonce with a VGG16 --init, "
                             "else fcn8s)")
    parser.add_argument("--width", type=POSITIVE, default=None,
                        help="channel width multiplier (1.0 = VGG16; default 1.0, or the preset's; the init file's "
                             "own width before either)")
    parser.add_argument("--init", help="VGG16 weights (weights/convert_vgg16.py) or a trained coarser FCN")
    parser.add_argument("--learnable-upsampling", action="store_true", default=None,
                        help="train the upscore layers too")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default=None, help=DEVICE_HELP)
    parser.add_argument("--lr", type=POSITIVE_OR_ZERO, default=None,
                        help="learning rate (default: the reference's for the model and loss normalisation)")
    parser.add_argument("--lr-policy", choices=("fixed", "poly"), default=None,
                        help="fixed (reference; the default) or poly: decay as (1 - iteration/max_iter)^0.9")
    parser.add_argument("--momentum", type=checked_number(float, "a number from 0 up to (not including) 1",
                                                          least=0, below=1), default=None, help="default 0.99 (reference)")
    parser.add_argument("--weight-decay", type=POSITIVE_OR_ZERO, default=None, help="default 5e-4 (reference)")
    parser.add_argument("--loss-normalize", dest="loss_normalize", action="store_true", default=None,
                        help="average the loss over pixels")
    parser.add_argument("--no-loss-normalize", dest="loss_normalize", action="store_false",
                        help="sum the loss over pixels (reference)")
    parser.add_argument("--accumulate", type=COUNT, default=None,
                        help="images per optimizer step, their gradients averaged: the batch size, as the FCN has "
                             "no batch normalization (default 1)")
    parser.add_argument("--max-iter", type=COUNT, default=None, help="optimizer steps (default 100000)")
    parser.add_argument("--epochs", type=POSITIVE, default=None, help="instead of --max-iter: passes over the data")
    parser.add_argument("--eval-every", type=COUNT_OR_ZERO, default=None, help="evaluate every N steps (default 4000)")
    parser.add_argument("--val-limit", type=COUNT_OR_ZERO, default=None,
                        help="evaluate on the first N val images only (default: all)")
    parser.add_argument("--checkpoint-every", type=COUNT_OR_ZERO, default=None, help="default 4000")
    parser.add_argument("--out", default=None, help="output folder (default runs/<model>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out's checkpoint, with the run's options (its data options too) "
                             "unless given again")
    parser.add_argument("--seed", type=COUNT_OR_ZERO, default=None,
                        help="seed of the data order, augmentation and initialisation (default 0)")
    parser.add_argument("--max-side", type=COUNT_OR_ZERO, default=None,
                        help="downscale images whose longer side exceeds this (default: no limit, or the preset's)")
    parser.add_argument("--resize", type=size_pair, default=None, help="resize every image to HxW, e.g. 224x224")
    parser.add_argument("--crop", type=COUNT_OR_ZERO, default=None,
                        help="random square crop of this size (default 0: none)")
    parser.add_argument("--scale", type=POSITIVE, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="random scaling range, e.g. 0.5 2.0")
    parser.add_argument("--no-flip", action="store_true", default=None, help="no random horizontal flips")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def init_defaults(path):
    """The model and width an --init file starts by default: an FCN file's own architecture (fine-tuning
    FCN-8s weights as FCN-8s at once would scale its skips), and the reference's one-stage fcn8s-atonce
    from VGG16; the file's width (a model of another cannot take its weights). A file that cannot be
    read is reported when it is loaded."""
    from .io import read_attributes
    try:
        attributes = read_attributes(path)
    except (WeightsError, OSError):
        attributes = {}
    architecture = attributes.get("architecture")
    return {"model": architecture if architecture in FCN_ARCHITECTURES else "fcn8s-atonce",
            "width": float(attributes.get("width", 1.0))}


# FCN-8s's parameters at width 1 (VGG16's 134 million and the score layers); a width w has about w^2 times
# as many, for they are almost all convolution weights of w*C_in x w*C_out
PARAMETERS_AT_WIDTH_1 = 134.3e6


def check_model_fits(width):
    """A --width far above 1 (--width 100: 1.3 trillion parameters) would have the system kill the
    program while it fills its memory: refuse a model whose weights, gradients and momentum alone (float32,
    three copies) exceed the machine's memory. Only on the CPU, whose memory the system shares out; a GPU
    refuses an allocation too large for it, which build_model's caller turns into one line."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):   # not on this system (Windows): leave it to the allocator
        return
    needed = PARAMETERS_AT_WIDTH_1 * width ** 2 * 4 * 3
    if backend.name() == "numpy" and needed > memory:
        raise UsageError(f"--width {width:g}: a model of about {PARAMETERS_AT_WIDTH_1 * width ** 2 / 1e9:,.1f} "
                         f"billion parameters needs {needed / 2 ** 30:,.0f} GiB for its weights, gradients and "
                         f"momentum alone, and this machine has {memory / 2 ** 30:,.0f} GiB (--width 1 is VGG16's)")


def resolve_options(args):
    """Fill the options left unset: preset first, then the reference recipe."""
    from .presets import PRESETS, reference_lr
    preset_name = args.preset or ("quickstart" if args.synthetic else "road" if args.synthetic_road else None)
    preset = dict(PRESETS[preset_name]) if preset_name else {}
    defaults = dict(width=1.0, lr_policy="fixed", momentum=0.99, weight_decay=5e-4, loss_normalize=False, accumulate=1,
                    max_iter=100000, eval_every=4000, checkpoint_every=4000, max_side=0, resize=None,
                    learnable_upsampling=False, val_limit=0, seed=0, crop=0, no_flip=False)
    init = init_defaults(args.init) if args.init else {}
    defaults["model"] = init.get("model", "fcn8s")
    if args.width is None and init:   # before a preset's width too: no other width can take the file's weights
        args.width = init["width"]
    for key, value in {**defaults, **preset}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.lr is None:
        args.lr = preset.get("lr") or reference_lr(args.model, args.loss_normalize)
    args.preset = preset_name
    return args


def run_folder(args):
    return args.out or os.path.join("runs", args.model if not args.preset else f"{args.preset}-{args.model}")


def start_or_resume(trainer, resume, out):
    """--resume: take up the run in `out` where its checkpoint left it; else check that `out` holds no
    earlier run to overwrite. Returns False where a resumed run is finished already (nothing to do)."""
    if not resume:
        if os.path.exists(trainer.checkpoint_path):
            raise UsageError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        # a run whose checkpoint was deleted to save room: its weights are still worth keeping (a log
        # alone is a run killed before it wrote any weights, which the new run starts again)
        left = [name for name in ("final.h5", "best.h5") if os.path.exists(os.path.join(out, name))]
        if left:
            raise UsageError(f"{out} holds {' and '.join(left)} of an earlier run (and no checkpoint to resume): "
                             f"choose another --out, or move them away first")
        return True
    if not trainer.resume():
        raise UsageError(f"--resume: {out} holds no checkpoint to continue")
    max_iter = trainer.config.max_iter
    done = (f"--resume: {out}'s checkpoint is at iteration {trainer.iteration}, and the run stops at "
            f"--max-iter {max_iter}: nothing to train (give a larger --max-iter to go on)")
    if trainer.iteration > max_iter:
        raise UsageError(done)
    if not trainer.work_left():   # a finished run: not an error
        print(f"note: {done}; its weights: {os.path.join(out, 'final.h5')}")
        return False
    return True


def start_from_init(model, path, width, class_names):
    """--init: the weights of `path` that fit the model (a VGG16's encoder, or a trained FCN's layers of
    the same shapes), at the same width; a warning where its score layers were trained on classes named
    otherwise than the data's (class_names), which they then stand for one by one."""
    import numpy
    from .io import load_weights, read_attributes
    attributes = read_attributes(path)
    init_width = float(attributes.get("width", 1.0))
    if not numpy.isclose(init_width, width):
        raise UsageError(f"{path}: weights of width {init_width} cannot start a model of width {width} "
                         f"(pass --width {init_width})")
    report = load_weights(model, path, strict=False)
    print(f"init: {len(report['loaded'])} tensors from {path}")
    saved_names = attributes.get("class_names")
    trained = [str(name) for name in saved_names] if isinstance(saved_names, (list, tuple)) else []
    unnamed = (unnamed_classes(len(trained)), unnamed_classes(len(class_names)))
    if "score_fr/W" in report["loaded"] and trained != class_names and trained not in unnamed \
            and class_names not in unnamed:
        print(f"warning: {path} scores the classes {', '.join(trained)}; the data's are {', '.join(class_names)}: "
              f"its score layers start from the first, class by class (give the data's classes in the weights' "
              f"order to keep what they learnt)")
    # (load_weights gave the model the file's class names and colours: the Trainer gives it the data's)


def main_train(argv=None):
    from . import rng
    from .data.preprocess import TORCHVISION_PREPROCESSING
    from .metrics import format_number
    from .models import build_model
    from .optim import SGD
    from .train import TrainConfig, Trainer

    args, data_defaults = parse_noting_given(train_parser(), argv, TRAIN_DATA_OPTIONS)
    data_given = any(getattr(args, key) is not NOT_GIVEN for key in DATA_SOURCE_OPTIONS)
    refuse_empty(args, PATH_OPTIONS + ("init",))
    refuse_empty(args, ("split", "val_split"), "a split's name")
    if args.epochs is not None and args.max_iter is not None:
        raise UsageError("give --epochs or --max-iter, not both (--epochs sets the number of iterations)")
    if args.scale and args.scale[0] > args.scale[1]:
        raise UsageError(f"--scale MIN MAX: MIN {args.scale[0]:g} is larger than MAX {args.scale[1]:g}")
    if args.resume:   # the run's folder, as its options would name it: the preset's, or the model's
        out = run_folder(resolve_options(fill_not_given(copy.copy(args), data_defaults)))
        restore_run_options(args, data_defaults, out)
    fill_not_given(args, data_defaults)
    lr_given = args.lr is not None   # on the command line, or by the run resumed
    args = resolve_options(args)
    if not args.init and not lr_given and not args.preset:
        print(f"warning: training from scratch (no --init) at the reference's learning rate {args.lr:g}, which "
              f"is meant for VGG16's weights: the model will barely move. Give --init (weights/README.md), "
              f"--preset quickstart, or your own --lr with --loss-normalize")
    choose_device(args.device)
    try:
        train_set, val_set = datasets_from_args(args)
    except DataError as error:
        if args.resume and error.problem.endswith("does not exist") and not data_given:
            gone = [key for key in PATH_OPTIONS if getattr(args, key)
                    and os.path.abspath(getattr(args, key)) == os.path.abspath(error.path)]
            options = " ".join(f"--{key.replace('_', '-')}" for key in gone) or "them"
            raise DataError(error.path, f"{error.problem} (--resume took the run's data options: where the data "
                                        f"moved, give {options} anew, and the options of its other folders)") from None
        raise
    if len(train_set) == 0:
        raise UsageError(f"the training split of {train_set.name} is empty")
    print(f"data: {train_set.name}: {len(train_set)} training, {count(len(val_set), 'validation image')}, "
          f"{count(train_set.n_classes, 'class', 'classes')}")
    report_dropped(train_set)
    report_dropped(val_set)
    if args.accumulate > len(train_set):
        print(f"note: --accumulate {args.accumulate} sums more images per step than the training set holds "
              f"({len(train_set)}): each step reads some of them more than once")
    if args.epochs is not None:
        args.max_iter = max(1, math.ceil(args.epochs * len(train_set) / args.accumulate))
    out = run_folder(args)
    check_output_folder(out, "--out", "the run")
    if train_set.n_classes < 2:
        fix = ("with --others ignore, choose two classes or more"
               if (args.classes or (args.synthetic_road and not args.class_map)) and args.others == "ignore"
               else "check --class-names and --class-map")
        raise UsageError(f"{train_set.name}: a model needs two classes at least, and these options leave "
                         f"{train_set.n_classes} ({', '.join(train_set.class_names)}): {fix}")

    rng.seed(args.seed)
    check_model_fits(args.width)
    try:
        model = build_model(args.model, n_classes=train_set.n_classes, width=args.width,
                            learnable_upsampling=args.learnable_upsampling)
    except MemoryError:   # NumPy's "Unable to allocate", CuPy's OutOfMemoryError
        device = "GPU" if backend.name() == "cupy" else "CPU"
        raise UsageError(f"--width {args.width:g}: the model does not fit in the {device}'s memory (its size grows "
                         f"as the width squared)") from None
    # A network trained from scratch learns fastest from inputs of unit scale; weights
    # loaded with --init bring the preprocessing they were trained with.
    model.preprocessing = dict(TORCHVISION_PREPROCESSING)
    if args.init:
        start_from_init(model, args.init, args.width, list(train_set.class_names))
    optimizer = SGD(model, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    config = TrainConfig(out=out, max_iter=args.max_iter, accumulate=args.accumulate,
                         loss_normalize=args.loss_normalize, lr_policy=args.lr_policy, eval_every=args.eval_every,
                         checkpoint_every=args.checkpoint_every, val_limit=args.val_limit, seed=args.seed,
                         flip=not args.no_flip, scale_range=tuple(args.scale) if args.scale else None,
                         crop_size=args.crop, max_side=args.max_side, resize=args.resize,
                         progress=not args.no_progress,
                         options={**{key: getattr(args, key) for key in RUN_OPTIONS},
                                  **{key: saved_data_option(key, getattr(args, key)) for key in TRAIN_DATA_OPTIONS},
                                  # the default root too: evaluate and --resume run from elsewhere find it
                                  "data_root": saved_data_option("data_root", data_root_used(args))},
                         extra={"preset": args.preset, "data": train_set.name})
    trainer = Trainer(model, optimizer, train_set, val_set, config)
    with trainer.folder_claimed():
        if not start_or_resume(trainer, args.resume, out):
            return 0
        print(f"training {args.model} (width {args.width}, {model.parameter_count():,} parameters) for "
              f"{args.max_iter} iterations, lr {args.lr:g} ({args.lr_policy}), momentum {args.momentum}, "
              f"loss {'averaged' if args.loss_normalize else 'summed'} over pixels; output in {out}/")
        metrics = trainer.run()
    if trainer.skipped:
        print(f"skipped {count(len(trainer.skipped), 'bad sample')} (listed in the log above)")
    if metrics:
        print(f"final: mean IU {metrics['mean_iu']:.4f}, pixel accuracy {metrics['pixel_accuracy']:.4f}"
              + (f", foreground IoU {format_number(metrics['iou'])}" if "iou" in metrics else ""))
        if "iou" in metrics and metrics["iou"] is None:
            print(f"warning: no pixel of {model.class_names[1]!r} in the validation masks or the predictions: "
                  f"check the class options (--classes, --class-map, --mask-format)")
    print(f"weights: {os.path.join(out, 'final.h5')}")
    if trainer.best is not None and trainer.best["iteration"] != trainer.iteration:
        print(f"best: mean IU {trainer.best['mean_iu']:.4f} at iteration {trainer.best['iteration']}: "
              f"{os.path.join(out, 'best.h5')}")
    return 0


# ---- evaluation --------------------------------------------------------------------------------

def evaluate_parser():
    parser = OneLineParser(prog="evaluate_voc.py",
                                     description="Evaluate saved FCN weights with the FCN paper's metrics.")
    parser.add_argument("--weights", required=True, help="an HDF5 file written by train_voc.py (final.h5)")
    add_data_arguments(parser)
    parser.add_argument("--split", default="val", help="split to evaluate (VOC: val; with --sbd-root: seg11valid; "
                                                       "folder data: val or train)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default=None, help=DEVICE_HELP)
    parser.add_argument("--max-side", type=COUNT_OR_ZERO, default=None,
                        help="downscale images whose longer side exceeds this (default: as in training; 0: never)")
    parser.add_argument("--resize", type=size_pair, default=None, help="resize every image to HxW")
    parser.add_argument("--limit", type=COUNT_OR_ZERO, default=0, help="evaluate the first N images only")
    # at most 1000: beta squared must stay finite, and there F-beta weighs false positives a millionth (it is recall)
    parser.add_argument("--beta", type=checked_number(float, "a number from 0 to 1000", least=0, most=1000),
                        default=1.0, help="two classes: beta of the foreground F-beta score")
    parser.add_argument("--json", help="also write the metrics to this JSON file (an earlier evaluation's is "
                                       "replaced; any other file there is kept, and the run refused)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (as train_voc.py)")
    return parser


def training_max_side(args, attributes):
    """--max-side, or where not given the largest side of the images the weights were trained on (the
    scale a network learns its objects at; attributes: the weight file's), said in a note; 0: no limit."""
    if args.max_side is not None:
        return args.max_side
    side = int(attributes.get("train_max_side", 0))
    if side:
        print(f"note: {args.weights} was trained on images of at most {side} pixels a side: larger ones are "
              f"downscaled to that (--max-side 0 keeps them whole)")
    return side


def training_resize(args, attributes):
    """--resize, or where neither it nor --max-side is given the size every image was resized to in
    training (train_resize: the run's own evaluations were at that size), said in a note; else None."""
    if args.resize is not None or args.max_side is not None or not attributes.get("train_resize"):
        return args.resize
    height, width = (int(side) for side in attributes["train_resize"])
    print(f"note: {args.weights} was trained on images resized to {height}x{width}: so are these "
          f"(--max-side 0 keeps them whole)")
    return height, width


def class_names_to_show(model, dataset, weights):
    """The names evaluate's table gives the classes: the data options' where they name them, else those
    the weights were trained with (unnamed masks count classes as class0, class1, ...)."""
    names = list(dataset.class_names)
    if not model.class_names or list(model.class_names) == names:
        return names
    if names == unnamed_classes(len(names)):
        return list(model.class_names)
    trained = [name.casefold() for name in model.class_names]
    for index, name in enumerate(names):   # the same class under another number: scored as the wrong one
        if trained.count(name.casefold()) == 1 and trained.index(name.casefold()) != index:
            raise UsageError(f"{weights} was trained on classes {', '.join(model.class_names)}, in that order; the "
                             f"data options number them {', '.join(names)}: each class would be scored as another "
                             f"(the model's class {trained.index(name.casefold())} is {name}, the data's is class "
                             f"{index}): give the classes in the training's order, on data of those classes")
    print(f"warning: {weights} was trained on classes named {', '.join(model.class_names)}; the data options "
          f"name them {', '.join(names)}: the table uses the data's names")
    return names


# the keys of evaluate's --json that an earlier evaluation's file holds too (metrics.ConfusionMatrix.metrics)
METRICS_KEYS = ("pixel_accuracy", "mean_iu")


def main_evaluate(argv=None):
    from .evaluate import evaluate_dataset
    from .metrics import binary_metrics, format_metrics

    args, defaults = parse_noting_given(evaluate_parser(), argv, DATA_OPTIONS + ("split",))
    data_defaults = {key: value for key, value in defaults.items() if key != "split"}
    refuse_empty(args, PATH_OPTIONS + ("weights",))
    refuse_empty(args, ("split",), "a split's name")
    if args.json is not None:
        check_json_output(args.json, "--json", METRICS_KEYS, "an earlier evaluation's metrics")
    choose_device(args.device)
    model, attributes = segmentation_model_from_file(args.weights)
    if all(getattr(args, key) is NOT_GIVEN for key in DATA_SOURCE_OPTIONS):
        restore_training_data_options(args, attributes, data_defaults)
    fill_not_given(args, defaults)
    args.resize = training_resize(args, attributes)
    args.max_side = 0 if args.resize else training_max_side(args, attributes)
    args.val_split = args.split
    folder_data = uses_folders(args)
    if folder_data and args.split not in ("val", "train"):
        raise UsageError(f"--split {args.split}: folder data has two splits, val (--val-fraction or --split-file, "
                         f"as in training) and train")
    if folder_data and args.split == "train":
        dataset, _ = datasets_from_args(args, need_train=True)
    else:
        _, dataset = datasets_from_args(args, need_train=False)
    if dataset.n_classes != model.n_classes:
        raise UsageError(f"{args.weights}: the model predicts {model.n_classes} classes but {dataset.name} has "
                         f"{dataset.n_classes} (use the same class options as in training)")
    if len(dataset) == 0:
        raise UsageError(f"{dataset.name}: no images to evaluate")
    class_names = class_names_to_show(model, dataset, args.weights)   # (before the evaluation: it may refuse)
    evaluated = min(len(dataset), args.limit or len(dataset))
    print(f"data: {dataset.name}{f': the first {evaluated} (--limit)' if evaluated < len(dataset) else ''}")
    report_dropped(dataset)
    matrix = evaluate_dataset(model, dataset, max_side=args.max_side, resize=args.resize, limit=args.limit or None,
                              progress=not args.no_progress)
    report_skipped(matrix.skipped, "bad image(s)")
    empty = matrix.why_empty()
    if empty:
        raise UsageError(f"{dataset.name}: no pixel could be evaluated: {empty}")
    metrics = matrix.metrics(class_names)
    # what the figures are of, in the JSON too (less the images --skip-bad skipped)
    metrics.update(data=dataset.name, images=evaluated - len(matrix.skipped))
    if args.skip_bad:   # both kinds: listed but missing, and present but unreadable
        metrics["skipped"] = len(getattr(dataset, "skipped", None) or []) + len(matrix.skipped)
    if dataset.n_classes == 2:
        binary = binary_metrics(matrix.matrix, positive=1, beta=args.beta)
        metrics.update(binary)
    print(format_metrics(metrics))
    if args.json:
        def write(temporary):
            with open(temporary, "w") as file:
                json.dump(metrics, file, indent=2)
        atomic_write(args.json, write)   # a full disk is one line, and leaves no half-written file
        print(f"metrics written to {args.json}")
    return 0


# ---- prediction --------------------------------------------------------------------------------

def predict_parser():
    parser = OneLineParser(prog="predict.py", description="Segment your own images with saved FCN weights.")
    parser.add_argument("--weights", required=True, help="an HDF5 file written by train_voc.py (final.h5)")
    parser.add_argument("images", nargs="+", help=f"image files (any size), or folders of them ({LISTED_EXTENSIONS})")
    parser.add_argument("--out", default="predictions", help="output folder (default: predictions)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default=None, help=DEVICE_HELP)
    parser.add_argument("--max-side", type=COUNT_OR_ZERO, default=None,
                        help="downscale images whose longer side exceeds this first (the labels come back at the "
                             "image's size; default: as in training; 0: never)")
    parser.add_argument("--resize", type=size_pair, default=None,
                        help="resize every image to HxW first (the labels come back at the image's size; default: "
                             "as in training, for a run trained with --resize)")
    parser.add_argument("--alpha", type=checked_number(float, "an opacity between 0 and 1", least=0, most=1),
                        default=0.5, help="overlay opacity")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write each pixel's class probabilities, <name>_probabilities.npy (classes x H x W, "
                             "float16; the labels are then their most probable classes), and for two classes "
                             "<name>_foreground.png (class 1's, 0..255), to threshold")
    return parser


# predict.py's note on memory, which grows with the pixel count: a 2000x1500 photo took 3.7 GB
# through a width-1 FCN-8s on the CPU
BIG_IMAGE_PIXELS = 2000 * 1500


def image_paths(arguments):
    """predict.py's image arguments with each folder replaced by its image files, in name order; a
    file named twice (also through its folder) is segmented once. DataError for a missing path."""
    paths = []
    for argument in arguments:
        if os.path.isdir(argument):
            names = image_files(argument)
            if not names:
                raise DataError(argument, no_images_problem(argument, "image", "name the sub-folders themselves"))
            paths.extend(os.path.join(argument, name) for name in names)
        elif os.path.exists(argument):
            paths.append(argument)
        elif os.path.islink(argument):   # exists() follows the link, and finds nothing at its end
            raise DataError(argument, f"a link to {os.readlink(argument)}, which is not there (or links back)")
        else:
            raise DataError(argument, "no such image file or folder")
    unique, seen = [], set()
    for path in paths:
        if os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            unique.append(path)
    return unique


def segmentation_model_from_file(path):
    """(model, the file's attributes): the FCN a weight file holds, for evaluate and predict; UsageError,
    before the arrays are read, for VGG16's weights (an encoder, for train --init)."""
    from .io import load_weights, model_described_by, read_attributes
    attributes = read_attributes(path)
    if str(attributes.get("architecture", "")).lower() == "vgg16":
        raise UsageError(f"{path} holds VGG16's weights (ImageNet classification), not a segmentation model: "
                         f"train an FCN from them (train_voc.py --init {path}) and give its final.h5")
    model = model_described_by(attributes, path)
    load_weights(model, path, strict=True)
    return model, attributes


def main_predict(argv=None):
    from .data.folder import MAX_CLASSES

    args = predict_parser().parse_args(argv)
    refuse_empty(args, ("weights",))
    if "" in args.images:
        raise UsageError("an image argument is empty: give a file or a folder")
    check_output_folder(args.out, "--out", "the predictions")
    paths = image_paths(args.images)
    stems = output_stems(paths)
    check_outputs(args.out, args.images, paths, stems, args.probabilities)
    choose_device(args.device)
    model, attributes = segmentation_model_from_file(args.weights)
    if model.n_classes > MAX_CLASSES:   # (evaluate's data hold no more: it says the counts differ)
        raise UsageError(f"{args.weights}: the model scores {model.n_classes} classes, more than predict's 8-bit "
                         f"label maps hold (at most {MAX_CLASSES}, 0..{MAX_CLASSES - 1}: {MAX_CLASSES} is void): "
                         f"segment with fcnlite.evaluate.predict_image in Python instead")
    args.resize = training_resize(args, attributes)
    args.max_side = 0 if args.resize else training_max_side(args, attributes)
    try:
        os.makedirs(args.out, exist_ok=True)
        unreadable = segment_images(model, paths, stems, args)
    except OSError as error:   # a full disk, a folder made read-only: the pictures written so far stay
        raise UsageError(f"cannot write {error.filename or args.out} ({os_reason(error)})") from None
    if unreadable and len(paths) > 1:
        raise UsageError(f"{len(unreadable)} of {count(len(paths), 'image')} could not be read (listed above); "
                         f"the others were segmented")
    return 2 if unreadable else 0


def segment_images(model, paths, stems, args):
    """predict.py's work: each image's labels and overlay (and probabilities) into args.out, a line
    each; returns the paths of the images that could not be read (each said on stderr)."""
    import numpy
    from PIL import Image
    from .data.images import read_image
    from .evaluate import predict_image, predict_probabilities
    from .predictions import earlier_outputs, resized_probabilities, save_marked_png, save_probabilities
    from .train import fit_size
    from .visualize import label_picture, legend, overlay

    names = model.class_names or [f"class {i}" for i in range(model.n_classes)]
    palette = palette_with(model.n_classes, model.class_colors)
    unreadable, stale = [], []
    for path, stem in zip(paths, stems):
        try:
            image = read_image(path)
        except DataError as error:   # one bad file must not stop a folder of photos: say so, go on
            print(f"error: {error}", file=sys.stderr)
            unreadable.append(path)
            continue
        height, width = image.shape[:2]
        if height * width >= BIG_IMAGE_PIXELS and not (args.max_side or args.resize):
            print(f"note: {path} is {width}x{height}: the network's memory and time grow with the pixel count "
                  f"(gigabytes at this size); --max-side {max(height, width) // 2} downscales it first")
        fitted = fit_size(image, None, args.resize, args.max_side)[0]
        outputs = {key: os.path.join(args.out, name) for key, name in output_names(stem, args.probabilities).items()}
        written = {outputs["labels"], outputs["overlay"]}
        if args.probabilities:   # one pass: the labels are the most probable classes of the file written
            probabilities = resized_probabilities(predict_probabilities(model, fitted), (height, width))
            labels = probabilities.argmax(axis=0).astype(numpy.uint8)
            written |= save_probabilities(probabilities, outputs)
        else:
            labels = predict_image(model, fitted)
        if labels.shape != (height, width):   # --max-side, --resize: the labels go back to the photo's own size
            labels = numpy.asarray(Image.fromarray(labels).resize((width, height), Image.NEAREST))
        save_marked_png(label_picture(labels, palette), outputs["labels"])
        present = [int(i) for i in numpy.unique(labels)]
        blended = Image.fromarray(overlay(image, labels, palette, alpha=args.alpha))
        key = legend(names, palette, present)
        canvas = Image.new("RGB", (blended.width + key.width, max(blended.height, key.height)), "white")
        canvas.paste(blended, (0, 0))
        canvas.paste(key, (blended.width, 0))
        save_marked_png(canvas, outputs["overlay"])
        stale += earlier_outputs(args.out, stem, written)
        print(f"{path}: {', '.join(names[i] for i in present)} -> {outputs['labels']}, {outputs['overlay']}")
    if stale:
        one = len(stale) == 1
        print(f"note: {count(len(stale), 'file')} that an earlier run wrote ({stale[0]}{'' if one else ', ...'}) "
              f"{'lies' if one else 'lie'} beside labels this run wrote anew: {'it' if one else 'they'} may be "
              f"another model's")
    return unreadable
