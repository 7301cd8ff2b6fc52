"""The data options that train_voc.py and evaluate_voc.py share (fcnlite/cli.py builds their
parsers): which dataset (PASCAL VOC, SBD, the generated ones, your own folders), which classes,
and the checks that make bad data a one-line error before any work.
"""
import os

from ..argtypes import FRACTION, checked_number
from ..errors import UsageError, count
from .classes import IGNORE_INDEX
from .errors import DataError

DEFAULT_DATA_ROOT = "data"
DEFAULT_VAL_FRACTION = 0.1
SYNTHETIC_VOC_ROOT = os.path.join("data", "synthetic-voc")
SYNTHETIC_ROAD_ROOT = os.path.join("data", "synthetic-road")


# The data options, saved with a training run so that --resume and evaluate_voc.py find the same
# data unasked. The source options say which data: given anew for data of the same kind (the
# data moved, say), the run's others stay; for another kind, none of the run's data options do
# (run_options.restore_data_options).
DATA_SOURCE_OPTIONS = ("data_root", "sbd_root", "synthetic", "synthetic_road", "images", "masks")
DATA_OPTIONS = DATA_SOURCE_OPTIONS + ("mask_format", "mask_channel", "color_table", "class_names", "classes",
                                      "class_map", "others", "val_fraction", "split_file", "val_images",
                                      "val_masks", "skip_bad")


def add_data_arguments(parser):
    group = parser.add_argument_group("data (PASCAL VOC layout, or your own folders)")
    group.add_argument("--data-root", default=None,
                       help=f"folder holding VOCdevkit/VOC2012 (default: {DEFAULT_DATA_ROOT})")
    group.add_argument("--sbd-root", help="SBD (benchmark_RELEASE) folder: train on SBD, validate on seg11valid")
    group.add_argument("--synthetic", action="store_true",
                       help="use the generated VOC-layout quickstart data (made on first use; no download)")
    group.add_argument("--images", help="your own images folder (pair with --masks)")
    group.add_argument("--masks", help="your own masks folder, files paired with images by stem")
    group.add_argument("--synthetic-road", action="store_true",
                       help="use the generated driving-scene data (road vs rest; made on first use)")
    group.add_argument("--mask-format", choices=("index", "channel", "color"), default=None,
                       help="index: class ids as pixel values; channel: id in one RGB channel; color: colour table "
                            "(default index; channel for --synthetic-road)")
    group.add_argument("--mask-channel", type=checked_number(int, "0, 1, 2 or 3 (red, green, blue, alpha)", least=0,
                                                             most=3),
                       default=0, help="channel holding the class id (default 0: red)")
    group.add_argument("--color-table", help="for --mask-format color: a JSON file of class name -> [r, g, b], "
                                             "in class order")
    group.add_argument("--class-names",
                       help="class names: a JSON list, a .txt file of one per line, or comma-separated names")
    group.add_argument("--classes", help="keep only these classes, e.g. 'road' or 'road,vehicle' (others: background)")
    group.add_argument("--class-map", help="explicit source:target map, e.g. '7:1,6:1,*:0', or with the classes "
                                            "named: '0:background,255:road'")
    group.add_argument("--others", choices=("background", "ignore"), default="background",
                       help="with --classes: what the unselected classes become")
    group.add_argument("--val-fraction", type=FRACTION, default=DEFAULT_VAL_FRACTION,
                       help=f"folder data: fraction held out (default {DEFAULT_VAL_FRACTION})")
    group.add_argument("--split-file", help="folder data: file of validation ids (the rest trains)")
    group.add_argument("--val-images", help="folder data already split: the validation images' own folder (with "
                                            "--val-masks); every image of --images then trains")
    group.add_argument("--val-masks", help="the validation masks' folder, paired with --val-images by stem")
    group.add_argument("--skip-bad", action="store_true", help="skip and count bad samples instead of stopping")
    group.add_argument("--no-skip-bad", dest="skip_bad", action="store_false", default=False,
                       help="stop at a bad sample (the default; for a run resumed from one that skipped)")
    return group


