"""The one random stream behind dropout masks and weight initialisation.

A host-side NumPy Generator holds the state; every draw takes a seed from that
stream. Dropout's uniform numbers are then generated on the array's own device
(no host->GPU copy of a mask); initial weights (normal) are drawn on the host and
copied, once. So the whole state is one small dict (saved in checkpoints,
restored on resume).

Uniform numbers (dropout masks) come from a counter-based hash, splitmix64
(Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):

    z  = seed + (k + 1) * 0x9E3779B97F4A7C15      (mod 2**64, k = the element's flat index)
    z  = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z  = (z ^ (z >> 27)) * 0x94D049BB133111EB
    z ^= z >> 31
    u  = (z >> 40) / 2**24                        (24 random bits: exact in float32, in [0, 1))

Every element is computed on its own, so the GPU computes it in one kernel that
needs no generator state and never waits for the device (cuRAND, reseeded for
every mask, made the host wait for the GPU at each mask: BENCHMARKS.md), and
NumPy and CuPy give the same numbers bit for bit.
"""
import numpy

_stream = numpy.random.Generator(numpy.random.PCG64(0))


def seed(value):
    global _stream
    _stream = numpy.random.Generator(numpy.random.PCG64(value))


def get_state():
    return _stream.bit_generator.state


def set_state(state):
    _stream.bit_generator.state = state


def next_seed():
    return int(_stream.integers(0, 2**62))


GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX_1, MIX_2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def splitmix_uniform(seed, size):
    """float32 uniforms in [0, 1) for flat indices 0..size-1 (NumPy; uint64 arithmetic wraps mod 2**64)."""
    z = numpy.arange(1, size + 1, dtype=numpy.uint64)
    z *= numpy.uint64(GOLDEN_GAMMA)
    z += numpy.uint64(seed)
    z ^= z >> numpy.uint64(30)
    z *= numpy.uint64(MIX_1)
    z ^= z >> numpy.uint64(27)
    z *= numpy.uint64(MIX_2)
    z ^= z >> numpy.uint64(31)
    return (z >> numpy.uint64(40)).astype(numpy.float32) * numpy.float32(2.0**-24)


def uniform(xp, shape, dtype):
    """Uniform [0, 1) samples of `shape` on the device of module xp (the same numbers on either)."""
    seed = next_seed()
    size = int(numpy.prod(shape))
    if xp is numpy:
        values = splitmix_uniform(seed, size)
    else:
        from .layers import cuda_kernels
        values = cuda_kernels.splitmix_uniform(seed, size)
    return values.reshape(shape).astype(dtype, copy=False)


def normal(xp, shape, std, dtype):
    """Normal(0, std^2) samples of `shape` on the device of module xp."""
    values = numpy.random.default_rng(next_seed()).standard_normal(shape) * std
    return xp.asarray(values.astype(dtype))
