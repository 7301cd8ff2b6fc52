"""The options that define a training run, saved with it and restored from it.

A run saves its options (RUN_OPTIONS, and its data options with their paths made absolute) in
its checkpoints and in final.h5 and best.h5. `train_voc.py --resume` takes from the checkpoint
every option the command line leaves out, and lists those given anew; `evaluate_voc.py` without
data options takes the data the weights were trained on. So that an option left out can be told
from one given at its default value, the parser leaves the data options NOT_GIVEN
(parse_noting_given) until fill_not_given puts the defaults in.
"""
import argparse
import os

from .data.options import DATA_OPTIONS
from .errors import UsageError


# The options that define a training run: saved in its checkpoints, so that --resume can take
# those not given again from the run itself
RUN_OPTIONS = ("model", "width", "learnable_upsampling", "lr", "lr_policy", "momentum", "weight_decay",
               "loss_normalize", "accumulate", "max_iter", "eval_every", "checkpoint_every", "val_limit", "seed",
               "max_side", "resize", "crop", "scale", "no_flip")
# and the data options (data/options.py), with train_voc.py's splits
TRAIN_DATA_OPTIONS = DATA_OPTIONS + ("split", "val_split")
NOT_GIVEN = object()   # what the parser leaves in a data option the command line did not name
# Data options that exclude one another: one given anew replaces the run's others of its group
# (each group's members are units of options that go together)
EXCLUSIVE_DATA_OPTIONS = ((("classes",), ("class_map",)),
                          (("val_fraction",), ("split_file",), ("val_images", "val_masks")))
PATH_OPTIONS = ("data_root", "sbd_root", "images", "masks", "color_table", "split_file", "val_images", "val_masks")


def parse_noting_given(parser, argv, keys):
    """(args, defaults): parse_args, with the options `keys` that the command line did not name left
    NOT_GIVEN (not at their defaults), so that --resume can tell an option given as its default from
    one left out; and those options' defaults, for fill_not_given."""
    args = parser.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(keys, NOT_GIVEN)))
    return args, {key: parser.get_default(key) for key in keys}


def fill_not_given(args, defaults):
    for key, value in defaults.items():
        if getattr(args, key) is NOT_GIVEN:
            setattr(args, key, value)
    return args


def option_text(key, value):
    """How a run option is written on the command line: --max-iter 6, --no-flip, --resize 64x80."""
    option = "--" + key.replace("_", "-")
    if key == "loss_normalize":
        return "--loss-normalize" if value else "--no-loss-normalize"
    if isinstance(value, bool) or value is None:
        return option if value else f"no {option}"
    if key == "resize":
        return f"{option} {value[0]}x{value[1]}"
    if key == "scale":
        return f"{option} {value[0]:g} {value[1]:g}"
    return f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}"


def saved_run_options(path):
    """The run options a checkpoint was written with. Checkpoints of earlier versions (before the
    options were saved) give what their training config and optimizer recorded."""
    from .checkpoint import read_checkpoint_state
    state = read_checkpoint_state(path)
    config = state.get("config", {})
    if config.get("options"):
        return config["options"]
    options = {key: config[key] for key in ("max_iter", "accumulate", "loss_normalize", "lr_policy", "eval_every",
                                            "checkpoint_every", "val_limit", "seed", "max_side", "resize")
               if key in config}
    options.update(crop=config.get("crop_size"), scale=config.get("scale_range"))
    if "flip" in config:
        options["no_flip"] = not config["flip"]
    options.update({key: state["optimizer"][key] for key in ("momentum", "weight_decay")
                    if key in state.get("optimizer", {})})
    return options


