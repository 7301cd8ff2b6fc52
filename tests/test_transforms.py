"""The per-sample pipeline: transforms (labels never interpolated), preprocessing, prefetching."""
import threading
import time

import numpy
import pytest

from fcnlite.data import (Prefetcher, TORCHVISION_PREPROCESSING, deprocess, limit_max_side, preprocess,
                          random_flip, random_scale_crop, resize)
from fcnlite.models.base import CAFFE_PREPROCESSING


def blocks(height, width, seed=0, block=4):
    """A label of random classes in square blocks with some void, and an image that paints each class its colour."""
    rng = numpy.random.default_rng(seed)
    coarse = rng.choice([0, 3, 7, 15, 255], size=(-(-height // block), -(-width // block))).astype(numpy.uint8)
    label = numpy.kron(coarse, numpy.ones((block, block), dtype=numpy.uint8))[:height, :width]
    colours = numpy.zeros((256, 3), dtype=numpy.uint8)
    colours[[0, 3, 7, 15, 255]] = [[10, 10, 10], [200, 30, 30], [30, 200, 30], [30, 30, 200], [250, 250, 250]]
    return colours[label], label, colours


# ---- transforms -------------------------------------------------------------------------------

def test_flip_mirrors_image_and_label_together():
    image, label, colours = blocks(16, 24)
    flipped_any = kept_any = False
    for seed in range(20):
        out_image, out_label = random_flip(image, label, numpy.random.default_rng(seed))
        flipped = not numpy.array_equal(out_label, label)
        flipped_any |= flipped
        kept_any |= not flipped
        expected = (image[:, ::-1], label[:, ::-1]) if flipped else (image, label)
        numpy.testing.assert_array_equal(out_image, expected[0])
        numpy.testing.assert_array_equal(out_label, expected[1])
        numpy.testing.assert_array_equal(colours[out_label], out_image)   # still aligned
    assert flipped_any and kept_any


def test_flip_probability_one_always_flips_and_label_may_be_none():
    image, label, _ = blocks(8, 8)
    out_image, out_label = random_flip(image, None, numpy.random.default_rng(0), probability=1.0)
    numpy.testing.assert_array_equal(out_image, image[:, ::-1])
    assert out_label is None


def test_resize_uses_nearest_neighbour_for_labels():
    label = numpy.array([[0, 15], [255, 7]], dtype=numpy.uint8)
    image = numpy.zeros((2, 2, 3), dtype=numpy.uint8)
    out_image, out_label = resize(image, label, (4, 4))
    numpy.testing.assert_array_equal(out_label, numpy.kron(label, numpy.ones((2, 2), dtype=numpy.uint8)))
    assert out_image.shape == (4, 4, 3)
    _, odd = resize(*blocks(20, 28)[:2], (13, 9))
    assert odd.shape == (13, 9) and set(numpy.unique(odd)) <= {0, 3, 7, 15, 255}


@pytest.mark.parametrize("dtype", [numpy.int64, numpy.uint16])
def test_labels_of_any_integer_dtype_resize_as_uint8_ones_do_and_keep_their_dtype(dtype):
    image, label, _ = blocks(20, 28)
    _, expected = resize(image, label, (13, 9))
    _, wide = resize(image, label.astype(dtype) + 300, (13, 9))   # class indices past 255 too
    assert wide.dtype == dtype
    numpy.testing.assert_array_equal(wide, expected.astype(dtype) + 300)


def test_float_labels_are_refused_as_not_class_indices():
    image = numpy.zeros((4, 4, 3), dtype=numpy.uint8)
    with pytest.raises(TypeError, match="label is float64: give the class index of each pixel as integers"):
        resize(image, numpy.ones((4, 4)), (2, 2))


def test_resize_image_is_bilinear():
    image = numpy.zeros((1, 2, 3), dtype=numpy.uint8)
    image[0, 1] = 200
    out_image, _ = resize(image, None, (1, 4))
    assert 0 < out_image[0, 1, 0] < 200    # a blended value: interpolated, unlike labels


@pytest.mark.parametrize("shape, max_side, expected", [((100, 50), 40, (40, 20)), ((30, 90), 60, (20, 60)),
                                                       ((30, 20), 40, (30, 20))])
def test_limit_max_side_keeps_aspect_and_never_upscales(shape, max_side, expected):
    image, label, _ = blocks(*shape)
    out_image, out_label = limit_max_side(image, label, max_side)
    assert out_image.shape[:2] == expected and out_label.shape == expected
    assert set(numpy.unique(out_label)) <= set(numpy.unique(label))


@pytest.mark.parametrize("seed", range(6))
def test_scale_crop_keeps_label_values_and_alignment(seed):
    image, label, colours = blocks(40, 48, seed, block=8)
    out_image, out_label = random_scale_crop(image, label, numpy.random.default_rng(seed), scale_range=(0.5, 2.0),
                                             crop_size=32)
    assert out_image.shape == (32, 32, 3) and out_label.shape == (32, 32)
    assert set(numpy.unique(out_label)) <= set(numpy.unique(label)) | {255}
    # well inside a block (no other class in the 5x5 around it, not padding) the bilinear
    # image still shows the class colour of the label: image and label moved together
    inner = out_label != 255
    for shift_y in range(-2, 3):
        for shift_x in range(-2, 3):
            inner &= numpy.roll(out_label, (shift_y, shift_x), axis=(0, 1)) == out_label
    inner[[0, 1, -2, -1], :] = inner[:, [0, 1, -2, -1]] = False
    assert inner.sum() > 0
    difference = numpy.abs(out_image.astype(int) - colours[out_label])[inner]
    assert difference.max() <= 2


def test_scale_crop_exact_factor_two_is_a_nearest_upsampling():
    image, label, _ = blocks(8, 8)
    _, out_label = random_scale_crop(image, label, numpy.random.default_rng(0), scale_range=(2.0, 2.0))
    numpy.testing.assert_array_equal(out_label, numpy.kron(label, numpy.ones((2, 2), dtype=numpy.uint8)))


def test_scale_crop_pads_small_images_with_void_and_fill_colour():
    image, label, _ = blocks(8, 12)
    label[:] = 3
    out_image, out_label = random_scale_crop(image, label, numpy.random.default_rng(1), scale_range=(1.0, 1.0),
                                             crop_size=(16, 20), fill=(1, 2, 3))
    assert out_label.shape == (16, 20)
    assert (out_label == 3).sum() == 8 * 12 and (out_label == 255).sum() == 16 * 20 - 8 * 12
    assert (out_image[out_label == 255] == [1, 2, 3]).all()


def test_scale_crop_cuts_its_window_at_a_random_place_in_both_directions():
    # each pixel names its own place (label y * 100 + x, image (y, x, 0)): a crop fixed at the top left,
    # or one whose top and left were swapped, still kept image and label aligned
    height, width = 20, 40
    rows, columns = numpy.mgrid[:height, :width]
    label = (rows * 100 + columns).astype(numpy.int64)
    image = numpy.stack([rows, columns, numpy.zeros_like(rows)], axis=-1).astype(numpy.uint8)
    tops, lefts = set(), set()
    for seed in range(20):
        out_image, out_label = random_scale_crop(image, label, numpy.random.default_rng(seed), scale_range=None,
                                                 crop_size=(10, 16))
        top, left = divmod(int(out_label[0, 0]), 100)
        assert 0 <= top <= height - 10 and 0 <= left <= width - 16
        numpy.testing.assert_array_equal(out_label, label[top:top + 10, left:left + 16])
        numpy.testing.assert_array_equal(out_image, image[top:top + 10, left:left + 16])
        tops.add(top)
        lefts.add(left)
    assert len(tops) > 3 and len(lefts) > 3


def test_scale_crop_pads_at_the_bottom_and_right_keeping_the_image_at_the_top_left():
    image, label, colours = blocks(8, 12)
    out_image, out_label = random_scale_crop(image, label, numpy.random.default_rng(1), scale_range=None,
                                             crop_size=(16, 20), fill=(1, 2, 3))
    numpy.testing.assert_array_equal(out_label[:8, :12], label)
    numpy.testing.assert_array_equal(out_image[:8, :12], image)
    assert (out_label[8:] == 255).all() and (out_label[:, 12:] == 255).all()
    assert (out_image[8:] == [1, 2, 3]).all() and (out_image[:, 12:] == [1, 2, 3]).all()


def test_random_transforms_repeat_for_the_same_seed():
    image, label, _ = blocks(32, 32)
    first = random_scale_crop(image, label, numpy.random.default_rng(7), crop_size=16)
    second = random_scale_crop(image, label, numpy.random.default_rng(7), crop_size=16)
    numpy.testing.assert_array_equal(first[0], second[0])
    numpy.testing.assert_array_equal(first[1], second[1])



@pytest.mark.parametrize("off", [0, None])
def test_a_max_side_or_crop_of_0_or_none_is_off_as_in_train_config(off):
    image, label, _ = blocks(20, 24)
    same_image, same_label = limit_max_side(image, label, off)
    assert same_image is image and same_label is label   # 0 used to shrink to 1x1
    uncropped = random_scale_crop(image, label, numpy.random.default_rng(3), crop_size=off)
    scaled_only = random_scale_crop(image, label, numpy.random.default_rng(3), crop_size=None)
    numpy.testing.assert_array_equal(uncropped[0], scaled_only[0])   # 0 used to cut a (0, 0) crop
    numpy.testing.assert_array_equal(uncropped[1], scaled_only[1])


def test_resize_to_none_keeps_the_pair_as_train_config_does():
    image, label, _ = blocks(20, 24)
    same_image, same_label = resize(image, label, None)
    assert same_image is image and same_label is label


@pytest.mark.parametrize("call, message", [
    (lambda image, label: limit_max_side(image, label, -5), r"max_side is -5: give .* 1 or more \(0: no limit\)"),
    (lambda image, label: random_scale_crop(image, label, numpy.random.default_rng(0), crop_size=-5),
     r"crop_size is -5: give the crop's side in pixels, 1 or more"),
    (lambda image, label: random_scale_crop(image, label, numpy.random.default_rng(0), crop_size=(0, 20)),
     r"crop_size is \(0, 20\)"),
    (lambda image, label: random_scale_crop(image, label, numpy.random.default_rng(0), scale_range=(-1.0, 1.0)),
     r"scale_range is \(-1.0, 1.0\): give \(min, max\) with 0 < min <= max"),
    (lambda image, label: random_scale_crop(image, label, numpy.random.default_rng(0), scale_range=(2.0, 0.5)),
     r"scale_range is \(2.0, 0.5\)"),
    (lambda image, label: resize(image, label, (0, 12)), r"size is \(0, 12\): give \(height, width\) in pixels"),
], ids=["max_side", "crop", "crop_pair", "negative_scale", "reversed_scale", "resize"])
def test_a_negative_or_empty_size_is_refused_naming_the_parameter(call, message):
    image, label, _ = blocks(20, 24)
    with pytest.raises(ValueError, match=message):
        call(image, label)


@pytest.mark.parametrize("call", [
    lambda image, label: resize(image, label, (10, 12)),
    lambda image, label: limit_max_side(image, label, 8),
    lambda image, label: random_scale_crop(image, label, numpy.random.default_rng(0), crop_size=8),
    lambda image, label: random_flip(image, label, numpy.random.default_rng(0), probability=1.0),
], ids=["resize", "limit_max_side", "random_scale_crop", "random_flip"])
def test_a_label_of_another_size_than_its_image_is_refused_naming_both(call):
    image, label, _ = blocks(20, 24)
    with pytest.raises(ValueError, match=r"label is 5x24 \(HxW\) but its image is 20x24"):
        call(image, label[:5])

# ---- preprocessing ----------------------------------------------------------------------------

PIXEL = (10, 20, 30)   # R, G, B


def test_preprocess_caffe_is_bgr_minus_mean_in_0_255():
    image = numpy.empty((2, 3, 3), dtype=numpy.uint8)
    image[:] = PIXEL
    x = preprocess(image, CAFFE_PREPROCESSING)
    assert x.shape == (3, 2, 3) and x.dtype == numpy.float32 and x.flags["C_CONTIGUOUS"]
    expected = [30 - 104.00698793, 20 - 116.66876762, 10 - 122.67891434]   # B, G, R
    numpy.testing.assert_allclose(x[:, 1, 2], expected, atol=1e-4)


def test_preprocess_torchvision_is_rgb_in_0_1_normalised():
    image = numpy.empty((2, 3, 3), dtype=numpy.uint8)
    image[:] = PIXEL
    x = preprocess(image, TORCHVISION_PREPROCESSING)
    expected = [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225]
    numpy.testing.assert_allclose(x[:, 0, 0], expected, atol=1e-5)


def test_preprocess_takes_a_batch_too():
    images = numpy.random.default_rng(0).integers(0, 256, size=(2, 5, 4, 3), dtype=numpy.uint8)
    batch = preprocess(images, CAFFE_PREPROCESSING)
    assert batch.shape == (2, 3, 5, 4)
    numpy.testing.assert_array_equal(batch[1], preprocess(images[1], CAFFE_PREPROCESSING))


@pytest.mark.parametrize("preprocessing", [CAFFE_PREPROCESSING, TORCHVISION_PREPROCESSING],
                         ids=["caffe", "torchvision"])
def test_deprocess_undoes_preprocess(preprocessing):
    image = numpy.random.default_rng(1).integers(0, 256, size=(7, 5, 3), dtype=numpy.uint8)
    numpy.testing.assert_array_equal(deprocess(preprocess(image, preprocessing), preprocessing), image)


def test_preprocess_names_what_is_wrong():
    image = numpy.zeros((2, 2, 3), dtype=numpy.uint8)
    with pytest.raises(ValueError, match="lacks std"):
        preprocess(image, {"channel_order": "RGB", "input_scale": 1.0, "mean": (0, 0, 0)})
    with pytest.raises(ValueError, match="channel_order is 'GBR'"):
        preprocess(image, dict(CAFFE_PREPROCESSING, channel_order="GBR"))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        preprocess(numpy.zeros((2, 2), dtype=numpy.uint8), CAFFE_PREPROCESSING)


@pytest.mark.parametrize("pixels, message", [
    (numpy.full((2, 2, 3), 0.5, numpy.float32),
     r"these are floats of 0\.5\.\.0\.5, brightness as a fraction \(as matplotlib reads a PNG\): multiply them by 255"),
    (numpy.full((2, 2, 3), 300, numpy.uint16), r"these range over 300\.\.300$"),
    (numpy.full((2, 2, 3), -1.0), r"these range over -1\.\.-1$"),
    (numpy.full((2, 2, 3), numpy.nan), "holds NaN or infinite values"),
    (numpy.full((2, 2, 3), True), "not bool"),
])
def test_preprocess_refuses_pixels_that_are_not_0_to_255(pixels, message):
    # an image of 0..1 (matplotlib's imread of a PNG) reached the network as an almost flat image
    with pytest.raises(ValueError, match=message):
        preprocess(pixels, CAFFE_PREPROCESSING)


def test_preprocess_takes_other_numbers_of_0_to_255_as_uint8():
    image = numpy.random.default_rng(2).integers(0, 256, size=(3, 4, 3), dtype=numpy.uint8)
    for other in (numpy.float32, numpy.float64, numpy.uint16, numpy.int64):
        numpy.testing.assert_array_equal(preprocess(image.astype(other), CAFFE_PREPROCESSING),
                                         preprocess(image, CAFFE_PREPROCESSING))
    preprocess(numpy.zeros((2, 2, 3)), CAFFE_PREPROCESSING)   # a black image of floats is 0..255 too


# ---- prefetching ------------------------------------------------------------------------------

def test_prefetcher_delivers_every_item_in_order():
    with Prefetcher(lambda k: k * k, count=50, depth=3) as items:
        assert len(items) == 50
        assert list(items) == [k * k for k in range(50)]


def test_prefetcher_reraises_the_workers_exception_at_its_item():
    def produce(k):
        if k == 3:
            raise ValueError("bad sample 3")
        return k

    items = Prefetcher(produce, count=10)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad sample 3"):
        next(items)
    assert list(items) == []      # nothing after the failure
    assert not items._thread.is_alive()


def test_prefetcher_overlaps_producing_with_consuming():
    def produce(k):
        time.sleep(0.05)
        return k

    started = time.perf_counter()
    with Prefetcher(produce, count=10, depth=4) as items:
        for _ in items:
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.85, f"took {elapsed:.2f} s; one after the other takes 1.0 s"


def test_prefetcher_stops_its_thread_when_the_consumer_leaves_early():
    produced = []

    def produce(k):
        produced.append(k)
        return k

    with pytest.raises(KeyboardInterrupt):
        with Prefetcher(produce, count=10_000, depth=2) as items:
            for item in items:
                if item == 3:
                    raise KeyboardInterrupt
    assert not items._thread.is_alive()
    assert len(produced) <= 3 + 1 + 2 + 1     # consumed, in hand, queued, one in flight
    items.close()                             # closing twice is harmless


def test_abandoned_prefetcher_thread_stops():
    before = threading.active_count()
    items = Prefetcher(lambda k: k, count=10_000, depth=2)
    next(items)
    thread = items._thread
    del items
    thread.join(timeout=2)
    assert not thread.is_alive() and threading.active_count() <= before