def _class_names_from_arg(text):
    if text is None:
        return None
    from .folder import MAX_CLASSES, load_class_names, repeated_name
    if os.path.exists(text):
        return load_class_names(text)
    looks_like_a_file = text.lower().endswith((".json", ".txt")) or os.sep in text or (os.altsep and os.altsep in text)
    if looks_like_a_file and "," not in text:   # ("road,car/truck" names two classes)
        raise DataError(text, "no such file")   # a file meant, not one class of that name
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise UsageError(f"--class-names '{text}' has an empty name: each class needs one (names go between "
                         f"commas, e.g. 'background,road')")
    if len(names) > MAX_CLASSES:
        raise UsageError(f"--class-names names {len(names)} classes: at most {MAX_CLASSES} fit an 8-bit label map")
    repeated = repeated_name(names)
    if repeated is not None:
        raise UsageError(f"--class-names names {repeated!r} twice: each class needs a name of its own")
    return names


def value_ranges(values):
    """[1, 2, 3, 7] -> "1..3, 7"."""
    runs = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(f"{first}..{last}" if last > first else f"{first}" for first, last in runs)


def _folder_datasets(args, images, masks, mask_format, source_names, training, assumed_driving_classes=False):
    from .folder import FolderSegmentation, describe_folder, load_color_table, split_by_fraction
    from .images import read_split
    check_apart(images, masks, "--images", "--masks")
    if mask_format == "color" and not args.color_table:
        raise UsageError("--mask-format color needs --color-table (a JSON file: class name -> [r, g, b])")
    if mask_format == "color":   # the table names the classes (and --classes may use those names)
        table_names = load_color_table(args.color_table).names
        if source_names is not None and list(source_names) != list(table_names):
            raise UsageError(f"--class-names ({', '.join(source_names)}) differs from the classes of "
                             f"{args.color_table} ({', '.join(table_names)}): the colour table names them; "
                             f"leave --class-names out")
        source_names = table_names
    common = dict(mask_format=mask_format, mask_channel=args.mask_channel, color_table=args.color_table,
                  class_names=source_names, skip_bad=args.skip_bad)
    val_folders = _val_folders(args, images)
    everything = FolderSegmentation(images, masks, **common)   # with no names, it reads every mask for the classes
    if assumed_driving_classes:   # as often as not, the masks are not the simulator's: say so
        print(f"note: --mask-format channel without --class-names takes the driving simulator's "
              f"{len(source_names)} classes ({', '.join(source_names)}); give --class-names for classes of your own")
    held_out = FolderSegmentation(*val_folders, **common) if val_folders else None
    for folder in (everything, held_out):
        if folder is not None:
            report_folder(folder)
    if held_out is not None and everything.mask_values is not None:
        check_validation_classes(everything, held_out)
    # the values the masks hold: all of them where the masks were read for the classes (or for the classes
    # taken unasked), else a sample
    if assumed_driving_classes and training:   # (evaluate meets a stray value as it goes)
        print(f"note: reading the {len(everything)} masks for values past those classes (--class-names reads a "
              f"sample)")
        seen = everything.scan_masks()
        seen_all = True
    else:
        seen = known_mask_values(everything)
        seen_all = everything.mask_values is not None
    if held_out is not None:
        for value, paths in known_mask_values(held_out).items():
            seen.setdefault(value, []).extend(paths)
    try:
        class_map = class_map_from_args(args, everything.source_class_names)
    except ValueError as error:
        check_binary_masks(seen, seen_all, None, masks, args, mask_format, everything)   # 255 explains a class not found
        unnamed = " (the masks' classes have no names: give --class-names to choose them by name)" \
            if source_names is None else ""
        raise UsageError(f"{error}{unnamed}") from None
    check_binary_masks(seen, seen_all, class_map, masks, args, mask_format, everything)
    if everything.mask_values is not None and class_map is None:
        check_counted_classes(everything, masks, training)
    if args.class_map and args.class_names is not None:
        check_map_names(class_map, source_names, args.class_map)
    check_mask_values(seen, class_map, everything.source_class_names, args)
    common.update(class_map=class_map, class_names=everything.source_class_names)
    if held_out is not None:   # already split: every image of --images trains
        halves = (FolderSegmentation(images, masks, **common), FolderSegmentation(*val_folders, **common))
        halves[0].skipped = everything.skipped
        return halves
    if args.split_file:
        val_ids = read_split(args.split_file)
        known = set(everything.ids)
        unknown = [i for i in val_ids if i not in known and i not in everything.without_mask]
        if unknown:
            raise DataError(args.split_file, f"id {unknown[0]!r} has no image/mask pair in {images}"
                                             f"{_id_hint(unknown[0], everything.ids)}")
        val_ids = [i for i in val_ids if i in known]   # --skip-bad dropped the others, images without a mask
        if not val_ids:
            raise DataError(args.split_file, f"none of its images has a mask in {masks}: nothing to validate on")
        held_out = set(val_ids)
        train_ids = [i for i in everything.ids if i not in held_out]
        if not train_ids and training:   # evaluating every image is fine
            raise DataError(args.split_file, f"lists every image of {images} for validation: it leaves no image "
                                             f"to train on")
    elif len(everything) < 2:
        raise DataError(images, "holds one image with a mask: too few to hold one out for validation; add "
                                "images, or give validation images of their own (--val-images, --val-masks)")
    else:
        train_ids, val_ids = split_by_fraction(everything.ids, args.val_fraction, seed=0)
    # both halves keep the whole folder's classes (not a count re-derived from their own masks)
    halves = (FolderSegmentation(images, masks, ids=train_ids, **common) if train_ids else None,
              FolderSegmentation(images, masks, ids=val_ids, **common))
    for half in (half for half in halves if half is not None):   # the data line counts the folder's images
        half.name = describe_folder(images, len(everything))
    # images --skip-bad dropped for want of a mask: reported once, with the half the program uses
    halves[0 if training else 1].skipped = everything.skipped
    return halves


