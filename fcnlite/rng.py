"""The one random stream behind dropout masks and weight initialisation.

A host-side NumPy Generator holds the state; each random array is drawn on
the array's own device by a generator seeded afresh from that stream. So the
whole state is one small dict (saved in checkpoints, restored on resume), and
masks are generated where they are used (no host->GPU copy of a mask).
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


def uniform(xp, shape, dtype):
    """Uniform [0, 1) samples of `shape` on the device of module xp."""
    if xp is numpy:
        return numpy.random.default_rng(next_seed()).random(shape, dtype=numpy.float32).astype(dtype, copy=False)
    generator = _device_generator(xp)
    generator.seed(next_seed())   # the same numbers as a new generator with this seed
    return generator.random_sample(shape, dtype=numpy.float32).astype(dtype, copy=False)


_device_generators = {}


def _device_generator(xp):
    """One CuPy generator per device, reseeded for every array.

    A new cuRAND generator for every mask made a dropout layer take 0.3-1.0 ms on an
    H200 (XORWOW or Philox alike), a reseeded one 0.1-0.4 ms. Philox is counter-based:
    reseeding it is cheap.
    """
    device = xp.cuda.Device().id
    if device not in _device_generators:
        _device_generators[device] = xp.random.RandomState(0, method=xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    return _device_generators[device]


def normal(xp, shape, std, dtype):
    """Normal(0, std^2) samples of `shape` on the device of module xp."""
    values = numpy.random.default_rng(next_seed()).standard_normal(shape) * std
    return xp.asarray(values.astype(dtype))