def restore_run_options(args, data_defaults, out):
    """--resume of the run in folder `out`: the options not given on the command line take the run's
    values (from its checkpoint); those given anew apply from the checkpoint on, and are listed. A model
    of another shape is refused. Data options left NOT_GIVEN take the run's too (checkpoints of earlier
    versions did not save them)."""
    path = os.path.join(out, "checkpoint.h5")
    if not os.path.exists(path):   # a run's defaults are a 100,000-step VGG16: never start one unasked
        from .train import folder_user, in_use
        user = folder_user(out)
        if user is not None:   # (a run still before its first checkpoint)
            raise UsageError(in_use(out, user))
        raise UsageError(f"--resume: {out} holds no checkpoint to continue (a run stopped before its first "
                         f"checkpoint, or by a second Ctrl-C, left none): leave out --resume to start there"
                         f"{other_runs_hint(out) if args.out is None else ''}")
    if getattr(args, "init", None):   # (it loaded its weights, which the checkpoint's then replaced)
        raise UsageError(f"--init {args.init}: {out}'s checkpoint holds the run's weights, which --resume goes on "
                         f"from: leave out --init (or start a new run from it in another --out)")
    saved = saved_run_options(path)
    _, changed = restore_data_options(args, saved, data_defaults)
    if args.loss_normalize is not None and "loss_normalize" in saved and args.lr is None \
            and args.loss_normalize != saved["loss_normalize"]:
        raise UsageError(f"{option_text('loss_normalize', args.loss_normalize)} changes the loss's scale by the "
                         f"pixel count, and the run's --lr was for the other: give --lr with it")
    if args.epochs is not None and "max_iter" in saved:
        changed.append(f"--epochs {args.epochs:g} (it sets --max-iter anew; the run had {saved['max_iter']})")
    for key in RUN_OPTIONS:
        if key not in saved or (key == "max_iter" and args.epochs is not None):
            continue
        value = saved[key]
        if key in ("resize", "scale") and value is not None:
            value = tuple(value)
        given = getattr(args, key)
        if given is None:
            setattr(args, key, value)
            continue
        given = tuple(given) if key == "scale" else given
        if given == value:
            continue
        if key in ("model", "width"):
            raise UsageError(f"{out} holds a run of {saved['model']} at width {saved['width']:g}: "
                             f"{option_text(key, given)} cannot resume it (leave out --model and --width)")
        changed.append(f"{option_text(key, given)} (the run had {option_text(key, value)})")
    if changed:
        print(f"note: resuming {out} with options that differ from the run's, from its checkpoint on: "
              + ", ".join(changed))


def saved_data_option(key, value):
    """A data option as a run saves it: paths made absolute, so that --resume and evaluate_voc.py
    find the same files from another working directory."""
    if value and (key in PATH_OPTIONS or (key in ("class_names", "split", "val_split") and os.path.isfile(value))):
        return os.path.abspath(value)
    return value


def data_kind(options):
    """Which data source options choose: "folders", "road", "synthetic", "voc"; None where they
    do not say (--data-root alone serves VOC and the generated data alike)."""
    if options.get("images") or options.get("masks"):
        return "folders"
    if options.get("synthetic_road"):
        return "road"
    if options.get("synthetic"):
        return "synthetic"
    return "voc" if options.get("sbd_root") else None


def restore_data_options(args, saved, data_defaults):
    """The data options left out take the run's values (saved: the options a run saved), except where
    those given anew choose another kind of data (then none of the run's are taken but --skip-bad) or
    an option that excludes them (EXCLUSIVE_DATA_OPTIONS). Returns (restored, changed): the run's
    values taken, and those that differ from the run's (given anew, or dropped), as text."""
    if not any(key in saved for key in data_defaults):   # a checkpoint of an earlier version
        return [], []
    given = {key: getattr(args, key) for key in data_defaults if getattr(args, key) is not NOT_GIVEN}
    dropped = set()
    kind = data_kind(given)
    if kind is not None and kind != (data_kind(saved) or "voc"):
        # other data: the run's classes, splits and mask options were for its own
        dropped.update(key for key in data_defaults if key != "skip_bad")
    for group in EXCLUSIVE_DATA_OPTIONS:
        for unit in group:
            if any(key in given for key in unit):
                dropped.update(key for other in group if other is not unit for key in other)
    restored, changed = [], []
    for key, default in data_defaults.items():
        value = saved.get(key, default)
        if key in given:
            if saved_data_option(key, given[key]) != value:
                changed.append(f"{option_text(key, given[key])} (the run had {option_text(key, value)})")
        elif key in dropped:
            setattr(args, key, default)
            if value != default:
                changed.append(f"{option_text(key, default)} (the run had {option_text(key, value)})")
        else:
            setattr(args, key, value)
            if value != default:
                restored.append(option_text(key, value))
    return restored, changed


def other_runs_hint(out):
    """Without --out, the run folder follows the preset (runs/quickstart-fcn8s): name the runs that could be meant."""
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        return ""
    runs = sorted(os.path.join(parent, name) for name in os.listdir(parent)
                  if os.path.exists(os.path.join(parent, name, "checkpoint.h5")))
    return f"; checkpoints are in {', '.join(runs)} (pass --out to resume one)" if runs else ""


def restore_training_data_options(args, attributes, data_defaults):
    """evaluate_voc.py without data source options: the data options the weights were trained with
    (final.h5 records them in its attributes), so that the default split is the run's own validation
    split (its --val-split, where --split is left out), read as in training."""
    import json
    saved = json.loads(attributes.get("training_options", "{}"))
    restored, _ = restore_data_options(args, saved, data_defaults)
    voc_layout = data_kind(saved) in (None, "voc", "synthetic")   # folder data has no named splits
    if voc_layout and args.split is NOT_GIVEN and saved.get("val_split") not in (None, "val"):
        args.split = saved["val_split"]
        restored.append(f"--split {args.split} (its --val-split)")
    if restored:
        print(f"note: the data {args.weights} was trained on: {' '.join(restored)} (give data options for other data)")