def _id_hint(id_, ids):
    """What a split file's id that names no image should be. Ids are stems, as in VOC's lists, never file
    names or paths: one rule (were 'f001.jpg' taken for f001, 'f001.png', its mask's name, would be in doubt)."""
    from .folder import IMAGE_EXTENSIONS
    name = os.path.basename(id_.replace("\\", "/"))
    stem, extension = os.path.splitext(name)
    if extension.lower() not in IMAGE_EXTENSIONS:   # ('img.001' is a stem with a dot in it)
        stem = name
    if stem != id_ and stem in ids:
        return f": ids are file stems, without folder or extension: write {stem!r}"
    return f" (ids are file stems, without folder or extension, such as {ids[0]!r})"


def _val_folders(args, images):
    """(val_images, val_masks) when the data comes split in folders, else None."""
    if not (args.val_images or args.val_masks):
        return None
    if not (args.val_images and args.val_masks):
        raise UsageError("--val-images and --val-masks go together")
    if args.split_file:
        raise UsageError("give --split-file or --val-images/--val-masks, not both: each says which images validate")
    if os.path.realpath(args.val_images) == os.path.realpath(images):
        raise UsageError(f"--val-images names the training images' folder {images}: give the validation "
                         f"images' own folder, or leave it out to hold out --val-fraction of {images}")
    check_apart(args.val_images, args.val_masks, "--val-images", "--val-masks")
    return args.val_images, args.val_masks


def check_apart(images, masks, images_option, masks_option):
    if os.path.realpath(images) == os.path.realpath(masks):
        raise UsageError(f"{images_option} and {masks_option} both name {images}: images and masks pair by file "
                         f"name, so they need a folder each")


def report_folder(folder):
    """Say what the folder pairing left out, and warn of JPEG masks."""
    if folder.masks_without_image:
        unpaired = folder.masks_without_image
        print(f"note: {folder.masks_dir}: {count(len(unpaired), 'mask has', 'masks have')} no image in "
              f"{folder.images_dir} (e.g. {unpaired[0]}): left out")
    jpeg_masks = [name for name in folder.mask_files() if name.lower().endswith((".jpg", ".jpeg"))]
    if jpeg_masks:
        print(f"warning: {folder.masks_dir}: {len(jpeg_masks)} of {len(folder)} masks are JPEG files (e.g. "
              f"{jpeg_masks[0]}): JPEG's lossy compression changes the values near edges (0 and 255 become "
              f"0..255); save masks as PNG")


def check_validation_classes(training, validation):
    """Unnamed classes are counted from the training masks: a larger value in the validation masks
    would be a class the model does not have."""
    largest = len(training.source_class_names) - 1
    if validation.mask_values is not None and len(validation.source_class_names) - 1 > largest:
        raise UsageError(f"{validation.largest_value_path}: value {len(validation.source_class_names) - 1} is "
                         f"larger than any in the training masks {training.masks_dir} (at most {largest}), so the "
                         f"model would have no such class: give --class-names to fix the classes")


