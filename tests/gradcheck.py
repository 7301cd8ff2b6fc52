"""Numerical gradient checks (CS231n's eval_numerical_gradient_array, Chainer's check_backward).

For a layer y = forward(x) and a random upstream gradient dout, the analytic
backward must equal the gradient of the scalar

    f(x) = sum(forward(x) * dout)

which centred differences give entry by entry:

    df/dx[i] ~ sum((forward(x + eps e_i) - forward(x - eps e_i)) * dout) / (2 eps)

Subtracting the two outputs before weighting by dout keeps the outputs that do not
move exactly equal (a pixel outside every window, a max-pool loser), so their
numerical gradient is exactly 0, as the analytic one. In float64 with eps = 1e-6
a correct backward agrees to a relative error far below 1e-6.

Arrays may live on either backend: perturbations are written into the live array
(an input or a layer's parameter), results are compared on the host.
"""
import numpy

from fcnlite import backend


def rel_error(analytic, numerical, floor=1e-8):
    """Largest element-wise relative error |a - n| / max(floor, |a| + |n|) (CS231n, floor 1e-8).

    The floor keeps entries whose gradient is (nearly) zero from dividing by zero; a larger
    floor holds gradients smaller than it to an absolute error of floor * the threshold.
    """
    analytic = numpy.asarray(backend.to_numpy(analytic), dtype=numpy.float64)
    numerical = numpy.asarray(backend.to_numpy(numerical), dtype=numpy.float64)
    assert analytic.shape == numerical.shape, (analytic.shape, numerical.shape)
    if analytic.size == 0:
        return 0.0
    return float(numpy.max(numpy.abs(analytic - numerical)
                           / numpy.maximum(floor, numpy.abs(analytic) + numpy.abs(numerical))))


def numerical_gradient(forward, x, dout, eps=1e-6, indices=None):
    """d sum(forward() * dout) / dx by centred differences; forward() must read the live array x.

    indices: the entries to differentiate (tuples); all of x when None. Returns a host
    float64 array shaped like x (zeros at entries not asked for) when indices is None,
    else a 1-D array with one value per index.
    """
    dout = numpy.asarray(backend.to_numpy(dout), dtype=numpy.float64)
    all_entries = indices is None
    indices = list(numpy.ndindex(*x.shape)) if all_entries else [tuple(int(i) for i in index) for index in indices]
    values = numpy.zeros(len(indices))
    for position, index in enumerate(indices):
        old = float(x[index])
        x[index] = old + eps
        plus = numpy.array(backend.to_numpy(forward()), dtype=numpy.float64)
        x[index] = old - eps
        minus = numpy.array(backend.to_numpy(forward()), dtype=numpy.float64)
        x[index] = old
        values[position] = numpy.sum((plus - minus) * dout) / (2 * eps)
    return values.reshape(x.shape) if all_entries else values


def host_pass(layer, x, dy):
    """(y, dx, then each of the layer's gradients in add_param order) of one forward and backward after
    zero_grad, as host copies: what a test compares between two ways of running the same layer."""
    layer.zero_grad()
    y = backend.to_numpy(layer.forward(x)).copy()
    dx = backend.to_numpy(layer.backward(dy)).copy()
    return (y, dx, *(backend.to_numpy(grad).copy() for grad in layer.grads.values()))


def random_entries(shape, count, generator):
    """Up to `count` distinct random index tuples into an array of `shape`."""
    size = int(numpy.prod(shape))
    flat = generator.choice(size, size=min(count, size), replace=False)
    return [tuple(int(i) for i in numpy.unravel_index(f, shape)) for f in flat]


def fresh_backward(layer, out, dout):
    """layer.backward(dout) after zeroing the layer's gradients (they accumulate); always a tuple.

    out is the forward's output: a scalar (a loss) takes dout as a number, an array takes it
    moved to out's device and dtype.
    """
    layer.zero_grad()
    if numpy.ndim(out) == 0:
        dinputs = layer.backward(dout)
    else:
        dinputs = layer.backward(backend.to_device(numpy.asarray(dout), dtype=out.dtype))
    return dinputs if isinstance(dinputs, tuple) else (dinputs,)


