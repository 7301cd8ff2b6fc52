"""SGD as Caffe's solver runs it: momentum, weight decay on weights only, lr x2 on biases, frozen layers untouched."""
import numpy
import pytest

from fcnlite import SGD, backend, optim
from fcnlite.layers import Conv2d
from fcnlite.models import build_model
from fcnlite.models.base import PARAMETER_ALIGNMENT_BYTES

LR, MOMENTUM, DECAY = 0.1, 0.9, 0.01


def small_model(learnable_upsampling=False, seed=0):
    """A float64 FCN-16s at width 1/16 with random parameters (score layers included)."""
    model = build_model("fcn16s", n_classes=3, width=1 / 16, dtype=numpy.float64, learnable_upsampling=learnable_upsampling)
    generator = numpy.random.default_rng(seed)
    for _, value, _ in model.named_parameters():
        value[...] = backend.to_device(generator.standard_normal(value.shape))
    return model


def set_random_gradients(model, seed):
    """Fill every gradient with random values; returns host copies {name: grad}."""
    generator = numpy.random.default_rng(seed)
    grads = {}
    for name, _, grad in model.named_parameters():
        grads[name] = generator.standard_normal(grad.shape)
        grad[...] = backend.to_device(grads[name])
    return grads


def host_parameters(model):
    return {name: backend.to_numpy(value).copy() for name, value, _ in model.named_parameters()}


