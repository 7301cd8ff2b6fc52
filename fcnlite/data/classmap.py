"""Class maps: turn a dataset's label values into the classes you want to train on.

A segmentation dataset often labels more classes than a task needs. The driving
simulator labels 13 (see DRIVING_CLASSES), but a road detector wants two: road and
everything else. A ClassMap says, for every source value 0..255, which output
class it becomes (or 255, "ignore": left out of the loss and the metrics).

Two ways to write one:

    parse_class_map("7:1,6:1,*:0")                      # road and road lines -> 1, the rest -> 0
    parse_class_map("road:1,*:ignore", DRIVING_CLASSES) # names work when the source names are known
    class_map_from_names(["road"], DRIVING_CLASSES)     # --classes road: road -> 1, the rest -> 0

The text form is comma-separated `source:target` pairs. A source is a value
0..255 or a source class name; `*` stands for every source value not named
(255 excepted: ignored pixels stay ignored unless a pair names 255). A target
is a class index 0..254 or `ignore` / `void` / `255`; or every target is a name, which
names the class it makes:

    parse_class_map("0:background,255:foreground")      # binary masks of 0 and 255
    parse_class_map("road:road,road_line:road,*:background", DRIVING_CLASSES)

Named classes are numbered in the order they first appear, the `*` class first
(as --classes makes the rest class 0): in both examples background is 0.

Applying a map is one table look-up per pixel: the map keeps a 256-entry table
and `table[labels]` maps a whole uint8 label image at once (NumPy fancy
indexing), so there is no Python loop over pixels.
"""
import re

import numpy

from .classes import IGNORE_INDEX as IGNORE, is_ignore_name, looks_like_ignore

# The driving simulator's 13 classes (CARLA 0.8 semantic segmentation camera; the
# class id is stored in the red channel of CameraSeg images). Short lowercase names,
# so that `--classes road` reads naturally.
DRIVING_CLASSES = [
    "unlabeled",     # 0  None
    "building",      # 1  Buildings
    "fence",         # 2  Fences
    "other",         # 3  Other
    "pedestrian",    # 4  Pedestrians
    "pole",          # 5  Poles
    "road_line",     # 6  RoadLines
    "road",          # 7  Roads
    "sidewalk",      # 8  Sidewalks
    "vegetation",    # 9  Vegetation
    "vehicle",       # 10 Vehicles
    "wall",          # 11 Walls
    "traffic_sign",  # 12 TrafficSigns
]


class ClassMap:
    """A mapping from source label values (0..255) to output classes (0..n_classes-1, or 255).

    mapping:     {source value: target}, target an int 0..254 or 255 (ignore)
    others:      target for every source value not in `mapping` (None: such values are errors)
    class_names: the output classes' names; index = class id (its length is n_classes)
    others_limit: `others` applies only to source values below this (e.g. the number
                 of source classes, so that a stray value 200 is still reported)
    named_targets: describe() writes targets as class names ("0:background,255:road")

    Value 255 maps to 255 unless `mapping` names it.
    """

    def __init__(self, mapping, class_names, others=None, others_limit=IGNORE, named_targets=False):
        self.named_targets = named_targets
        self.mapping = {int(source): int(target) for source, target in mapping.items()}
        self.others = others
        self.class_names = list(class_names)
        self.n_classes = len(self.class_names)
        lowered = [name.lower() for name in self.class_names]
        repeated = sorted({name for name in lowered if lowered.count(name) > 1})
        if repeated:   # a model of two classes of one name: evaluation's table and JSON would show one of them
            raise ValueError(f"class map makes two classes named {repeated[0]!r}: each class needs a name of its own")
        for source, target in list(self.mapping.items()) + [("*", others)]:
            if target is not None and target != IGNORE and not 0 <= target < self.n_classes:
                raise ValueError(f"class map sends {source} to {target}, which is not a class "
                                 f"(0..{self.n_classes - 1}) or 255")
        # table[v] is the output for source value v; `defined[v]` says whether v is mapped at all
        self.table = numpy.full(256, IGNORE, dtype=numpy.uint8)
        self.defined = numpy.zeros(256, dtype=bool)
        if others is not None:
            self.table[:others_limit] = others
            self.defined[:others_limit] = True
        self.table[IGNORE], self.defined[IGNORE] = IGNORE, True
        for source, target in self.mapping.items():
            self.table[source], self.defined[source] = target, True

    def __call__(self, labels):
        return self.apply(labels)

    def apply(self, labels):
        """Map a uint8 label array; raises ValueError naming the first value the map does not cover."""
        labels = numpy.asarray(labels)
        if labels.dtype != numpy.uint8:
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ValueError(f"label values must be 0..255, found {int(labels.min())}..{int(labels.max())}")
            labels = labels.astype(numpy.uint8)
        present = numpy.bincount(labels.ravel(), minlength=256) > 0
        unmapped = numpy.flatnonzero(present & ~self.defined)
        if unmapped.size:
            listed = ", ".join(str(v) for v in unmapped[:5]) + (" ..." if unmapped.size > 5 else "")
            raise ValueError(f"value {unmapped[0]} is not in the class map ({self.describe()}) "
                             f"[unmapped values: {listed}]")
        return self.table[labels]

    def describe(self):
        """The map in the text form parse_class_map reads, e.g. "7:1,6:1,*:0"."""
        def target(value):
            if value == IGNORE:
                return "ignore"
            return self.class_names[value] if self.named_targets else str(value)
        pairs = [f"{source}:{target(value)}" for source, value in self.mapping.items()]
        if self.others is not None:
            pairs.append(f"*:{target(self.others)}")
        return ",".join(pairs)

    def __repr__(self):
        return f"ClassMap({self.describe()!r}, class_names={self.class_names})"