def check_map_names(class_map, source_names, text):
    """--class-names names the mask values; a numbered --class-map that also maps values past those
    names would make a class called by its bare value ("255"): the map can name its classes itself."""
    if source_names is None or class_map.named_targets:
        return
    unnamed = sorted(source for source, target in class_map.mapping.items()
                     if source >= len(source_names) and target != IGNORE_INDEX)
    if unnamed:
        raise UsageError(f"--class-names names mask values 0..{len(source_names) - 1}, and --class-map '{text}' "
                         f"maps {unnamed[0]} too, which no name covers: name the classes in the map instead, "
                         f"e.g. --class-map '0:background,{unnamed[0]}:foreground', and leave --class-names out")


def known_mask_values(folder, sample=16):
    """{value: [the masks holding it]} over the masks, where they were all read (for the class count), else
    over a sample spread over the folder: it catches what most masks hold (only 0 and 255, say)."""
    import numpy
    if folder.mask_values is not None:
        return {value: list(paths) for value, paths in folder.mask_values.items()}
    return folder.scan_masks(sorted(set(numpy.linspace(0, len(folder) - 1, min(sample, len(folder))).astype(int))))


def holds_other_values(folder, values):
    """Whether a mask of folder holds a value not in `values`, reading masks until one does (a sample
    may have missed the few masks with a class in them; one that cannot be read is load's to report)."""
    return any(not set(folder.scan_masks([index])) <= values for index in range(len(folder)))


def check_binary_masks(seen, seen_all, class_map, masks, args, mask_format, folder):
    """Masks of only 0 and 255 with no class map that names 255: every pixel of the foreground would be
    ignored (255 is 'ignore', as VOC's outlines), whichever classes --classes or a map choose among the
    rest. (A colour table's 255 is a colour it calls void: meant.) seen_all: `seen` covers every mask of
    folder, not a sample of them."""
    if mask_format == "color" or IGNORE_INDEX not in seen or not set(seen) <= {0, IGNORE_INDEX}:
        return
    if class_map is not None and IGNORE_INDEX in class_map.mapping:
        return
    if not seen_all and holds_other_values(folder, {0, IGNORE_INDEX}):
        return
    selected = [name.strip() for name in (args.classes or "").split(",") if name.strip()]
    foreground = selected[0] if len(selected) == 1 and not selected[0].isdigit() else "foreground"
    example = f"--class-map '0:background,255:{foreground}'"
    if args.class_map:
        fix = f"name 255 in --class-map ('*' leaves it ignored), e.g. {example}"
    else:
        fix = f"pass {example}{' instead of --classes' if args.classes else ''}"
    named = " (name the foreground as you like)" if foreground == "foreground" else ""
    raise UsageError(f"{masks}: the masks hold only 0 and 255, and 255 means 'ignore' (VOC's outlines): for "
                     f"foreground masks of 0 and 255, {fix}{named}")


def check_mask_values(seen, class_map, source_names, args):
    """A value in the masks that no class is made of would stop the training at the first mask holding
    it, after the run began: say so now, with what to add. With --skip-bad, a few such masks are what
    it skips; not most of them, though: nearly nothing would be left to train on."""
    if class_map is not None:
        unmapped = sorted(value for value in seen if not class_map.defined[value])
    else:
        unmapped = sorted(value for value in seen if value >= len(source_names) and value != IGNORE_INDEX)
    if not unmapped:
        return
    bad = {path for value in unmapped for path in seen[value]}
    read = {path for paths in seen.values() for path in paths}
    few = len(bad) * 2 <= len(read)
    if few and args.skip_bad:
        return
    if args.class_map:
        rest = "background" if class_map.named_targets else "0"
        problem = (f"is not in --class-map '{args.class_map}', which leaves mask values {value_ranges(unmapped)} "
                   f"unmapped: add '*:{rest}' (the rest as background) or '*:ignore'")
    elif not args.class_names:   # the channel format's classes, taken unasked
        problem = (f"is past the driving simulator's {len(source_names)} classes (0..{len(source_names) - 1}), "
                   f"which --mask-format channel takes without --class-names: name your classes with --class-names")
    else:
        problem = (f"is past the {len(source_names)} classes that --class-names names (0..{len(source_names) - 1}): "
                   f"name every class the masks hold")
    if few:   # a mask or two may be what is wrong
        problem += f"; or, if the masks holding it ({len(bad)} of the {len(read)} read) are wrong, fix them " \
                   f"or pass --skip-bad"
    raise UsageError(f"{seen[unmapped[0]][0]}: value {unmapped[0]} {problem}")