def test_two_sgd_steps_by_hand(xp):
    model = small_model()
    optimizer = SGD(model, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    start = host_parameters(model)
    g1 = set_random_gradients(model, 1)
    optimizer.step()
    after_one = host_parameters(model)
    g2 = set_random_gradients(model, 2)
    optimizer.step()
    after_two = host_parameters(model)
    for name, w0 in start.items():
        layer, key = name.split("/")
        if layer.startswith("upscore"):
            # frozen bilinear upsampling: never moves, whatever its gradient says
            numpy.testing.assert_array_equal(after_one[name], w0, err_msg=name)
            numpy.testing.assert_array_equal(after_two[name], w0, err_msg=name)
            continue
        lr_mult, decay_mult = (2.0, 0.0) if key == "b" else (1.0, 1.0)
        v1 = -LR * lr_mult * (g1[name] + DECAY * decay_mult * w0)
        w1 = w0 + v1
        v2 = MOMENTUM * v1 - LR * lr_mult * (g2[name] + DECAY * decay_mult * w1)
        w2 = w1 + v2
        numpy.testing.assert_allclose(after_one[name], w1, rtol=1e-13, atol=1e-14, err_msg=name)
        numpy.testing.assert_allclose(after_two[name], w2, rtol=1e-13, atol=1e-14, err_msg=name)


def test_frozen_parameters_have_no_momentum_buffer(xp):
    optimizer = SGD(small_model(), lr=LR)
    assert not any(name.startswith("upscore") for name in optimizer.velocity)
    assert {"score_fr/W", "score_fr/b", "conv1_1/W", "fc7/b"} <= set(optimizer.velocity)


def test_learnable_upsampling_is_trained_with_weight_decay(xp):
    model = small_model(learnable_upsampling=True)
    optimizer = SGD(model, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    w0 = backend.to_numpy(model.layers["upscore2"].params["W"]).copy()
    grads = set_random_gradients(model, 3)
    optimizer.step()
    expected = w0 - LR * (grads["upscore2/W"] + DECAY * w0)
    numpy.testing.assert_allclose(backend.to_numpy(model.layers["upscore2"].params["W"]), expected, rtol=1e-13)


def test_step_does_not_touch_the_gradients(xp):
    model = small_model()
    grads = set_random_gradients(model, 4)
    SGD(model, lr=LR).step()
    for name, _, grad in model.named_parameters():
        numpy.testing.assert_array_equal(backend.to_numpy(grad), grads[name])


def test_state_dict_round_trip_gives_identical_next_steps(xp):
    model = small_model()
    optimizer = SGD(model, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    for seed in (5, 6):
        set_random_gradients(model, seed)
        optimizer.step()
    state = optimizer.state_dict()
    saved_parameters = host_parameters(model)
    # the run goes on ...
    for seed in (7, 8):
        set_random_gradients(model, seed)
        optimizer.step()
    expected = host_parameters(model)
    # ... and a resumed run, from the saved parameters and optimizer state, takes the same steps
    resumed = small_model(seed=99)
    for name, value, _ in resumed.named_parameters():
        value[...] = backend.to_device(saved_parameters[name])
    resumed_optimizer = SGD(resumed, lr=1.0, momentum=0.0, weight_decay=0.0)
    resumed_optimizer.load_state_dict(state)
    assert (resumed_optimizer.lr, resumed_optimizer.momentum, resumed_optimizer.weight_decay) == (LR, MOMENTUM, DECAY)
    for seed in (7, 8):
        set_random_gradients(resumed, seed)
        resumed_optimizer.step()
    for name, value in host_parameters(resumed).items():
        numpy.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_state_dict_holds_host_copies(xp):
    model = small_model()
    optimizer = SGD(model, lr=LR)
    set_random_gradients(model, 9)
    optimizer.step()
    state = optimizer.state_dict()
    for name, velocity in state["velocity"].items():
        assert isinstance(velocity, numpy.ndarray)
        assert velocity is not optimizer.velocity[name] and velocity.base is not optimizer.velocity[name]
    before = {name: velocity.copy() for name, velocity in state["velocity"].items()}
    optimizer.step()
    for name, velocity in state["velocity"].items():
        numpy.testing.assert_array_equal(velocity, before[name], err_msg=name)


def test_load_state_dict_rejects_buffers_the_model_does_not_train(xp):
    optimizer = SGD(small_model(), lr=LR)
    state = optimizer.state_dict()
    state["velocity"]["upscore2/W"] = numpy.zeros((3, 3, 4, 4))
    with pytest.raises(KeyError, match="upscore2/W"):
        optimizer.load_state_dict(state)


def test_load_state_dict_rejects_a_shape_mismatch(xp):
    optimizer = SGD(small_model(), lr=LR)
    state = optimizer.state_dict()
    state["velocity"]["score_fr/b"] = numpy.zeros(5)
    with pytest.raises(ValueError, match=r"score_fr/b has shape \(5,\), the model \(3,\)"):
        optimizer.load_state_dict(state)


def test_a_state_refused_leaves_every_buffer_as_it_was(xp):
    optimizer = SGD(small_model(), lr=LR)
    state = optimizer.state_dict()
    names = list(state["velocity"])
    for name in names:
        state["velocity"][name] = numpy.ones_like(state["velocity"][name])
    state["velocity"][names[-1]] = numpy.zeros(7)   # the last one checked: the others came first
    with pytest.raises(ValueError):
        optimizer.load_state_dict(state)
    for name, velocity in optimizer.velocity.items():
        assert not backend.to_numpy(velocity).any(), name


# ---------------------------------------------------------------- packing (Model.pack_parameters)

def test_packing_keeps_every_value_and_gradient_in_aligned_views_grouped_by_multipliers(xp):
    model = small_model()
    grads = set_random_gradients(model, 10)
    values = host_parameters(model)
    groups = model.pack_parameters()
    multipliers = model.parameter_multipliers()
    assert [(group.lr_mult, group.decay_mult) for group in groups] == [(1.0, 1.0), (2.0, 0.0), (0.0, 0.0)]
    assert groups[0].start == 0 and groups[-1].stop == model.flat_values.size
    assert all(earlier.stop == later.start for earlier, later in zip(groups, groups[1:]))
    for name, value, grad in model.named_parameters():
        numpy.testing.assert_array_equal(backend.to_numpy(value), values[name], err_msg=name)
        numpy.testing.assert_array_equal(backend.to_numpy(grad), grads[name], err_msg=name)
        offset = model.parameter_offsets[name]
        assert offset * value.itemsize % PARAMETER_ALIGNMENT_BYTES == 0
        group, = (group for group in groups if (group.lr_mult, group.decay_mult) == multipliers[name])
        assert group.start <= offset and offset + value.size <= group.stop
        # the layer's arrays are the flat arrays' entries: a write to one is a write to the other
        flat = model.flat_values[offset: offset + value.size]
        flat += 1
        numpy.testing.assert_array_equal(backend.to_numpy(value), values[name] + 1, err_msg=name)
        model.flat_grads[offset] = 7
        assert float(grad.reshape(-1)[0]) == 7


def test_packing_again_changes_nothing_unless_the_multipliers_changed(xp):
    model = small_model()
    groups = model.pack_parameters()
    flat_values, conv1_1 = model.flat_values, model.layers["conv1_1"].params["W"]
    assert model.pack_parameters() is groups and model.flat_values is flat_values
    assert model.layers["conv1_1"].params["W"] is conv1_1
    # unfreezing the upsampling moves it into the weights' group, keeping every value
    values = host_parameters(model)
    model.layers["upscore2"].frozen = False
    groups = model.pack_parameters()
    assert [(group.lr_mult, group.decay_mult) for group in groups] == [(1.0, 1.0), (2.0, 0.0), (0.0, 0.0)]
    assert model.parameter_offsets["upscore2/W"] < groups[0].stop
    assert model.parameter_offsets["upscore16/W"] >= groups[2].start
    for name, value in host_parameters(model).items():
        numpy.testing.assert_array_equal(value, values[name], err_msg=name)


def test_packing_again_after_an_array_was_replaced_takes_the_new_array_in(xp):
    model = small_model()
    optimizer = SGD(model, lr=LR)
    replacement = xp.full(model.layers["fc7"].params["b"].shape, 3.0)
    model.layers["fc7"].params["b"] = replacement   # not written in place: no longer a view of flat_values
    model.pack_parameters()
    assert float(model.flat_values[model.parameter_offsets["fc7/b"]]) == 3.0
    model.flat_values[model.parameter_offsets["fc7/b"]] = 4.0
    assert float(model.layers["fc7"].params["b"][0]) == 4.0
    # the optimizer made before still holds the old arrays' velocity: it must not step on the new ones
    with pytest.raises(RuntimeError, match="changed after this optimizer was made"):
        optimizer.step()


def test_an_optimizer_made_before_a_layer_was_unfrozen_refuses_to_step(xp):
    model = small_model()
    optimizer = SGD(model, lr=LR)
    model.layers["upscore2"].frozen = False
    SGD(model, lr=LR).step()   # a new one packs anew and steps
    with pytest.raises(RuntimeError, match="make a new SGD"):
        optimizer.step()


@pytest.mark.parametrize("change", ["freeze", "unfreeze", "replace", "replace layer", "add layer"])
def test_an_optimizer_refuses_to_step_on_parameters_changed_after_it_was_made_with_nothing_packed_since(xp, change):
    # a user freezing a layer after making the optimizer: its step would train the layer regardless
    model = small_model()
    optimizer = SGD(model, lr=LR)
    if change == "freeze":
        model.layers["conv1_1"].frozen = True
    elif change == "unfreeze":
        model.layers["upscore2"].frozen = False
    elif change == "replace":   # an array replaced, not written in place: the optimizer would step on the old one
        model.layers["fc7"].params["b"] = xp.zeros_like(model.layers["fc7"].params["b"])
    elif change == "replace layer":   # a new score layer under the old name: its parameters were never packed
        model.layers["score_fr"] = Conv2d(*model.layers["score_fr"].params["W"].shape[1::-1], 1, dtype=numpy.float64)
    else:
        model.add("extra", Conv2d(3, 3, 1, dtype=numpy.float64))
    with pytest.raises(RuntimeError, match="make a new SGD"):
        optimizer.step()


def test_writing_parameters_in_place_keeps_the_optimizer(xp):
    model = small_model()
    optimizer = SGD(model, lr=LR)
    model.layers["fc7"].params["b"][...] = 1.0   # as load_weights writes
    set_random_gradients(model, 3)
    optimizer.step()
    assert model.packing_intact()


def test_an_optimizer_of_a_model_without_parameters_steps_doing_nothing():
    from fcnlite.models.base import Model
    SGD(Model(), lr=LR).step()


def test_a_frozen_layer_in_the_middle_has_no_velocity_and_does_not_move(xp):
    model = small_model()
    model.layers["conv1_1"].frozen = True
    optimizer = SGD(model, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    groups = model.parameter_groups
    assert [(group.lr_mult, group.decay_mult) for group in groups] == [(1.0, 1.0), (2.0, 0.0), (0.0, 0.0)]
    assert optimizer.flat_velocity.size == groups[1].stop
    assert not {"conv1_1/W", "conv1_1/b"} & set(optimizer.velocity)
    assert groups[2].start <= model.parameter_offsets["conv1_1/W"] < groups[2].stop
    before = host_parameters(model)
    set_random_gradients(model, 12)
    optimizer.step()
    after = host_parameters(model)
    for name in ("conv1_1/W", "conv1_1/b", "upscore2/W"):
        numpy.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert not numpy.array_equal(after["conv1_2/W"], before["conv1_2/W"])


def test_packing_refuses_parameters_of_different_dtypes():
    model = small_model()
    model.layers["fc7"].params["b"] = numpy.zeros(model.layers["fc7"].params["b"].shape, dtype=numpy.float32)
    with pytest.raises(ValueError, match=r"fc7/b is a float32 NumPy array, conv1_1/W a float64 NumPy array: "
                                         r"a model's parameters share one dtype and device"):
        model.pack_parameters()


def test_sgd_updates_each_group_in_one_pass_and_keeps_a_velocity_view_per_parameter(monkeypatch):
    model = small_model()
    optimizer = SGD(model, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    passes = []
    update = optim._sgd_update_host
    monkeypatch.setattr(optim, "_sgd_update_host",
                        lambda value, *rest: (passes.append(value.size), update(value, *rest)))
    set_random_gradients(model, 11)
    optimizer.step()
    # each pass covers its group's parameters, each rounded up to 256 bytes (32 float64 entries)
    sizes = {}
    for name, value, _ in model.named_parameters():
        if not name.startswith("upscore"):
            sizes.setdefault(name.endswith("/b"), []).append(-(-value.size // 32) * 32)
    assert passes == [sum(sizes[False]), sum(sizes[True])]
    for name, velocity in optimizer.velocity.items():
        assert numpy.shares_memory(velocity, optimizer.flat_velocity), name
        assert velocity.any(), name


@pytest.mark.parametrize("settings, error, message", [
    ({"lr": float("nan")}, ValueError, "SGD: lr is nan: it must be a finite number, at least 0"),
    ({"lr": -0.1}, ValueError, "SGD: lr is -0.1: it must be a finite number, at least 0"),
    ({"lr": "1e-4"}, TypeError, "SGD: lr must be a number, not str '1e-4'"),
    ({"lr": LR, "momentum": 1.5}, ValueError, "SGD: momentum is 1.5: it must be 0..1"),
    ({"lr": LR, "momentum": -0.9}, ValueError, "SGD: momentum is -0.9: it must be 0..1"),
    ({"lr": LR, "weight_decay": float("inf")}, ValueError, "SGD: weight_decay is inf: it must be a finite number"),
    ({"lr": LR, "weight_decay": None}, TypeError, "SGD: weight_decay must be a number, not NoneType None"),
])
def test_hyperparameters_that_cannot_train_are_refused_when_the_optimizer_is_made(settings, error, message):
    # a NaN learning rate made every weight NaN at the first step; a string failed only there
    with pytest.raises(error) as raised:
        SGD(small_model(), **settings)
    assert str(raised.value).startswith(message)


def test_numpy_numbers_and_a_zero_learning_rate_are_hyperparameters_too():
    SGD(small_model(), lr=numpy.float32(0.0), momentum=numpy.float64(0.9), weight_decay=0)