def _source_value(token, source_class_names):
    """A source token -> its value 0..255: a number, or a name looked up in source_class_names."""
    if _is_number(token):
        value = int(token)
        if value > 255:
            raise ValueError(f"class map: source {token!r} is out of range (labels are 0..255)")
        return value
    if source_class_names:
        lowered = [name.lower() for name in source_class_names]
        if token.lower() in lowered:
            return lowered.index(token.lower())
        raise ValueError(f"class map: source {token!r} is neither a number nor a class name "
                         f"({', '.join(source_class_names)})")
    raise ValueError(f"class map: source {token!r} is not a number 0..255 (class names need the dataset's "
                     f"class list)")


def _is_ignore(token):
    return token == "255" or is_ignore_name(token)   # the words a colour table takes for ignore too


def _is_number(token):
    return token.isascii() and token.isdigit()


NUMBER_LIKE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _looks_numeric(token):
    """'-1', '1.5', '1e3': meant as numbers, not names; refused rather than made into classes."""
    return NUMBER_LIKE.fullmatch(token) is not None


def _target_value(token, pair):
    if _is_ignore(token):
        return IGNORE
    value = int(token)
    if value > 254:
        raise ValueError(f"class map: target {token!r} in {pair!r} is out of range (0..254, or 255/ignore)")
    return value


def _named_classes(pairs):
    """[(source token, target name)] -> the class names in index order: in order of first appearance,
    the '*' pair's class first, so that 'the rest' is class 0 as with --classes. Names match
    case-insensitively ('Road' and 'road' are one class, named as first written)."""
    ordered = sorted(pairs, key=lambda pair: pair[0] != "*")   # a stable sort: the rest keep their order
    names = {}
    for _, target in ordered:
        if not _is_ignore(target):
            names.setdefault(target.lower(), target)
    return list(names.values())


def _source_name(value, source_class_names):
    if source_class_names and value < len(source_class_names):
        return source_class_names[value]
    return str(value)