def check_counted_classes(folder, masks, training):
    """When the masks' largest value set the class count: refuse masks with nothing to tell apart, and
    (training) warn of values that never occur below the largest, which a stray pixel would cause."""
    values = [value for value in folder.mask_values if value != 255]
    if max(values, default=0) == 0:   # (masks of 0 and 255 only are check_binary_masks')
        raise UsageError(f"{masks}: every mask is all 0: nothing to tell apart (check --mask-format)")
    largest = values[-1]
    unused = sorted(set(range(largest + 1)) - set(values))
    if unused and training:
        print(f"warning: {masks}: the largest mask value is {largest} (in {folder.largest_value_path}), so the "
              f"model gets {largest + 1} classes, but {value_ranges(unused)} never occur: "
              f"if {largest} is a stray value, fix that mask; --class-names fixes the classes and checks every value")


def data_root_used(args):
    """The folder the data options read VOC-layout or generated data from (their default when
    --data-root is not given); None for your own --images/--masks."""
    if args.images or args.masks:
        return None
    if args.data_root:
        return args.data_root
    return SYNTHETIC_ROAD_ROOT if args.synthetic_road else SYNTHETIC_VOC_ROOT if args.synthetic else DEFAULT_DATA_ROOT


def uses_folders(args):
    """Whether the data options name folders of images and masks (yours, or the generated road scenes)
    rather than a VOC-layout tree."""
    return bool(args.synthetic_road or args.images or args.masks)


def datasets_from_args(args, need_train=True):
    """(train_set, val_set) for the data options; train_set is None when need_train is False."""
    import copy
    from .classmap import DRIVING_CLASSES
    args = copy.copy(args)   # the defaults filled in below (--classes road) stay out of the caller's options
    for option, example in (("classes", "'road' or 'road,vehicle'"), ("class_map", "'7:1,*:0'")):
        if getattr(args, option) is not None and not getattr(args, option).strip():
            raise UsageError(f"--{option.replace('_', '-')} is empty: name what to keep, e.g. {example}")
    if args.classes and args.class_map:
        raise UsageError("give --classes or --class-map, not both (--classes is a short form of a class map)")
    for option, given in (("--sbd-root", args.sbd_root), ("--download", getattr(args, "download", False))):
        if given and (args.synthetic or args.synthetic_road or args.images or args.masks):
            raise UsageError(f"{option} goes with real PASCAL VOC data (--data-root), not with --synthetic, "
                             f"--synthetic-road or --images/--masks")
    if uses_folders(args):
        if args.synthetic_road:
            from .road import ensure_synthetic_road
            root = ensure_synthetic_road(args.data_root or SYNTHETIC_ROAD_ROOT)
            images, masks = os.path.join(root, "CameraRGB"), os.path.join(root, "CameraSeg")
            mask_format = args.mask_format or "channel"
            source_names = _class_names_from_arg(args.class_names) or list(DRIVING_CLASSES)
            if not (args.classes or args.class_map):
                args.classes = "road"
            assumed_driving_classes = False   # the generated scenes are the simulator's classes
        else:
            if not (args.images and args.masks):
                raise UsageError("--images and --masks go together")
            images, masks = args.images, args.masks
            mask_format = args.mask_format or "index"
            source_names = _class_names_from_arg(args.class_names)
            assumed_driving_classes = source_names is None and mask_format == "channel"
            if assumed_driving_classes:   # as the README's CameraSeg example has it
                source_names = list(DRIVING_CLASSES)
        train_set, val_set = _folder_datasets(args, images, masks, mask_format, source_names, need_train,
                                              assumed_driving_classes)
        return (train_set if need_train else None), val_set

    from .voc import VOCSegmentation, find_voc_root
    split_names = (getattr(args, "split", None), getattr(args, "val_split", None))
    if "seg11valid" in split_names and not args.sbd_root:
        raise UsageError("split seg11valid is VOC val minus SBD train: it needs --sbd-root <SBD folder>")
    class_map = voc_class_map(args)   # before any download
    if args.synthetic:
        from .synthetic import ensure_synthetic_voc
        root = ensure_synthetic_voc(args.data_root or SYNTHETIC_VOC_ROOT)
    else:
        root = args.data_root or DEFAULT_DATA_ROOT
        if getattr(args, "download", False):
            from .download import download_voc
            download_voc(root, progress=not getattr(args, "no_progress", False))
        try:
            find_voc_root(root)
        except DataError:
            fetch = ("add --download to fetch it (2 GB)" if hasattr(args, "download")   # train_voc.py has it
                     else f"train_voc.py --download --data-root {root} fetches it (2 GB)")
            raise UsageError(f"no PASCAL VOC 2012 data under {root}/ (expected {root}/VOCdevkit/VOC2012): "
                             f"{fetch}, or --synthetic for the built-in quickstart data") from None
    split = getattr(args, "split", None) or "train"
    val_split = getattr(args, "val_split", None) or "val"
    train_set = None
    if args.sbd_root:
        from .sbd import SBDSegmentation
        if need_train:
            train_set = SBDSegmentation(args.sbd_root, split=split, skip_bad=args.skip_bad)
        if val_split == "val":
            val_split = "seg11valid"
        val_set = VOCSegmentation(root, split=val_split, sbd_root=args.sbd_root, skip_bad=args.skip_bad)
        if val_split == "seg11valid":
            from .sbd import seg11valid_note
            note = seg11valid_note(val_set)
            if note:
                print(note)
    else:
        if need_train:
            train_set = VOCSegmentation(root, split=split, skip_bad=args.skip_bad)
        val_set = VOCSegmentation(root, split=val_split, skip_bad=args.skip_bad)
    if train_set is not None:
        note = shared_images_note(train_set, val_set)
        if note:
            print(note)
    if class_map is not None:
        for dataset in (train_set, val_set):
            if dataset is not None:
                dataset.use_class_map(class_map)
    return train_set, val_set


