"""cuda_convnet_18pct (cuda-convnet's layers-18pct, Krizhevsky et al. 2012 Fig. 1): the layer
shapes, the initialisation, and the response normalisation against a float64 definition."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo import ConvzooError, create_model
from convzoo.models.experimental import SpatialResponseNorm


def test_layer_shapes_follow_layers_18pct():
    net = create_model("cuda_convnet_18pct")
    x = torch.randn(2, 3, 32, 32)
    shapes = []
    for layer in net.features:
        x = layer(x)
        shapes.append((type(layer).__name__, tuple(x.shape[1:])))
    assert shapes == [
        ("Conv2d", (32, 32, 32)), ("MaxPool2d", (32, 16, 16)), ("ReLU", (32, 16, 16)),
        ("SpatialResponseNorm", (32, 16, 16)),
        ("Conv2d", (32, 16, 16)), ("ReLU", (32, 16, 16)), ("AvgPool2d", (32, 8, 8)),
        ("SpatialResponseNorm", (32, 8, 8)),
        ("Conv2d", (64, 8, 8)), ("ReLU", (64, 8, 8)), ("AvgPool2d", (64, 4, 4)),
    ]
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == 89_578
    tanh = create_model("cuda_convnet_18pct", activation="tanh", num_classes=7)
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == 3
    assert tanh(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    with pytest.raises(ConvzooError, match="cuda_convnet_18pct"):
        net(torch.randn(1, 3, 31, 31))


def test_init_is_layers_18pct():
    torch.manual_seed(0)
    net = create_model("cuda_convnet_18pct")
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 4
    # conv1: N(0, 1e-4); conv2, conv3, fc10: N(0, 0.01); all biases 0.
    for layer, std in zip(layers, (1e-4, 0.01, 0.01, 0.01), strict=True):
        w = layer.weight.detach().double()
        assert w.std().item() == pytest.approx(std, rel=0.1)
        assert abs(w.mean().item()) < 0.1 * std
        assert torch.count_nonzero(layer.bias) == 0


def test_response_norm_matches_its_definition_in_float64():
    torch.manual_seed(1)
    x = (torch.randn(2, 3, 5, 6, dtype=torch.float64) * 100).requires_grad_()
    got = SpatialResponseNorm(size=3, scale=5e-5, power=0.75)(x)
    want = torch.empty_like(x)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):  # the 3x3 window clipped at the border, divided by size^2 = 9
            window = x[:, :, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
            denom = (1 + 5e-5 / 9 * (window ** 2).sum(dim=(2, 3))) ** 0.75
            want[:, :, i, j] = x[:, :, i, j] / denom
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g_got, = torch.autograd.grad(got.sum(), x)
    g_want, = torch.autograd.grad(want.sum(), x)
    torch.testing.assert_close(g_got, g_want, rtol=1e-10, atol=1e-12)
