"""A synthetic driving-scene dataset in the driving simulator's layout, for the road task.

    root/CameraRGB/00000.png   the camera image (RGB)
    root/CameraSeg/00000.png   its labels: class id in the red channel, green = blue = 0
    root/synthetic.json        how it was made (size, seed, class names)

This is the layout of the CARLA 0.8 semantic-segmentation camera (13 classes,
fcnlite.data.classmap.DRIVING_CLASSES), so the same code trains on real simulator
frames dropped into root. The synthetic scenes stand in for them where no
download is possible: small, made in a few seconds, and learnable by a small FCN
trained from scratch on a CPU in minutes.

What a scene holds (every number drawn per image from its own seeded generator):

    sky          above a horizon at 28..45 % of the height, blue or overcast grey
    buildings    rectangles with window grids on both sides, some concrete-grey
    trees        green ellipses on trunks
    ground       grass (vegetation) or bare terrain (other) outside the sidewalks
    road         a trapezoid narrowing to a vanishing point on the horizon, with a
                 slight curve; asphalt grey with blotchy texture
    sidewalks    strips on both sides of the road, a grey close to the road's
                 (10..30 levels lighter or darker, slightly warmer) with paving joints,
                 and a pale curb along the road's edge
    road lines   a dashed centre line (white or yellow), sometimes solid edge lines
    vehicles     0..3 boxes of any colour (grey and black too) on the road, with
                 windows and wheels, sized by their distance
    poles, pedestrians on the sidewalks
    lighting     a cast shadow across road and sidewalk, global brightness and
                 tint, pixel noise

The road is grey like the sidewalks and some buildings, so colour alone does not
find it; its shape, place and curb edges do.

Image k depends only on (seed, k): the same call writes byte-identical files,
and a larger n_images adds images without changing the first ones.
"""
import json
import os

import numpy
from PIL import Image

from .classmap import DRIVING_CLASSES, class_map_from_names
from .errors import DataError
from .synthetic import build_then_rename

DEFAULT_SIZE = (96, 128)     # (height, width): large enough for road shape, small enough for CPU training
DEFAULT_N_IMAGES = 240
INFO_FILE = "synthetic.json"

# class ids (the simulator's)
UNLABELED, BUILDING, OTHER, PEDESTRIAN, POLE, ROAD_LINE, ROAD, SIDEWALK, VEGETATION, VEHICLE, WALL = \
    0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11


