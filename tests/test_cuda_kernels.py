"""The CuPy kernels (fcnlite/layers/cuda_kernels.py) agree with the NumPy reference code on
random inputs of odd shapes. Runs only where a CUDA device answers; skipped elsewhere (but
for the index-size check, which needs no GPU)."""
import numpy
import pytest

from fcnlite import backend
from fcnlite.layers import MaxPool2d
from fcnlite.layers import im2col as im2col_module
from test_im2col import IM2COL_CASES


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("channels, height, width, kernel_h, kernel_w, stride, padding, row0, rows", IM2COL_CASES)
def test_im2col_and_col2im_kernels_match_numpy(cupy_only, dtype, channels, height, width, kernel_h, kernel_w, stride,
                                               padding, row0, rows):
    cupy = cupy_only
    rng = numpy.random.default_rng(0)
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    image = rng.normal(size=(channels, height, width)).astype(dtype)
    expected = im2col_module.im2col(image, kernel_h, kernel_w, stride, row0, rows, out_w, padding=padding)
    poisoned = cupy.full(expected.size, numpy.nan, dtype=dtype)   # an entry the kernel misses stays NaN
    got = im2col_module.im2col(cupy.asarray(image), kernel_h, kernel_w, stride, row0, rows, out_w, out=poisoned,
                               padding=padding)
    numpy.testing.assert_array_equal(cupy.asnumpy(got), expected)

    cols = rng.normal(size=expected.shape).astype(dtype)
    start = rng.normal(size=image.shape).astype(dtype)
    expected_dx = im2col_module.col2im_add(cols, start.copy(), kernel_h, kernel_w, stride, row0, rows, out_w,
                                           padding=padding)
    dx = cupy.asarray(start)
    im2col_module.col2im_add(cupy.asarray(cols), dx, kernel_h, kernel_w, stride, row0, rows, out_w, padding=padding)
    # the kernel sums a pixel's entries before adding them to dx, NumPy adds them one by one: float32
    # rounding differs by a few ulps of the terms, which is large relative to a sum that nearly cancels
    tolerance = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(cupy.asnumpy(dx), expected_dx, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("padding", [0, 1, 3])
@pytest.mark.parametrize("kernel, stride, row0", [(3, 1, 0), (3, 2, 1), (4, 3, 0), (2, 3, 1)])
def test_col2im_with_padding_is_the_adjoint_of_im2col_with_padding(xp, padding, kernel, stride, row0):
    # <im2col(x), c> = <x, col2im(c)>: the NumPy reference and, on a GPU, the kernels
    rng = numpy.random.default_rng(1)
    height, width = 8, 9
    out_w = (width + 2 * padding - kernel) // stride + 1
    rows = (height + 2 * padding - kernel) // stride + 1 - row0
    x = rng.normal(size=(2, height, width))
    cols = backend.to_numpy(im2col_module.im2col(xp.asarray(x), kernel, kernel, stride, row0, rows, out_w,
                                                 padding=padding))
    c = rng.normal(size=cols.shape)
    dx = backend.to_numpy(im2col_module.col2im_add(xp.asarray(c), xp.zeros((2, height, width)), kernel, kernel,
                                                   stride, row0, rows, out_w, padding=padding))
    assert numpy.sum(cols * c) == pytest.approx(numpy.sum(x * dx), rel=1e-12)


def test_kernels_refuse_arrays_whose_indices_would_overflow_int32(monkeypatch):
    """Runs without a GPU: the check looks at sizes only."""
    from fcnlite.layers import cuda_kernels
    monkeypatch.setattr(cuda_kernels, "INT32_LIMIT", 100)
    cuda_kernels._check_int32_indices(numpy.zeros((3, 33)))
    with pytest.raises(ValueError, match=r"shape \(4, 25\) has 2\*\*31 elements or more"):
        cuda_kernels._check_int32_indices(numpy.zeros((3, 33)), numpy.zeros((4, 25)))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape, kernel, stride", [
    ((1, 3, 7, 9), 2, 2), ((2, 4, 1, 1), 2, 2), ((1, 2, 11, 6), 3, 2), ((1, 5, 8, 8), 2, 2), ((1, 1, 13, 5), 3, 1),
])
def test_maxpool_kernels_match_numpy(cupy_only, dtype, shape, kernel, stride):
    from fcnlite import backend
    cupy = cupy_only
    rng = numpy.random.default_rng(1)
    x = rng.permutation(numpy.prod(shape)).reshape(shape).astype(dtype)   # distinct: no ties
    reference = MaxPool2d(kernel, stride, dtype=dtype)
    expected = reference.forward(x)
    dy = rng.normal(size=expected.shape).astype(dtype)
    expected_dx = reference.backward(dy)
    backend.use("cupy")
    try:
        layer = MaxPool2d(kernel, stride, dtype=dtype)
        y = layer.forward(cupy.asarray(x))
        dx = layer.backward(cupy.asarray(dy))
    finally:
        backend.use("numpy")
    numpy.testing.assert_array_equal(cupy.asnumpy(y), expected)
    numpy.testing.assert_array_equal(cupy.asnumpy(layer._argmax), reference._argmax)
    numpy.testing.assert_allclose(cupy.asnumpy(dx), expected_dx, rtol=1e-6)


def test_sgd_kernel_matches_numpy_update(cupy_only):
    """Three SGD steps with the same random weights and gradients: the fused kernel against optim.py's NumPy code."""
    from fcnlite import SGD, backend
    from fcnlite.models import build_model
    after = {}
    for device in ("numpy", "cupy"):
        backend.use(device)
        try:
            model = build_model("fcn32s", n_classes=3, width=1 / 16)
            optimizer = SGD(model, lr=0.01, momentum=0.9, weight_decay=5e-4)
            draws = numpy.random.default_rng(3)
            for _, value, _ in model.named_parameters():
                value[...] = backend.to_device(draws.standard_normal(value.shape).astype(numpy.float32))
            for _ in range(3):
                for _, _, grad in model.named_parameters():
                    grad[...] = backend.to_device(draws.standard_normal(grad.shape).astype(numpy.float32))
                optimizer.step()
            after[device] = {name: backend.to_numpy(value) for name, value, _ in model.named_parameters()}
        finally:
            backend.use("numpy")
    for name, expected in after["numpy"].items():
        numpy.testing.assert_allclose(after["cupy"][name], expected, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("seed", [0, 7, 2**62 - 1, 2**64 - 5])
@pytest.mark.parametrize("size", [1, 31, 4097, 100_003])
def test_splitmix_uniform_kernel_matches_numpy_bit_for_bit(cupy_only, seed, size):
    from fcnlite import rng
    from fcnlite.layers import cuda_kernels
    on_gpu = cuda_kernels.splitmix_uniform(seed, size).get()
    numpy.testing.assert_array_equal(on_gpu, rng.splitmix_uniform(seed, size))
