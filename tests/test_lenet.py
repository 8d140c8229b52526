"""The course's LeNet networks: shapes, parameter counts, the older style."""

import pytest
import torch

import convzoo


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_slide_lenet_parameter_count_and_shape():
    model = convzoo.create_model("lenet")
    # conv1 3*6*25+6, conv2 6*16*25+16, fc 400*120+120, 120*84+84, 84*10+10
    assert count(model) == (456 + 2416 + 48120 + 10164 + 850) == 62_006
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_lenet5_parameter_count_and_padding():
    model = convzoo.create_model("lenet5")
    assert count(model) == 61_706
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    # The padding happens inside the model: the first conv sees 32x32 and outputs 28x28.
    seen = {}
    model.features[0].register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    model(torch.randn(1, 1, 28, 28))
    assert seen["shape"] == (1, 6, 28, 28)


@pytest.mark.parametrize("activation,act_cls", [("relu", torch.nn.ReLU), ("tanh", torch.nn.Tanh),
                                                ("sigmoid", torch.nn.Sigmoid)])
@pytest.mark.parametrize("pool,pool_cls", [("max", torch.nn.MaxPool2d),
                                           ("avg", torch.nn.AvgPool2d)])
def test_lenet5_styles(activation, act_cls, pool, pool_cls):
    model = convzoo.create_model("lenet5", activation=activation, pool=pool, num_classes=7)
    kinds = {type(m) for m in model.modules()}
    assert act_cls in kinds and pool_cls in kinds
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 7)
    assert count(model) == 61_706 - 850 + 84 * 7 + 7


def test_lenet5_backward_reaches_every_parameter():
    model = convzoo.create_model("lenet5")
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name,shape", [("lenet5", (1, 1, 32, 32)), ("lenet5", (1, 3, 28, 28)),
                                        ("lenet", (1, 3, 28, 28))])
def test_wrong_input_size_names_the_model_and_size(name, shape):
    model = convzoo.create_model(name)
    with pytest.raises(convzoo.ConvzooError, match=f"'{name}' needs"):
        model(torch.randn(*shape))
