"""ResNet and DenseNet specifics: the paper's options, layer counts, shapes and MACs.

The generic checks (shapes, gradients, parameter counts, torchvision equivalence) live in
test_zoo.py. Counts of layers and multiply-accumulates use models built on the ``meta`` device,
which run shapes through without computing anything.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo import ConvzooError, create_model
from convzoo.models.densenet import DenseNet
from convzoo.models.resnet import Bottleneck, ZeroPadShortcut


def _meta(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def _macs(model: nn.Module, side: int) -> int:
    """Multiply-accumulates of every conv and linear layer for one (3, side, side) image."""
    total = 0

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += out.numel() * k
        else:
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    model(torch.empty(1, 3, side, side, device="meta"))
    for h in handles:
        h.remove()
    return total


def _weighted_layers(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def _stage_shapes(model: nn.Module, names: list[str], x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    mods = dict(model.named_modules())
    handles = [mods[n].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
               for n in names]
    model(x)
    for h in handles:
        h.remove()
    return shapes


def test_resnet50_macs_v15_and_paper() -> None:
    # torchvision's 4.09 GMACs ("v1.5", stride on the 3x3); the paper's Table 1 says 3.8e9 with the
    # stride on the first 1x1, which makes the 3x3 of each stage's first block 4x cheaper.
    v15 = _macs(_meta("resnet50"), 224)
    paper = _macs(_meta("resnet50", stride_in_1x1=True), 224)
    assert round(v15 / 1e9, 2) == 4.09
    assert 3.75e9 <= paper <= 3.9e9


@pytest.mark.parametrize(("name", "gmacs"), [("resnet18", 1.81), ("resnet34", 3.66),
                                              ("resnet101", 7.80), ("resnet152", 11.51),
                                              ("densenet121", 2.83), ("densenet161", 7.73)])
def test_imagenet_macs_match_torchvision_table(name: str, gmacs: float) -> None:
    assert round(_macs(_meta(name), 224) / 1e9, 2) == pytest.approx(gmacs, abs=0.011)


def test_stride_in_1x1_moves_the_stride_only() -> None:
    v15, paper = _meta("resnet50"), _meta("resnet50", stride_in_1x1=True)
    block = paper.layer2[0]
    assert isinstance(block, Bottleneck)
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    # same keys and shapes, so torchvision's weights load into either placement
    assert {k: v.shape for k, v in v15.state_dict().items()} == {
        k: v.shape for k, v in paper.state_dict().items()}


@pytest.mark.parametrize(("name", "n"), [("resnet20", 3), ("resnet32", 5), ("resnet44", 7),
                                         ("resnet56", 9), ("resnet110", 18)])
def test_cifar_resnets_have_6n_plus_2_layers(name: str, n: int) -> None:
    model = _meta(name)
    assert _weighted_layers(model) == 6 * n + 2  # option A adds no layer
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [n, n, n]


def test_cifar_resnet_maps_and_widths() -> None:
    # §4.2: 32x32, 16x16, 8x8 maps with 16, 32, 64 filters.
    model = _meta("resnet20")
    shapes = _stage_shapes(model, ["layer1", "layer2", "layer3"], torch.empty(1, 3, 32, 32,
                                                                              device="meta"))
    assert shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_resnet18_cifar_stem_keeps_resolution() -> None:
    model = _meta("resnet18_cifar")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    shapes = _stage_shapes(model, ["layer1", "layer4"], torch.empty(1, 3, 32, 32, device="meta"))
    assert shapes == [(64, 32, 32), (512, 4, 4)]


def test_zero_pad_shortcut_against_explicit_construction() -> None:
    x = torch.randn(2, 16, 9, 9, dtype=torch.float64)
    out = ZeroPadShortcut(16, 32, stride=2)(x)
    expected = torch.zeros(2, 32, 5, 5, dtype=torch.float64)
    expected[:, :16] = x[:, :, 0::2, 0::2]
    assert torch.equal(out, expected)


def test_option_a_has_no_shortcut_parameters() -> None:
    with_res = create_model("resnet20")
    plain = create_model("resnet20", residual=False)
    assert sum(p.numel() for p in with_res.parameters()) == sum(
        p.numel() for p in plain.parameters())
    assert any(isinstance(m, ZeroPadShortcut) for m in with_res.modules())
    assert not any(isinstance(m, ZeroPadShortcut) for m in plain.modules())


def test_plain_block_has_no_shortcut() -> None:
    torch.manual_seed(0)
    plain = create_model("resnet18", residual=False).double().eval()
    resid = create_model("resnet18").double().eval()
    assert all(m.downsample is None for m in plain.modules() if hasattr(m, "downsample"))
    block, twin = plain.layer1[0], resid.layer1[0]
    twin.load_state_dict(block.state_dict())
    x = torch.randn(1, 64, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        f = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        assert torch.allclose(block(x), F.relu(f))
        assert torch.allclose(twin(x), F.relu(f + x))
    # the projections of ResNet-18 are the only parameters the plain net lacks
    n_proj = sum(p.numel() for n, p in resid.named_parameters() if "downsample" in n)
    assert sum(p.numel() for p in resid.parameters()) - n_proj == sum(
        p.numel() for p in plain.parameters())


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20"])
def test_zero_init_residual_makes_blocks_identity(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, zero_init_residual=True).eval()
    last = [block.last_bn() for block in model.layer1]
    assert all(torch.count_nonzero(bn.weight) == 0 for bn in last)
    block = model.layer1[1]  # no downsample: relu(0 + x) = x for the non-negative x it receives
    x = torch.rand(1, block.conv1.in_channels, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), x)
    assert torch.count_nonzero(create_model(name).layer1[0].bn2.weight) > 0


def test_resnet_input_errors_name_the_model() -> None:
    model = create_model("resnet20")
    with pytest.raises(ConvzooError, match=r"'resnet20'.*\(B, 3, H, W\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ConvzooError, match="resnet20"):
        model(torch.randn(3, 32, 32))


@pytest.mark.parametrize(("name", "depth"), [("densenet121", 121), ("densenet161", 161),
                                             ("densenet169", 169), ("densenet201", 201),
                                             ("densenet121_cifar", 121), ("densenet_bc100", 100)])
def test_densenet_depth_counts_weighted_layers(name: str, depth: int) -> None:
    # L counts the convs of the stem, the dense layers (2 each, BC) and transitions, plus the fc.
    assert _weighted_layers(_meta(name)) == depth


def test_densenet_bc100_channels_and_maps() -> None:
    # k=12, 2k=24 stem filters, 16 layers a block: 24+192=216 -> 108 -> 300 -> 150 -> 342.
    model = _meta("densenet_bc100")
    names = ["features.denseblock1", "features.transition1", "features.denseblock2",
             "features.transition2", "features.denseblock3"]
    shapes = _stage_shapes(model, names, torch.empty(1, 3, 32, 32, device="meta"))
    assert shapes == [(216, 32, 32), (108, 16, 16), (300, 16, 16), (150, 8, 8), (342, 8, 8)]
    assert model.classifier.in_features == 342


def test_densenet121_cifar_maps() -> None:
    model = _meta("densenet121_cifar")
    names = [f"features.denseblock{i}" for i in (1, 2, 3, 4)]
    shapes = _stage_shapes(model, names, torch.empty(1, 3, 32, 32, device="meta"))
    assert [s[1] for s in shapes] == [32, 16, 8, 4]
    assert shapes[-1][0] == 1024


def _grads_and_saved_bytes(memory_efficient: bool) -> tuple[torch.Tensor, list[torch.Tensor], int]:
    # A small DenseNet-BC (two blocks of 8 layers, k=4) keeps this fast in float64.
    torch.manual_seed(0)
    model = DenseNet(growth_rate=4, block_config=(8, 8), num_init_features=8, num_classes=5,
                     in_chans=3, stem="cifar", memory_efficient=memory_efficient)
    model = model.double().train()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    return out.detach(), [p.grad for p in model.parameters()], saved


def test_densenet_memory_efficient_same_values_less_memory() -> None:
    out0, g0, saved0 = _grads_and_saved_bytes(False)
    out1, g1, saved1 = _grads_and_saved_bytes(True)
    assert torch.allclose(out0, out1, rtol=1e-10, atol=1e-12)
    assert all(torch.allclose(a, b, rtol=1e-8, atol=1e-10) for a, b in zip(g0, g1, strict=True))
    assert saved1 < 0.7 * saved0  # the concatenations and 1x1 outputs are no longer stored


def test_densenet_min_size_matches_pools() -> None:
    model = create_model("densenet121").eval()
    assert model.min_size == 29
    with torch.no_grad():
        assert model(torch.randn(1, 3, 29, 29)).shape == (1, 1000)
    with pytest.raises(ConvzooError, match="densenet121.*29x29"):
        model(torch.randn(1, 3, 28, 29))
