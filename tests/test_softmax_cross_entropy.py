"""SoftmaxCrossEntropy: the per-pixel loss, its gradient, ignored pixels and extreme scores."""
import math

import numpy
import pytest

from fcnlite import backend
from fcnlite.layers import SoftmaxCrossEntropy
from gradcheck import backends_agree, layer_gradient_errors


def random_problem(shape=(2, 4, 3, 5), ignored_fraction=0.3, seed=0, scale=3.0):
    """Scores (N, C, H, W) and labels (N, H, W) with about `ignored_fraction` of pixels set to 255."""
    generator = numpy.random.default_rng(seed)
    n, n_classes, h, w = shape
    scores = scale * generator.standard_normal(shape)
    labels = generator.integers(0, n_classes, size=(n, h, w))
    labels[generator.random((n, h, w)) < ignored_fraction] = 255
    return scores, labels


def loss_direct(scores, labels, normalize, ignore_index=255):
    """-(1/Z) sum of log softmax(scores)[label] over counted pixels, one pixel at a time (math.fsum)."""
    n, _, h, w = scores.shape
    terms = []
    for image in range(n):
        for y in range(h):
            for x in range(w):
                label = labels[image, y, x]
                if label == ignore_index:
                    continue
                pixel = scores[image, :, y, x]
                top = max(pixel)
                log_total = top + math.log(math.fsum(math.exp(s - top) for s in pixel))
                terms.append(-(pixel[label] - log_total))
    if not terms:
        return 0.0
    return math.fsum(terms) / (len(terms) if normalize else 1)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("ignored_fraction", [0.0, 0.3])
def test_loss_matches_direct_log_softmax(xp, normalize, ignored_fraction):
    scores, labels = random_problem(ignored_fraction=ignored_fraction)
    loss = SoftmaxCrossEntropy(normalize=normalize, dtype=numpy.float64)
    value = loss.forward(backend.to_device(scores), backend.to_device(labels))
    if xp is numpy:
        assert isinstance(value, float)
    else:   # a device scalar: the GPU does not stop for it
        assert isinstance(value, xp.ndarray) and value.shape == ()
    assert float(value) == pytest.approx(loss_direct(scores, labels, normalize), rel=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (1, 2, 1, 1), (1, 21, 2, 3)])
def test_softmax_cross_entropy_backward_matches_numerical_gradient(xp, normalize, shape):
    # unit-scale scores: no probability is so small that round-off in the loss swamps its gradient
    scores, labels = random_problem(shape, ignored_fraction=0.3 if shape[2] * shape[3] > 1 else 0.0, scale=1.0)
    loss = SoftmaxCrossEntropy(normalize=normalize, dtype=numpy.float64)
    scores, labels = backend.to_device(scores), backend.to_device(labels)
    errors = layer_gradient_errors(loss, [scores, labels], inputs_to_check=[0])   # random dloss: checks its scaling
    assert errors["x0"] < 1e-6, errors