def _smooth_noise(rng, height, width, cell):
    """Blotchy noise in about [-1, 1]: a coarse random grid, bilinearly enlarged."""
    coarse = rng.standard_normal((max(2, height // cell + 2), max(2, width // cell + 2))).astype(numpy.float32)
    enlarged = Image.fromarray(coarse, mode="F").resize((width, height), Image.BILINEAR)
    return numpy.asarray(enlarged, dtype=numpy.float32)


class _Canvas:
    """The image being painted (float RGB) and its labels, painted together region by region."""

    def __init__(self, height, width):
        self.image = numpy.zeros((height, width, 3), dtype=numpy.float32)
        self.label = numpy.zeros((height, width), dtype=numpy.uint8)

    def paint(self, region, color, class_id, texture=None):
        """Give every pixel of boolean `region` this colour (plus texture, broadcast) and class."""
        color = numpy.asarray(color, dtype=numpy.float32)
        if texture is None:
            self.image[region] = color
        else:
            self.image[region] = color + texture[region][:, None]
        self.label[region] = class_id


def _rectangle(yy, xx, top, bottom, left, right):
    return (yy >= top) & (yy < bottom) & (xx >= left) & (xx < right)


def render_scene(rng, height, width):
    """One synthetic scene: (image uint8 (H, W, 3), label uint8 (H, W) with DRIVING_CLASSES ids)."""
    yy, xx = numpy.mgrid[0:height, 0:width].astype(numpy.float32)
    canvas = _Canvas(height, width)
    fine_noise = rng.standard_normal((height, width)).astype(numpy.float32)

    # ---- geometry: horizon, vanishing point, road centre line and half-width per row -----------
    horizon = rng.uniform(0.25, 0.42) * height
    vanish_x = rng.uniform(0.3, 0.7) * width
    bottom_center = width / 2 + rng.uniform(-0.2, 0.2) * width
    bottom_half = rng.uniform(0.38, 0.6) * width
    curve = rng.uniform(-0.25, 0.25) * width
    below = yy > horizon
    # depth t: 0 on the horizon, 1 at the bottom row (perspective makes widths linear in t)
    depth = numpy.clip((yy - horizon) / (height - horizon), 0.0, 1.0)
    center = vanish_x + (bottom_center - vanish_x) * depth + curve * depth * (1 - depth)
    half = bottom_half * depth + 0.3
    offset = xx - center                               # signed distance from the road's centre
    distance = numpy.abs(offset)
    sidewalk_width = bottom_half * rng.uniform(0.15, 0.3) * depth

    # ---- sky ----------------------------------------------------------------------------------
    if rng.random() < 0.6:
        sky_top, sky_bottom = rng.uniform([60, 110, 170], [110, 160, 230]), rng.uniform([150, 180, 210], [200, 220, 250])
    else:  # overcast: a grey sky, so grey is not the road's alone
        level = rng.uniform(140, 210)
        sky_top = sky_bottom = numpy.array([level, level, level + 5])
    fraction = numpy.clip(yy / max(horizon, 1.0), 0, 1)[..., None]
    canvas.image[:] = sky_top * (1 - fraction) + sky_bottom * fraction

    # ---- ground on each side: grass or bare terrain -------------------------------------------
    ground_texture = 10 * _smooth_noise(rng, height, width, 6)
    for side in (-1, 1):
        region = below & (offset * side > 0)
        if rng.random() < 0.6:
            canvas.paint(region, rng.uniform([50, 95, 35], [90, 140, 70]), VEGETATION, ground_texture)
        else:
            canvas.paint(region, rng.uniform([110, 95, 70], [150, 130, 100]), OTHER, ground_texture)

    # ---- buildings and trees along both sides, standing a little below the horizon ------------
    horizon_center = vanish_x
    for _ in range(rng.integers(2, 7)):
        side = rng.choice([-1, 1])
        inner = horizon_center + side * rng.uniform(0.05, 0.2) * width
        extent = rng.uniform(0.12, 0.4) * width
        left, right = sorted([inner, inner + side * extent])
        top = horizon - rng.uniform(0.08, 0.4) * height
        base = horizon + rng.uniform(0.0, 0.25) * (height - horizon)
        region = _rectangle(yy, xx, top, base, left, right)
        kind = rng.random()
        if kind < 0.35:
            color = numpy.full(3, rng.uniform(90, 170)) + rng.uniform(-6, 6, 3)   # concrete grey
        elif kind < 0.7:
            color = rng.uniform([150, 120, 90], [220, 190, 150])                 # beige, sandstone
        else:
            color = rng.uniform([120, 50, 40], [170, 90, 70])                    # brick
        class_id = BUILDING if rng.random() < 0.8 else WALL
        canvas.paint(region, color, class_id, 6 * fine_noise)
        if class_id == BUILDING:  # window grid, darker
            pitch = rng.uniform(4, 8)
            windows = region & ((xx - left) % pitch < pitch * 0.5) & ((yy - top) % pitch < pitch * 0.5)
            canvas.image[windows] *= rng.uniform(0.45, 0.75)
    for _ in range(rng.integers(0, 5)):
        side = rng.choice([-1, 1])
        tree_x = horizon_center + side * rng.uniform(0.15, 0.6) * width
        radius = rng.uniform(0.04, 0.1) * width
        tree_base = horizon + rng.uniform(0.0, 0.3) * (height - horizon)
        crown_y = tree_base - radius * rng.uniform(1.6, 2.4)
        trunk = _rectangle(yy, xx, crown_y, tree_base, tree_x - radius * 0.15, tree_x + radius * 0.15)
        crown = ((xx - tree_x) / radius) ** 2 + ((yy - crown_y) / (radius * 1.2)) ** 2 < 1
        canvas.paint(trunk, rng.uniform([70, 45, 30], [100, 70, 50]), VEGETATION)
        canvas.paint(crown, rng.uniform([30, 80, 25], [80, 140, 60]), VEGETATION, 14 * fine_noise)

    # ---- road and sidewalks: close greys --------------------------------------------------------
    asphalt_level = rng.uniform(70, 125)
    asphalt = numpy.full(3, asphalt_level) + rng.uniform(-4, 4, 3)
    road = below & (distance < half)
    road_texture = 7 * _smooth_noise(rng, height, width, 5) + 5 * fine_noise
    canvas.paint(road, asphalt, ROAD, road_texture)

    shift = rng.uniform(10, 30) * rng.choice([-1, 1])
    paving = asphalt + shift + numpy.array([4, 2, -2]) * rng.uniform(0.5, 1.5)
    sidewalk = below & (distance >= half) & (distance < half + sidewalk_width)
    joint_pitch = rng.uniform(3, 6)
    joints = ((distance - half) % (joint_pitch * depth + 1) < 0.6) | ((1 / (depth + 0.05)) * 4 % 1 < 0.12)
    canvas.paint(sidewalk, paving, SIDEWALK, 4 * fine_noise - 10 * joints)
    if rng.random() < 0.9:  # the curb: a pale strip along the road edge
        curb = sidewalk & (distance < half + numpy.maximum(0.8, 0.12 * sidewalk_width))
        canvas.paint(curb, numpy.full(3, min(235.0, asphalt_level + rng.uniform(50, 90))), SIDEWALK, 4 * fine_noise)

    # ---- road lines: a dashed centre line, sometimes solid edge lines ---------------------------
    line_color = [235, 235, 225] if rng.random() < 0.7 else [225, 190, 60]
    line_half_width = 0.15 + 0.007 * width * depth
    lane_offset = rng.uniform(-0.1, 0.1) * half
    dash_phase = rng.random()
    # dashes evenly spaced along the road: inverse depth grows linearly with the distance ahead
    dashed = ((1.0 / (depth + 0.08)) * 0.9 + dash_phase) % 1.0 < 0.35
    centre_line = road & (numpy.abs(offset - lane_offset) < line_half_width) & dashed
    canvas.paint(centre_line, line_color, ROAD_LINE, 4 * fine_noise)
    if rng.random() < 0.25:
        edge_line = road & (numpy.abs(distance - half * 0.9) < line_half_width)
        canvas.paint(edge_line, [230, 230, 230], ROAD_LINE, 4 * fine_noise)

    # ---- vehicles on the road, far ones first so near ones cover them ---------------------------
    road_rows = height - horizon
    for car_depth in sorted(rng.uniform(0.15, 0.9, size=rng.integers(0, 3))):
        car_bottom = horizon + car_depth * road_rows
        car_half = bottom_half * car_depth
        car_center = (vanish_x + (bottom_center - vanish_x) * car_depth + curve * car_depth * (1 - car_depth)
                      + rng.choice([-0.45, 0.45]) * car_half + rng.uniform(-0.1, 0.1) * car_half)
        car_width = car_half * rng.uniform(0.45, 0.7)
        car_height = car_width * rng.uniform(0.6, 0.9)
        body = _rectangle(yy, xx, car_bottom - car_height, car_bottom,
                          car_center - car_width / 2, car_center + car_width / 2)
        canvas.paint(body, rng.uniform(20, 230, 3), VEHICLE, 5 * fine_noise)
        window = body & (yy < car_bottom - car_height * 0.6) & (numpy.abs(xx - car_center) < car_width * 0.4)
        canvas.image[window] = [40, 50, 60]
        wheels = body & (yy > car_bottom - car_height * 0.18) & (numpy.abs(xx - car_center) > car_width * 0.3)
        canvas.image[wheels] = [15, 15, 15]

    # ---- poles and pedestrians on the sidewalks -------------------------------------------------
    for _ in range(rng.integers(0, 3)):
        pole_depth = rng.uniform(0.2, 0.9)
        pole_base = horizon + pole_depth * road_rows
        pole_x = (vanish_x + (bottom_center - vanish_x) * pole_depth + curve * pole_depth * (1 - pole_depth)
                  + rng.choice([-1, 1]) * (bottom_half * pole_depth) * rng.uniform(1.1, 1.3))
        pole_width = max(1.0, 0.015 * width * pole_depth)
        pole = _rectangle(yy, xx, pole_base - 0.5 * height * pole_depth, pole_base,
                          pole_x - pole_width / 2, pole_x + pole_width / 2)
        canvas.paint(pole, numpy.full(3, rng.uniform(50, 110)), POLE)
    for _ in range(rng.integers(0, 3)):
        person_depth = rng.uniform(0.3, 0.9)
        person_base = horizon + person_depth * road_rows
        person_x = (vanish_x + (bottom_center - vanish_x) * person_depth + curve * person_depth * (1 - person_depth)
                    + rng.choice([-1, 1]) * (bottom_half * person_depth) * rng.uniform(1.08, 1.25))
        person_height = 0.3 * height * person_depth
        person = _rectangle(yy, xx, person_base - person_height, person_base,
                            person_x - person_height * 0.15, person_x + person_height * 0.15)
        canvas.paint(person, rng.uniform(20, 200, 3), PEDESTRIAN, 5 * fine_noise)

    # ---- lighting: a cast shadow, global brightness and tint, sensor noise ----------------------
    image = canvas.image
    if rng.random() < 0.5:
        slope, intercept = rng.uniform(-1.5, 1.5), rng.uniform(0.1, 0.9) * width
        shadow = below & ((xx - intercept - slope * (yy - horizon)) * rng.choice([-1, 1]) > 0)
        image[shadow] *= rng.uniform(0.55, 0.8)
    image *= rng.uniform(0.7, 1.25) * rng.uniform(0.93, 1.07, 3)
    image += rng.uniform(2, 7) * rng.standard_normal(image.shape).astype(numpy.float32)
    return numpy.clip(image + 0.5, 0, 255).astype(numpy.uint8), canvas.label


def make_synthetic_road(root, n_images=DEFAULT_N_IMAGES, size=DEFAULT_SIZE, seed=0):
    """Write n_images scenes of size (height, width) to root/CameraRGB and root/CameraSeg; returns root.

    Deterministic: the same arguments write byte-identical files.
    """
    height, width = size
    rgb_dir, seg_dir = os.path.join(root, "CameraRGB"), os.path.join(root, "CameraSeg")
    os.makedirs(rgb_dir, exist_ok=True)
    os.makedirs(seg_dir, exist_ok=True)
    zeros = numpy.zeros((height, width), dtype=numpy.uint8)
    for index in range(n_images):
        image, label = render_scene(numpy.random.default_rng([seed, index]), height, width)
        name = f"{index:05d}.png"
        Image.fromarray(image, mode="RGB").save(os.path.join(rgb_dir, name))
        # the simulator's encoding: class id in red, green and blue zero
        Image.fromarray(numpy.stack([label, zeros, zeros], axis=-1), mode="RGB").save(os.path.join(seg_dir, name))
    info = {"generator": "fcnlite.data.road.make_synthetic_road", "n_images": n_images,
            "size": [height, width], "seed": seed, "class_names": DRIVING_CLASSES,
            "label_encoding": "class id in the red channel of CameraSeg/*.png"}
    with open(os.path.join(root, INFO_FILE), "w") as file:
        json.dump(info, file, indent=1)
    return root


def ensure_synthetic_road(root, n_images=DEFAULT_N_IMAGES, size=DEFAULT_SIZE, seed=0):
    """Make the synthetic dataset at root unless a dataset is already there; returns root.

    Safe to call every time, and from two processes at once: the scenes are
    written into a temporary folder beside root, which is renamed into place only
    when complete, so root never holds half a dataset. An existing root with
    CameraRGB and CameraSeg (real simulator frames, or an earlier call with other
    arguments) is used as it is.
    """
    root = os.path.abspath(str(root))
    if _is_dataset(root):
        return root
    if os.path.isdir(root) and os.listdir(root):
        raise DataError(root, "folder exists but has no CameraRGB and CameraSeg folders: "
                              "empty it or choose another --data-root")
    build_then_rename(lambda staging: make_synthetic_road(staging, n_images=n_images, size=size, seed=seed), root,
                      staging_in=os.path.dirname(root), prefix=f".{os.path.basename(root)}.tmp-",
                      finished=lambda: _is_dataset(root), root=root)
    return root


def _is_dataset(root):
    return os.path.isdir(os.path.join(root, "CameraRGB")) and os.path.isdir(os.path.join(root, "CameraSeg"))


def road_dataset(root, classes=("road",), others="background", ids=None, skip_bad=False):
    """A FolderSegmentation over root/CameraRGB and root/CameraSeg (class id in red).

    classes: the simulator classes to keep ("road" gives road vs background);
    None keeps all 13 DRIVING_CLASSES. others: "background" or "ignore", as in
    class_map_from_names.
    """
    from .folder import FolderSegmentation
    class_map = class_map_from_names(list(classes), DRIVING_CLASSES, others) if classes else None
    return FolderSegmentation(os.path.join(root, "CameraRGB"), os.path.join(root, "CameraSeg"),
                              mask_format="channel", mask_channel=0, class_map=class_map, ids=ids,
                              skip_bad=skip_bad, class_names=DRIVING_CLASSES)