def parse_class_map(text, source_class_names=None, class_names=None):
    """Read a map such as "7:1,6:1,*:0" or "0:background,255:road" (see the module docstring);
    returns a ClassMap.

    With numbered targets n_classes is the largest target + 1, and the output names,
    unless given, are made from the source names mapped to each class ("road+road_line");
    a class reached only through `*` is "background" (class 0) or "other".
    Raises a one-line ValueError saying which token is wrong.
    """
    if not text or not text.strip():
        raise ValueError("class map is empty: write pairs like '7:1,*:0' or '0:background,255:road'")
    pairs = []
    for pair in text.split(","):
        pair = pair.strip()
        if pair.count(":") != 1:
            raise ValueError(f"class map: {pair!r} is not a 'source:target' pair")
        source_token, target_token = (part.strip() for part in pair.split(":"))
        if not source_token or not target_token:
            raise ValueError(f"class map: {pair!r} is missing its source or its target")
        pairs.append((source_token, target_token, pair))
    for _, target, pair in pairs:
        if not (_is_number(target) or _is_ignore(target)) and _looks_numeric(target):
            raise ValueError(f"class map: target {target!r} in {pair!r} is not a class index 0..254, 'ignore' "
                             f"or a class name")
        if looks_like_ignore(target):
            raise ValueError(f"class map: target {target!r} in {pair!r} reads like 'ignore': write 'ignore' (or "
                             f"'void') to leave those pixels out of the loss, or give the class another name")
    named = [pair for _, target, pair in pairs if not (_is_number(target) or _is_ignore(target))]
    numbered = [pair for _, target, pair in pairs if _is_number(target) and not _is_ignore(target)]
    if named and numbered:
        raise ValueError(f"class map: {numbered[0]!r} has a class number and {named[0]!r} a class name: "
                         f"give every target as a number, or every target as a name")
    if named and class_names is not None:
        raise ValueError(f"class map {text!r} names its classes, and names were given besides")
    named_classes = _named_classes([(source, target) for source, target, _ in pairs]) if named else []
    named_indices = {name.lower(): index for index, name in enumerate(named_classes)}
    mapping, others = {}, None
    for source_token, target_token, pair in pairs:
        if target_token.lower() in named_indices:
            target = named_indices[target_token.lower()]
        else:
            target = _target_value(target_token, pair)
        if source_token == "*":
            if others is not None:
                raise ValueError(f"class map: '*' appears twice (second time in {pair!r})")
            others = target
            continue
        source = _source_value(source_token, source_class_names)
        if source in mapping:
            raise ValueError(f"class map: source {source_token!r} appears twice")
        mapping[source] = target
    targets = [t for t in list(mapping.values()) + [others] if t is not None and t != IGNORE]
    if not targets:
        raise ValueError(f"class map {text!r} sends everything to ignore: it has no class")
    n_classes = max(targets) + 1
    if named:
        class_names = named_classes
    elif class_names is None:
        class_names = []
        mapped_names = {_source_name(s, source_class_names).lower() for s, t in mapping.items() if t != IGNORE}
        for index in range(n_classes):
            sources = [_source_name(s, source_class_names) for s, t in mapping.items() if t == index]
            if others == index:
                rest = "background" if not sources and index == 0 and "background" not in mapped_names else "other"
                sources.append(rest)
            class_names.append("+".join(sources) if sources else f"class{index}")
    elif len(class_names) != n_classes:
        raise ValueError(f"class map {text!r} makes {n_classes} classes but {len(class_names)} names were given")
    return ClassMap(mapping, class_names, others=others, named_targets=bool(named))


def class_map_from_names(selected_names, source_class_names, others="background"):
    """--classes road,vehicle: the chosen source classes become classes in the order given.

    others="background": the rest of the source classes become class 0
        "background", the chosen ones 1..K (n_classes = K + 1).
    others="ignore": the rest become 255 (left out of loss and metrics) and the
        chosen ones are 0..K-1 (n_classes = K): no class is left that never occurs.

    Names match case-insensitively; a source class id (a number) works too. With others="background", a
    chosen source class named background (a colour table's, say) is part of class 0: the rest is the
    background, and a second class of that name would be the same thing split in two.
    Label values beyond the source classes (and not 255) stay errors.
    """
    if isinstance(selected_names, str):
        selected_names = [name.strip() for name in selected_names.split(",") if name.strip()]
    if not selected_names:
        raise ValueError("no classes selected: name at least one, e.g. --classes road")
    if others not in ("background", "ignore"):
        raise ValueError(f"others must be 'background' or 'ignore', not {others!r}")
    first = 1 if others == "background" else 0
    mapping, names = {}, []
    for name in selected_names:
        source = _source_value(str(name).strip(), source_class_names)
        if source in mapping:
            raise ValueError(f"class {name!r} is selected twice")
        if source >= len(source_class_names):
            raise ValueError(f"class {name!r} is not one of the {len(source_class_names)} source classes")
        if others == "background" and source_class_names[source].lower() == "background":
            mapping[source] = 0
            continue
        mapping[source] = first + len(names)
        names.append(source_class_names[source])
    class_names = (["background"] if others == "background" else []) + names
    return ClassMap(mapping, class_names, others=0 if others == "background" else IGNORE,
                    others_limit=len(source_class_names))
