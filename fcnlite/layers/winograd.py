"""Winograd's minimal filtering F(2x2, 3x3): a 3x3, stride-1 convolution with 2.25x fewer multiplications.

(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.)

A 2x2 tile of output pixels reads a 4x4 tile d of the padded input. With

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

the tile is  y[o] = A^T [ sum_c (G W[o, c] G^T) * (B^T d[c] B) ] A,  with * element-wise on 4x4.
The 16 entries (a, b) of the 4x4 transforms do not mix, so over all tiles t and channels:

    U[a, b] = (G W[o, c] G^T)[a, b]     (16, O, C)    the kernel, transformed once per call
    V[a, b] = (B^T d[c, t] B)[a, b]     (16, C, T)    every input tile
    M[a, b] = U[a, b] @ V[a, b]         (16, O, T)    16 matrix products
    y[o, tile t] = A^T M[:, :, o, t] A  (2, 2)        for each o and t

(Shapes in the formulas' index order. In memory V is (C, 16, T), the order in which im2col lays
out the tiles, and the products read it transposed; weight_grad3x3's dM is (O, 16, T).)

The 16 products make 16 multiplications per 2x2 output tile and (o, c) pair, where im2col's
one product makes 36: 2.25x fewer. The tiles (im2col's patches for a 4x4 kernel with stride 2)
and V are 4x the input, where a 3x3 patch matrix is 9x. In exact arithmetic the result is the
convolution's; in float32 it differs by rounding, about as much as the direct sum does (the
tests compare the two).

Conv2d uses it on the CPU for 3x3, stride-1 convolutions with many channels in and out
(VGG16's from conv2_2 on): for y; for dx, which is the 3x3, stride-1 convolution of dy with the
kernel flipped and its channel axes swapped; and for dW (weight_grad3x3: the same steps run backwards).
The rule (`applies`) asks for MIN_CHANNELS on both sides, so a layer's three passes take the same
form (conv2_1, 64 into 128 channels, takes none: its dx was slower this way, BENCHMARKS.md). The GPU
keeps im2col and cuBLAS throughout (this form is not yet measured there). The input is handled
in bands of tile rows, so that the tiles, V and M stay cache-sized.
"""
import numpy

from ..backend import array_module, split_channels
from .im2col import conv_output_size, im2col, workspace

B_T = numpy.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = numpy.array([[1, 1, 1, 0], [0, 1, -1, -1]])

# Each transform P X Q^T of a tile X is one matrix product on the tile's entries in row-major
# order: vec(P X Q^T) = (P kron Q) vec(X). So the three transforms are matrix products too.
INPUT_TRANSFORM = numpy.kron(B_T, B_T)     # (16, 16): vec(B^T d B)
KERNEL_TRANSFORM = numpy.kron(G, G)        # (16, 9):  vec(G g G^T)
OUTPUT_TRANSFORM = numpy.kron(A_T, A_T)    # (4, 16):  vec(A^T m A)

# V and M of one band of tile rows stay under this many bytes (each)
BAND_BYTES = 16 * 2**20
# fewer input or output channels than this: im2col's one product (K = 9C) was faster, or for dx
# col2im's (BENCHMARKS.md)
MIN_CHANNELS = 128


def applies(x, kernel_h, kernel_w, stride, padding, out_channels):
    """Whether Conv2d takes this form to convolve x (N, C, H, W) into out_channels channels: on the
    CPU, 3x3, stride 1, padding 0..2 (so that dx, padded by 2 - padding, can take it too), and
    enough channels on both sides."""
    return (array_module(x) is numpy and kernel_h == kernel_w == 3 and stride == 1 and 0 <= padding <= 2
            and min(x.shape[1], out_channels) >= MIN_CHANNELS)


def kernel_transform(weights):
    """U (16, O, C): G W[o, c] G^T for weights (O, C, 3, 3), its 4x4 entries (a, b) first."""
    out_c, in_c = weights.shape[:2]
    transform = KERNEL_TRANSFORM.astype(weights.dtype)
    return (transform @ weights.reshape(out_c * in_c, 9).T).reshape(16, out_c, in_c)


