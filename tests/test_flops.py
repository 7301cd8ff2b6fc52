"""fcnlite.flops: counts against hand counts, against the real forward's shapes, and against PyTorch's counter."""
import numpy
import pytest

from fcnlite.flops import count_flops
from fcnlite.layers import Conv2d, ConvTranspose2d, Layer, ReLU
from fcnlite.models import FCN8s, FCN16s, FCN32s, Model, build_model


class ConvThenUpsample(Model):
    """conv (3 -> 4, 3x3, pad 1), ReLU, transposed conv (4 -> 2, 4x4, stride 2): small enough to count by hand."""

    def __init__(self, frozen):
        super().__init__()
        self.add("conv", Conv2d(3, 4, 3, padding=1))
        self.add("relu", ReLU())
        self.add("up", ConvTranspose2d(4, 2, 4, stride=2)).frozen = frozen

    def forward(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x


@pytest.mark.parametrize("frozen", [False, True])
def test_conv_and_transposed_conv_count_by_hand(frozen):
    count = count_flops(ConvThenUpsample(frozen), (2, 3, 8, 8))
    conv, relu, up = count.rows
    # conv: 2 images x 8x8 outputs x 4 channels, each 3*3*3 multiply-adds
    assert conv.output_shape == (2, 4, 8, 8)
    assert conv.forward == 2 * (2 * 8 * 8 * 4) * (3 * 3 * 3) == 27648
    assert (conv.backward_input, conv.backward_weights) == (0, 27648)   # the image needs no gradient
    assert relu.forward == relu.backward == 0
    # transposed conv: every one of the 2 x 8x8 input pixels stamps a 2 x 4x4 kernel from 4 channels
    assert up.output_shape == (2, 2, 18, 18)
    assert up.forward == 2 * (2 * 8 * 8) * 4 * (2 * 4 * 4) == 32768
    assert up.backward_input == 32768
    assert up.backward_weights == (0 if frozen else 32768)
    assert count.forward == 27648 + 32768
    assert count.step == count.forward + count.backward == 2 * 27648 + (2 if frozen else 3) * 32768


def test_input_gradient_adds_the_first_convolutions_dx():
    without = count_flops(ConvThenUpsample(True), (1, 3, 8, 8))
    with_input = count_flops(ConvThenUpsample(True), (1, 3, 8, 8), input_gradient=True)
    assert with_input.rows[0].backward_input == with_input.rows[0].forward == without.rows[0].forward
    assert with_input.step - without.step == without.rows[0].forward


def test_a_layer_told_to_skip_dx_has_none_counted():
    model = ConvThenUpsample(True)
    model.layers["up"].input_grad = False
    count = count_flops(model, (1, 3, 8, 8), input_gradient=True)
    assert count.rows[2].backward_input == 0 and count.rows[0].backward_input == count.rows[0].forward


def test_fcn32s_count_matches_a_hand_count():
    """Width 1/32 (channels 2, 4, 8, 16, 16, fc 128) on a 1x3x8x8 input, shape by shape."""
    model = FCN32s(n_classes=21, width=1 / 32)
    count = count_flops(model, (1, 3, 8, 8))
    # (layer, in channels, out channels, kernel, output side): conv1_1 pads by 100: 8 + 200 - 2 = 206;
    # poolings in ceil mode: 206 -> 103 -> 52 -> 26 -> 13 -> 7; fc6 (7x7) -> 1; upscore: (1-1)*32 + 64 = 64
    convs = [("conv1_1", 3, 2, 3, 206), ("conv1_2", 2, 2, 3, 206),
             ("conv2_1", 2, 4, 3, 103), ("conv2_2", 4, 4, 3, 103),
             ("conv3_1", 4, 8, 3, 52), ("conv3_2", 8, 8, 3, 52), ("conv3_3", 8, 8, 3, 52),
             ("conv4_1", 8, 16, 3, 26), ("conv4_2", 16, 16, 3, 26), ("conv4_3", 16, 16, 3, 26),
             ("conv5_1", 16, 16, 3, 13), ("conv5_2", 16, 16, 3, 13), ("conv5_3", 16, 16, 3, 13),
             ("fc6", 16, 128, 7, 1), ("fc7", 128, 128, 1, 1), ("score_fr", 128, 21, 1, 1)]
    forward = {name: 2 * c_in * kernel * kernel * c_out * side * side for name, c_in, c_out, kernel, side in convs}
    forward["upscore"] = 2 * 21 * 21 * 64 * 64 * (1 * 1)        # Cin * Cout*k*k per input pixel, 1x1 input
    rows = {row.name: row for row in count.rows}
    for name, _, c_out, _, side in convs:
        assert rows[name].output_shape == (1, c_out, side, side), name
    assert rows["pool5"].output_shape == (1, 16, 7, 7)
    assert rows["upscore"].output_shape == (1, 21, 64, 64)
    assert rows["score"].output_shape == (1, 21, 8, 8)
    assert {name: rows[name].forward for name in forward} == forward
    assert count.forward == sum(forward.values())
    # backward: dW of every convolution, dx of all but conv1_1, dx only through the frozen upscore
    conv_total = sum(forward[name] for name, *_ in convs)
    assert count.backward == 2 * conv_total - forward["conv1_1"] + forward["upscore"]


@pytest.mark.parametrize("architecture", ["fcn16s", "fcn8s", "fcn8s-atonce"])
def test_count_follows_the_real_forward_and_leaves_the_model_working(architecture):
    model = build_model(architecture, n_classes=5, width=1 / 16)
    images = numpy.random.default_rng(0).standard_normal((1, 3, 20, 27)).astype(numpy.float32)
    count = count_flops(model, images.shape)
    assert sorted(row.name for row in count.rows) == sorted(model.layers)   # every layer, once
    assert count.rows[-1].name == "score" and count.rows[-1].output_shape == (1, 5, 20, 27)
    assert all("forward" not in layer.__dict__ for layer in model.layers.values())
    scores = model.forward(images)              # the real forward again, not a stub
    assert scores.shape == (1, 5, 20, 27) and all(stride != 0 for stride in scores.strides)
    assert count_flops(model, images.shape).as_dict() == count.as_dict()


def test_count_is_linear_in_the_batch_and_grows_with_the_image():
    model = FCN8s(n_classes=21, width=1 / 16)
    one, two = count_flops(model, (1, 3, 64, 64)), count_flops(model, (2, 3, 64, 64))
    assert (two.forward, two.backward) == (2 * one.forward, 2 * one.backward)
    larger = count_flops(model, (1, 3, 128, 128))
    # sub-linear in the image's area: conv1_1's 100-pixel margins are there at every size
    assert one.forward < larger.forward < 4 * one.forward


def test_a_layer_without_a_shape_rule_is_named():
    class Mystery(Layer):
        def forward(self, x):
            return x

    class WithMystery(Model):
        def __init__(self):
            super().__init__()
            self.add("mystery", Mystery())

        def forward(self, x):
            return self.layers["mystery"].forward(x)

    with pytest.raises(TypeError, match="'mystery' of type Mystery"):
        count_flops(WithMystery(), (1, 3, 4, 4))


@pytest.mark.parametrize("architecture", ["fcn32s", "fcn8s"])
def test_counts_agree_with_pytorchs_flop_counter(architecture):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from fcnlite.benchmark import build_torch_fcn

    model = build_model(architecture, n_classes=21, width=1 / 16)
    net = build_torch_fcn(model)
    images = torch.randn(1, 3, 24, 40)
    count = count_flops(model, tuple(images.shape))
    with FlopCounterMode(display=False) as counter:
        scores = net(images)
    assert counter.get_total_flops() == count.forward
    with FlopCounterMode(display=False) as counter:
        net(images).sum().backward()     # the image needs no gradient: PyTorch skips conv1_1's dx too
    assert counter.get_total_flops() == count.step
    assert tuple(scores.shape) == count.rows[-1].output_shape


def test_table_lists_the_convolutions_and_the_totals():
    count = count_flops(FCN16s(n_classes=21, width=1 / 16), (1, 3, 32, 32))
    table = count.table()
    assert "conv1_1" in table and "upscore16" in table and "relu1_1" not in table
    assert f"{count.step / 1e9:.3f} GFLOP" in table
