"""im2col and col2im with padding, on NumPy, against the same on an explicitly padded image.

The NumPy code never pads: each kernel offset copies only the window of the band
that lies on the image, and writes zeros where it would read the padding (col2im
drops what falls there). numpy.pad and padding=0 are the independent computation.
"""
import numpy
import pytest

from fcnlite.layers.im2col import col2im_add, im2col, inside

# (channels, height, width, kernel_h, kernel_w, stride, padding, row0, rows); also run on the GPU's kernels
IM2COL_CASES = [
    (3, 9, 11, 3, 3, 1, 0, 0, 7), (2, 13, 10, 3, 3, 2, 0, 1, 3), (5, 20, 17, 4, 4, 2, 0, 2, 4),
    (1, 40, 33, 16, 16, 8, 0, 0, 4), (4, 7, 7, 7, 7, 1, 0, 0, 1), (6, 5, 8, 1, 1, 1, 0, 1, 3),
    (2, 9, 11, 3, 5, 2, 0, 0, 3), (2, 8, 13, 4, 1, 3, 0, 0, 2),   # kernels that are not square
    (3, 10, 12, 2, 2, 3, 0, 1, 2),                                # a stride longer than the kernel
                                                                  # (pixels that no window reads)
    (3, 9, 11, 3, 3, 1, 1, 0, 9), (2, 9, 11, 3, 3, 1, 1, 3, 4),   # padding: whole, and a band in the middle
    (2, 6, 7, 3, 3, 2, 2, 0, 2), (2, 6, 7, 3, 3, 2, 2, 2, 2),     # bands at the top and bottom, in the padding
    (1, 4, 5, 3, 3, 1, 6, 0, 14), (1, 4, 5, 3, 3, 1, 6, 0, 3),    # wider padding than the image (as conv1_1's 100)
    (2, 9, 11, 3, 5, 2, 1, 1, 3),
]


@pytest.mark.parametrize("channels, height, width, kernel_h, kernel_w, stride, padding, row0, rows", IM2COL_CASES)
def test_im2col_with_padding_is_im2col_of_the_padded_image(channels, height, width, kernel_h, kernel_w, stride,
                                                           padding, row0, rows):
    rng = numpy.random.default_rng(0)
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    image = rng.normal(size=(channels, height, width))
    padded = numpy.pad(image, ((0, 0), (padding, padding), (padding, padding)))
    expected = im2col(padded, kernel_h, kernel_w, stride, row0, rows, out_w)
    poisoned = numpy.full(expected.size, numpy.nan)   # an entry im2col misses stays NaN
    got = im2col(image, kernel_h, kernel_w, stride, row0, rows, out_w, out=poisoned, padding=padding)
    numpy.testing.assert_array_equal(got, expected)

    cols = rng.normal(size=expected.shape)
    dpadded = col2im_add(cols, numpy.zeros_like(padded), kernel_h, kernel_w, stride, row0, rows, out_w)
    start = rng.normal(size=image.shape)
    dx = col2im_add(cols, start.copy(), kernel_h, kernel_w, stride, row0, rows, out_w, padding=padding)
    numpy.testing.assert_allclose(dx, start + dpadded[:, padding:padding + height, padding:padding + width],
                                  rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("offset, stride, padding, size, first, count", [
    (0, 1, 1, 5, 0, 5), (2, 1, 1, 5, 0, 5), (0, 2, 3, 4, 0, 6), (4, 3, 0, 10, 1, 2), (1, 1, 6, 4, 0, 14),
    (0, 1, 6, 4, 0, 3),   # a band wholly in the padding
])
def test_inside_is_the_positions_that_read_the_image(offset, stride, padding, size, first, count):
    lo, hi, pixel = inside(offset, stride, padding, size, first, count)
    reads_image = [0 <= o * stride + offset - padding < size for o in range(first, first + count)]
    assert [lo <= o - first < hi for o in range(first, first + count)] == reads_image
    if hi > lo:
        assert pixel == (first + lo) * stride + offset - padding