def layer_gradient_errors(layer, inputs, forward=None, dout=None, inputs_to_check=None, params_to_check=None,
                          eps=1e-6, seed=0, max_entries=None):
    """Relative errors of layer.backward against numerical gradients, {"x0": .., "W": .., "b": ..}.

    inputs            the arrays forward takes (live: they are perturbed in place)
    forward           a callable running the forward pass (default layer.forward(*inputs));
                      give one that reseeds fcnlite.rng for layers that draw random numbers
    dout              upstream gradient (default: standard normal, or a scalar for a loss)
    inputs_to_check   positions of inputs to differentiate (default: all of them)
    params_to_check   parameter names (default: every parameter of the layer)
    max_entries       check at most this many random entries of each array (default: all)

    The layer's gradients are zeroed before the one backward call, since they accumulate.
    """
    generator = numpy.random.default_rng(seed)
    forward = forward or (lambda: layer.forward(*inputs))
    out = forward()
    if dout is None:
        dout = float(generator.standard_normal()) if numpy.ndim(out) == 0 else generator.standard_normal(out.shape)
    dinputs = fresh_backward(layer, out, dout)
    analytic_params = {key: backend.to_numpy(grad).copy() for key, grad in layer.grads.items()}
    def error(array, analytic):
        analytic = backend.to_numpy(analytic)
        if max_entries is None or array.size <= max_entries:
            return rel_error(analytic, numerical_gradient(forward, array, dout, eps))
        indices = random_entries(array.shape, max_entries, generator)
        numerical = numerical_gradient(forward, array, dout, eps, indices=indices)
        return rel_error(analytic[tuple(numpy.array(indices).T)], numerical)

    errors = {}
    for position in (range(len(dinputs)) if inputs_to_check is None else inputs_to_check):
        errors[f"x{position}"] = error(inputs[position], dinputs[position])
    for key in (layer.params if params_to_check is None else params_to_check):
        errors[key] = error(layer.params[key], analytic_params[key])
    return errors


def distinct_values(shape, generator, scale=1.0):
    """Random values, all different by at least scale/size, so max-pool windows have no ties."""
    size = int(numpy.prod(shape))
    return (generator.permutation(size).reshape(shape) - size / 2) * (scale / size) \
        + generator.uniform(0, 0.1 * scale / size, size).reshape(shape)


def backends_agree(make_layer, inputs, dout=None, rtol=1e-6, atol=1e-6, backends=("numpy", "cupy"), seed=0):
    """Run one layer on NumPy and on CuPy with the same parameters, inputs and dout; compare on the host.

    make_layer()  builds the layer on the current backend (called once per backend)
    inputs        host arrays (moved to each device) or other arguments passed as they are
    Compares the forward output, every input gradient and every parameter gradient;
    returns the host results {"y": .., "dx0": .., "W": ..} of the first backend.
    """
    generator = numpy.random.default_rng(seed)
    results = []
    reference = None
    try:
        for name in backends:
            backend.use(name)
            layer = make_layer()
            if reference is None:
                reference = {key: backend.to_numpy(value).copy() for key, value in layer.params.items()}
            else:
                for key, value in reference.items():
                    layer.params[key][...] = backend.to_device(value, dtype=layer.params[key].dtype)
            device_inputs = [backend.to_device(a) if isinstance(a, numpy.ndarray) else a for a in inputs]
            out = layer.forward(*device_inputs)
            if dout is None:
                dout = 0.7 if numpy.ndim(out) == 0 else generator.standard_normal(out.shape)
            dinputs = fresh_backward(layer, out, dout)
            result = {"y": numpy.asarray(backend.to_numpy(out))}
            result.update({f"dx{i}": backend.to_numpy(d) for i, d in enumerate(dinputs)})
            result.update({key: backend.to_numpy(g).copy() for key, g in layer.grads.items()})
            results.append(result)
    finally:
        backend.use("numpy")
    first, second = results
    assert first.keys() == second.keys()
    for key in first:
        numpy.testing.assert_allclose(second[key], first[key], rtol=rtol, atol=atol,
                                      err_msg=f"{backends[1]} and {backends[0]} differ in {key}")
    return first


def torch_agrees(torch, layer, x, dy, torch_forward, rtol=1e-10, atol=1e-12):
    """A float64 layer on NumPy against PyTorch's autograd: forward, input gradient, every parameter gradient.

    torch_forward(x, params) computes the same function from torch tensors; params holds the
    layer's parameters by name ({"W": .., "b": ..}), each a tensor that requires a gradient.
    """
    y = layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(dy)
    x_t = torch.tensor(x, requires_grad=True)
    params_t = {key: torch.tensor(value, requires_grad=True) for key, value in layer.params.items()}
    y_t = torch_forward(x_t, params_t)
    y_t.backward(torch.tensor(dy))
    numpy.testing.assert_allclose(y, y_t.detach().numpy(), rtol=rtol, atol=atol)
    numpy.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=rtol, atol=atol)
    for key, value in params_t.items():
        numpy.testing.assert_allclose(layer.grads[key], value.grad.numpy(), rtol=rtol, atol=atol, err_msg=key)