def shared_images_note(train_set, val_set):
    """One line when validation images are training images too (VOC's trainval holds val, SBD's val
    overlaps seg11valid), else None: the evaluations, and best.h5 picked by them, would then score
    images the model learnt, and say more than it knows. A note, not an error: training on every
    labelled image (for the test server) is a choice."""
    training = set(train_set.ids)
    shared = [sample_id for sample_id in val_set.ids if sample_id in training]
    if not shared:
        return None
    what = "is a training image" if len(shared) == 1 else "are training images"
    return (f"note: {len(shared)} of the {len(val_set)} validation images {what} too "
            f"(e.g. {shared[0]}; validation: {val_set.name}, training: {train_set.name}): the evaluations and "
            f"best.h5 are then measured on images trained on; --split train keeps them apart")


FOLDER_ONLY_OPTIONS = ("mask_format", "mask_channel", "color_table", "class_names", "split_file", "val_images",
                       "val_masks")


def voc_class_map(args):
    """--classes / --class-map on VOC-layout data (PASCAL VOC, SBD, --synthetic): a ClassMap of VOC's
    21 classes, or None. The options that only folders have are refused, not ignored."""
    from .classes import VOC_CLASSES
    given = [key for key in FOLDER_ONLY_OPTIONS if getattr(args, key, None)]
    if getattr(args, "val_fraction", DEFAULT_VAL_FRACTION) != DEFAULT_VAL_FRACTION:
        given.append("val_fraction")
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')} is for your own folders of images and masks (--images, "
                         f"--masks); VOC-layout data has its splits and VOC's 21 classes (choose some with --classes)")
    try:
        class_map = class_map_from_args(args, VOC_CLASSES)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.class_map:
        unmapped = [index for index in range(len(VOC_CLASSES)) if not class_map.defined[index]]
        if unmapped:
            listed = ", ".join(f"{VOC_CLASSES[index]} ({index})" for index in unmapped[:3])
            more = f" and {len(unmapped) - 3} more" if len(unmapped) > 3 else ""
            raise UsageError(f"--class-map '{args.class_map}' leaves VOC's {listed}{more} unmapped: add '*:0' "
                             f"(the rest as background) or '*:ignore'")
    return class_map


def class_map_from_args(args, source_class_names):
    """The ClassMap that --class-map or --classes ask for over these source classes, or None;
    ValueError (one line) for a map that cannot be made."""
    from .classmap import class_map_from_names, parse_class_map
    if args.class_map:
        class_map = parse_class_map(args.class_map, source_class_names)
        reached = set(class_map.mapping.values()) | {class_map.others}
        unreached = [index for index in range(class_map.n_classes) if index not in reached]
        if unreached:   # a warning, not a refusal: a gap may keep the numbers of another model's classes
            print(f"warning: --class-map '{args.class_map}' sends no value to class {value_ranges(unreached)}, "
                  f"which the model gets all the same and never sees: number the classes without a gap, "
                  f"unless that is meant")
        return class_map
    if args.classes:
        return class_map_from_names(args.classes, source_class_names, others=args.others)
    return None