def transformed_input_bands(x, padding, out_c, out_h, out_w):
    """Yield (image, V, row0, rows, tile_rows) for each band of tile rows of each image of x (N, C, H, W):
    V (C, 16, T) holds B^T d B of the band's T = tile_rows * tiles_w input tiles, which make output
    rows row0 .. row0 + rows. V lives in the shared workspace until the next band."""
    n, channels, _, _ = x.shape
    tiles_h, tiles_w = -(-out_h // 2), -(-out_w // 2)
    # tile rows per band: V's and M's share of a band stay under BAND_BYTES
    band = max(1, min(tiles_h, BAND_BYTES // (16 * max(channels, out_c) * tiles_w * x.dtype.itemsize)))
    tiles = workspace.get(numpy, 16 * channels * band * tiles_w, x.dtype, slot=0)
    transformed = workspace.get(numpy, 16 * channels * band * tiles_w, x.dtype, slot=1)
    input_transform = INPUT_TRANSFORM.astype(x.dtype)
    for image in range(n):
        for tile_row0 in range(0, tiles_h, band):
            tile_rows = min(band, tiles_h - tile_row0)
            count = tile_rows * tiles_w
            # the 4x4 input tiles d, 2 apart: im2col's patches for a 4x4 kernel with stride 2, (C, 16, T)
            d = im2col(x[image], 4, 4, 2, tile_row0, tile_rows, tiles_w, tiles, padding).reshape(channels, 16, count)
            v = numpy.matmul(input_transform, d, out=transformed[:d.size].reshape(d.shape))
            yield image, v, 2 * tile_row0, min(2 * tile_rows, out_h - 2 * tile_row0), tile_rows


def convolve3x3(x, weights, padding):
    """The 3x3, stride-1 convolution of x (N, C, H, W) with weights (O, C, 3, 3), padded by `padding`
    zeros on each side, without a bias: y (N, O, H + 2*padding - 2, W + 2*padding - 2)."""
    n, _, height, width = x.shape
    out_c = weights.shape[0]
    out_h, out_w = conv_output_size(height, 3, 1, padding), conv_output_size(width, 3, 1, padding)
    kernels = kernel_transform(weights)
    output_transform = OUTPUT_TRANSFORM.astype(x.dtype)
    y = numpy.empty((n, out_c, out_h, out_w), dtype=x.dtype)
    for image, v, row0, rows, tile_rows in transformed_input_bands(x, padding, out_c, out_h, out_w):
        count = v.shape[2]
        products = workspace.get(numpy, 16 * out_c * count, x.dtype, slot=2)
        m = numpy.matmul(kernels, v.transpose(1, 0, 2), out=products[:16 * out_c * count].reshape(16, out_c, count))
        # A^T M A: the 2x2 output tiles, (2, 2, O, tile rows, tile columns)
        tile_out = (output_transform @ m.reshape(16, -1)).reshape(2, 2, out_c, tile_rows, -1)

        def place(y, tile_out):   # y (1, o, ...) and tile_out (1, o, 2, 2, ...): a block of output channels
            for tile_y in range(2):
                for tile_x in range(2):
                    target = y[0, :, row0 + tile_y:row0 + rows:2, tile_x::2]
                    target[...] = tile_out[0, :, tile_y, tile_x, :target.shape[1], :target.shape[2]]
        split_channels(place, y[image:image + 1], tile_out.transpose(2, 0, 1, 3, 4)[numpy.newaxis])
    return y


def weight_grad3x3(x, dy, padding):
    """dL/dW (O, C, 3, 3) of y = convolve3x3(x, W, padding), from dy (N, O, H', W'): each step of
    convolve3x3 run backwards (its adjoint), the 16 products now summing over the tiles:

        dM[a, b] = (A dy_tile A^T)[a, b]       (16, O, T)   dy's 2x2 tiles, zero past the output's edge
        dU[a, b] = dM[a, b] @ V[a, b].T         (16, O, C)   the product sums over the tiles; summed
                                                            over the images and bands too
        dW[o, c] = G^T dU[:, :, o, c] G         (O, C, 3, 3)
    """
    channels = x.shape[1]
    _, out_c, out_h, out_w = dy.shape
    output_transform = OUTPUT_TRANSFORM.astype(x.dtype)
    grad_u = numpy.zeros((16, out_c, channels), dtype=x.dtype)
    band_grad_u = numpy.empty_like(grad_u)
    for image, v, row0, rows, tile_rows in transformed_input_bands(x, padding, out_c, out_h, out_w):
        count = v.shape[2]
        # dy's 2x2 tiles, (1, O, 2, 2, tile rows, tile columns); zero where a tile hangs past the edge
        dy_tiles = numpy.zeros((1, out_c, 2, 2, tile_rows, count // tile_rows), dtype=dy.dtype)

        def gather(dy, dy_tiles):   # a block of output channels
            for tile_y in range(2):
                for tile_x in range(2):
                    source = dy[0, :, row0 + tile_y:row0 + rows:2, tile_x::2]
                    dy_tiles[0, :, tile_y, tile_x, :source.shape[1], :source.shape[2]] = source
        split_channels(gather, dy[image:image + 1], dy_tiles)
        products = workspace.get(numpy, 16 * out_c * count, x.dtype, slot=2)
        grad_m = numpy.matmul(output_transform.T, dy_tiles.reshape(out_c, 4, count),
                              out=products[:16 * out_c * count].reshape(out_c, 16, count))       # (O, 16, T)
        grad_u += numpy.matmul(grad_m.transpose(1, 0, 2), v.transpose(1, 2, 0), out=band_grad_u)  # (16, O, C)
    transform = KERNEL_TRANSFORM.astype(x.dtype)
    return (transform.T @ grad_u.reshape(16, -1)).reshape(3, 3, out_c, channels).transpose(2, 3, 0, 1)
