"""fcnlite.rng: the splitmix64 uniforms behind dropout masks, the same on NumPy and CuPy."""
import numpy
import pytest

from fcnlite import backend, rng

MASK64 = 2**64 - 1


def splitmix64_reference(seed, count):
    """The published algorithm, one number at a time with Python integers: state += gamma, then mix."""
    state, outputs = seed, []
    for _ in range(count):
        state = (state + rng.GOLDEN_GAMMA) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * rng.MIX_1) & MASK64
        z = ((z ^ (z >> 27)) * rng.MIX_2) & MASK64
        outputs.append(z ^ (z >> 31))
    return outputs


def test_splitmix64_reference_gives_the_published_first_outputs():
    # the first outputs of splitmix64 seeded with 0 (Vigna's splitmix64.c, Java's SplittableRandom)
    assert splitmix64_reference(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**62 - 1, 2**64 - 5])
def test_splitmix_uniform_is_the_top_24_bits_of_splitmix64(seed):
    values = rng.splitmix_uniform(seed, 37)
    expected = numpy.array([z >> 40 for z in splitmix64_reference(seed, 37)], dtype=numpy.float64) / 2**24
    assert values.dtype == numpy.float32
    numpy.testing.assert_array_equal(values.astype(numpy.float64), expected)


def test_splitmix_uniform_looks_uniform():
    values = rng.splitmix_uniform(2024, 200_000).astype(numpy.float64)
    assert values.min() >= 0.0 and values.max() < 1.0
    assert values.mean() == pytest.approx(0.5, abs=0.005)
    assert values.var() == pytest.approx(1 / 12, abs=0.002)
    counts = numpy.bincount((values * 20).astype(int), minlength=20)
    chi_square = float(((counts - 10_000) ** 2 / 10_000).sum())
    assert chi_square < 50.0, chi_square    # 19 degrees of freedom: 50 is beyond the 99.99th percentile
    # neighbours are not correlated (a dropout mask's adjacent activations are drawn independently)
    assert abs(numpy.corrcoef(values[:-1], values[1:])[0, 1]) < 0.01


def test_uniform_draws_its_seed_from_the_stream_and_has_the_shape_and_dtype(xp):
    rng.seed(5)
    seed = rng.next_seed()
    rng.seed(5)
    values = rng.uniform(xp, (3, 4, 5), numpy.float64)
    assert isinstance(values, xp.ndarray) and values.shape == (3, 4, 5) and values.dtype == numpy.float64
    numpy.testing.assert_array_equal(backend.to_numpy(values).ravel(), rng.splitmix_uniform(seed, 60))
    assert (backend.to_numpy(rng.uniform(xp, (3, 4, 5), numpy.float64)) != backend.to_numpy(values)).any()