def test_ignored_pixels_get_zero_gradient_and_do_not_count(xp):
    scores, labels = random_problem(ignored_fraction=0.5, seed=3)
    ignored = labels == 255
    assert ignored.any() and (~ignored).any()
    loss = SoftmaxCrossEntropy(dtype=numpy.float64)
    value = loss.forward(backend.to_device(scores), backend.to_device(labels))
    dscores = backend.to_numpy(loss.backward())
    assert not dscores.transpose(0, 2, 3, 1)[ignored].any()
    # changing the scores of ignored pixels changes nothing
    changed = scores.copy()
    changed.transpose(0, 2, 3, 1)[ignored] += 100.0
    assert float(loss.forward(backend.to_device(changed), backend.to_device(labels))) == pytest.approx(float(value), rel=1e-14)
    # the gradient of each counted pixel sums to 0 over classes, and the normalisation is by counted pixels
    numpy.testing.assert_allclose(dscores.sum(axis=1), 0, atol=1e-15)
    probs = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    image, y, x = numpy.argwhere(~ignored)[0]
    expected = probs[image, :, y, x].copy()
    expected[labels[image, y, x]] -= 1
    numpy.testing.assert_allclose(dscores[image, :, y, x], expected / (~ignored).sum(), rtol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_huge_scores_give_a_finite_loss_and_gradient(xp, normalize):
    scores, labels = random_problem(seed=4, scale=1e4)
    scores[0, :, 0, 0] = [1e4, -1e4, 1e4, 0.0]    # two classes tie at the top
    labels[0, 0, 0] = 1                          # and the label is the worst one: a loss of about 2e4
    loss = SoftmaxCrossEntropy(normalize=normalize, dtype=numpy.float64)
    value = loss.forward(backend.to_device(scores), backend.to_device(labels))
    dscores = backend.to_numpy(loss.backward())
    assert math.isfinite(value) and numpy.isfinite(dscores).all()
    assert float(value) == pytest.approx(loss_direct(scores, labels, normalize), rel=1e-12)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_huge_float32_scores_do_not_overflow(xp, dtype):
    scores = xp.asarray(numpy.array([1e4, -1e4, 3e4], dtype=dtype).reshape(1, 3, 1, 1))
    loss = SoftmaxCrossEntropy(dtype=dtype)
    value = loss.forward(scores, xp.asarray(numpy.zeros((1, 1, 1), dtype=numpy.int64)))
    assert float(value) == pytest.approx(2e4, rel=1e-6)
    assert numpy.isfinite(backend.to_numpy(loss.backward())).all()


@pytest.mark.parametrize("normalize", [True, False])
def test_all_ignored_batch_has_zero_loss_and_zero_gradient(xp, normalize):
    scores, _ = random_problem()
    labels = numpy.full((2, 3, 5), 255)
    loss = SoftmaxCrossEntropy(normalize=normalize, dtype=numpy.float64)
    value = loss.forward(backend.to_device(scores), backend.to_device(labels))
    dscores = backend.to_numpy(loss.backward())
    assert float(value) == 0.0 and not math.isnan(value)
    assert math.copysign(1, float(value)) == 1   # 0, not -0: a log line of "loss -0.0" reads as a bug
    assert numpy.isfinite(dscores).all() and not dscores.any()


@pytest.mark.parametrize("bad_value", [4, 7, 254, -1])
def test_label_out_of_range_raises_value_error_naming_the_value(xp, bad_value):
    scores, labels = random_problem()
    labels[1, 2, 3] = bad_value
    loss = SoftmaxCrossEntropy(dtype=numpy.float64)
    with pytest.raises(ValueError, match=rf"value {bad_value}\b") as raised:
        loss.forward(backend.to_device(scores), backend.to_device(labels))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("bad_value", [None, 9])
def test_host_labels_with_device_scores_give_the_same_loss_and_check(xp, bad_value):
    # a data loader's labels are NumPy arrays: the loss takes them as they are, whatever the scores' device
    scores, labels = random_problem(seed=8)
    device_labels = SoftmaxCrossEntropy(dtype=numpy.float64)
    expected = float(device_labels.forward(backend.to_device(scores), backend.to_device(labels)))
    host_labels = SoftmaxCrossEntropy(dtype=numpy.float64)
    if bad_value is not None:
        labels[0, 1, 2] = bad_value
        with pytest.raises(ValueError, match=rf"value {bad_value}\b"):
            host_labels.forward(backend.to_device(scores), labels.astype(numpy.uint8))
        return
    assert float(host_labels.forward(backend.to_device(scores), labels.astype(numpy.uint8))) == pytest.approx(expected, rel=1e-14)
    numpy.testing.assert_allclose(backend.to_numpy(host_labels.backward()), backend.to_numpy(device_labels.backward()),
                                  rtol=1e-14)


def test_labels_of_the_wrong_shape_raise_value_error(xp):
    scores, labels = random_problem()
    with pytest.raises(ValueError, match="do not match"):
        SoftmaxCrossEntropy().forward(backend.to_device(scores), backend.to_device(labels[:, :2]))


@pytest.mark.parametrize("on_device", [True, False])
def test_uint8_labels_with_an_ignore_index_they_cannot_hold(xp, on_device):
    scores, labels = random_problem(seed=9)
    labels[labels == 255] = 0
    labels8 = labels.astype(numpy.uint8)
    loss = SoftmaxCrossEntropy(ignore_index=-1, dtype=numpy.float64)
    value = loss.forward(backend.to_device(scores), backend.to_device(labels8) if on_device else labels8)
    assert float(value) == pytest.approx(loss_direct(scores, labels, True, ignore_index=-1), rel=1e-12)
    labels8[0, 0, 0] = 250
    with pytest.raises(ValueError, match=r"value 250\b"):
        loss.forward(backend.to_device(scores), backend.to_device(labels8) if on_device else labels8)


def test_uint8_labels_and_another_ignore_index(xp):
    scores, labels = random_problem(seed=5)
    counted = labels != 255
    as_uint8 = SoftmaxCrossEntropy(dtype=numpy.float64).forward(backend.to_device(scores),
                                                                 backend.to_device(labels.astype(numpy.uint8)))
    minus_one = numpy.where(counted, labels, -1)
    with_minus_one = SoftmaxCrossEntropy(ignore_index=-1, dtype=numpy.float64).forward(
        backend.to_device(scores), backend.to_device(minus_one))
    assert float(as_uint8) == pytest.approx(float(with_minus_one), rel=1e-14)
    assert float(as_uint8) == pytest.approx(loss_direct(scores, labels, True), rel=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_softmax_cross_entropy_matches_torch(normalize):
    torch = pytest.importorskip("torch")
    scores, labels = random_problem(seed=6)
    loss = SoftmaxCrossEntropy(normalize=normalize, dtype=numpy.float64)
    value = loss.forward(scores, labels)
    dscores = loss.backward(0.5)
    scores_t = torch.tensor(scores, requires_grad=True)
    value_t = torch.nn.functional.cross_entropy(scores_t, torch.tensor(labels), ignore_index=255,
                                                reduction="mean" if normalize else "sum")
    (0.5 * value_t).backward()
    assert value == pytest.approx(value_t.item(), rel=1e-12)
    numpy.testing.assert_allclose(dscores, scores_t.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("dtype, tolerance", [(numpy.float32, 1e-5), (numpy.float64, 1e-12)])
@pytest.mark.parametrize("normalize", [True, False])
def test_softmax_cross_entropy_cupy_agrees_with_numpy(cupy_only, dtype, tolerance, normalize):
    scores, labels = random_problem(seed=7)
    backends_agree(lambda: SoftmaxCrossEntropy(normalize=normalize, dtype=dtype), [scores.astype(dtype), labels],
                   rtol=tolerance, atol=tolerance)
