"""AlexNet and VGG: torchvision equality, parameter counts, the 2012 paper's form, CIFAR forms.

The generic suite (test_zoo.py) covers every registered model at its smallest input; these tests
check what is particular to the two families: the state-dict layout of all eight VGG variants, the
published parameter counts, the paper's LRN convention, §5's initialisation, the head that
``reset_head`` re-initialises, and the small forms at MNIST and CIFAR sizes. torchvision's VGGs
hold 133-144M parameters, so their layouts are compared on the meta device (no memory, no time)
and their outputs are compared for vgg11 / vgg11_bn by default, the other six under ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from convzoo import ConvzooError, create_model, model_info

# ../shared/REFERENCES.md (torchvision 0.29 Weights.meta).
TV_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
}
VGG_NAMES = [n for n in TV_PARAMS if n.startswith("vgg")]
# The counts the small forms' docstrings state (10 classes).
SMALL_PARAMS = {
    "alexnet_cifar": 7_706_442,
    "vgg11_cifar": 9_231_114,
    "vgg13_cifar": 9_416_010,
    "vgg16_cifar": 14_728_266,
    "vgg19_cifar": 20_040_522,
}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _random_tv(name: str, *, seed: int) -> nn.Module:
    """torchvision's model with random weights, built on meta and filled in one pass.

    Weights ~ U(-1, 1) / sqrt(fan_in) keep activations O(1) through 19 layers; batch-norm
    statistics and affine parameters are random too, so a mix-up of BN keys changes the output.
    """
    with torch.device("meta"):
        kwargs = {"init_weights": False} if name.startswith("vgg") else {}
        tv = torchvision.models.get_model(name, weights=None, **kwargs)
    tv = tv.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.uniform_(-1.0, 1.0, generator=gen).mul_(3**0.5 / fan_in**0.5)
                m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.2, 0.2, generator=gen)
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.num_batches_tracked.fill_(1)
    return tv.eval()


def _ours_from(name: str, tv: nn.Module) -> nn.Module:
    """Our model built on meta, then given torchvision's tensors by a strict state-dict load."""
    with torch.device("meta"):
        ours = create_model(name)
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
    return ours.eval()


# AlexNet, torchvision's form.


def test_alexnet_matches_torchvision_after_state_dict_load() -> None:
    tv = _random_tv("alexnet", seed=0)
    ours = _ours_from("alexnet", tv)
    assert _n_params(ours) == _n_params(tv) == TV_PARAMS["alexnet"]
    torch.manual_seed(1)
    with torch.no_grad():
        for x in (torch.randn(2, 3, 63, 63), torch.randn(1, 3, 100, 80)):  # 1x1 and 2x1 maps
            ours_out, tv_out = ours(x), tv(x)
            assert ours_out.shape == (x.shape[0], 1000)
            assert _rel_err(ours_out, tv_out) <= 1e-5


def test_alexnet_min_size_is_torchvisions_and_enforced() -> None:
    meta = torchvision.models.get_model_weights("alexnet").IMAGENET1K_V1.meta
    assert meta["min_size"] == (model_info("alexnet").min_size,) * 2 == (63, 63)
    with torch.device("meta"):
        model = create_model("alexnet", num_classes=3).eval()
        with pytest.raises(ConvzooError, match=r"'alexnet'.*63x63.*got 62x64"):
            model(torch.zeros(1, 3, 62, 64))
        # Without the check, torch fails inside the last pooling.
        model.check_input = lambda *a, **k: None
        with pytest.raises(RuntimeError, match="too small"):
            model(torch.zeros(1, 3, 62, 62))


# VGG, torchvision's forms.


@pytest.mark.parametrize("name", VGG_NAMES)
def test_vgg_state_dict_layout_and_count_match_torchvision(name: str) -> None:
    with torch.device("meta"):
        ours = create_model(name)
        tv = torchvision.models.get_model(name, weights=None, init_weights=False)
    ours_sd, tv_sd = ours.state_dict(), tv.state_dict()
    assert list(ours_sd) == list(tv_sd)
    assert [v.shape for v in ours_sd.values()] == [v.shape for v in tv_sd.values()]
    assert _n_params(ours) == _n_params(tv) == TV_PARAMS[name]
    assert model_info(name).torchvision_name == name
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    assert meta["min_size"] == (model_info(name).min_size,) * 2
    assert meta["num_params"] == TV_PARAMS[name]


@pytest.mark.parametrize(
    "name",
    [n if n == "vgg11_bn" else pytest.param(n, marks=pytest.mark.slow) for n in VGG_NAMES],
)
def test_vgg_matches_torchvision_after_state_dict_load(name: str) -> None:
    tv = _random_tv(name, seed=0)
    ours = _ours_from(name, tv)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)  # the smallest input: 1x1 maps, upsampled 7x7 by the avgpool
    with torch.no_grad():
        ours_out, tv_out = ours(x), tv(x)
        assert ours_out.shape == (2, 1000)
        assert _rel_err(ours_out, tv_out) <= 1e-5
        x = torch.randn(1, 3, 80, 80)  # 2x2 maps before the adaptive pool
        assert _rel_err(ours(x), tv(x)) <= 1e-5


def test_vgg_configs_follow_table_1() -> None:
    from convzoo.models.vgg import VGG_CONFIGS

    # Table 1: 8, 10, 13, 16 convolutions + 3 fully connected layers; 5 poolings each.
    for name, n_conv in (("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16)):
        config = VGG_CONFIGS[name]
        assert sum(1 for c in config if c != "M") == n_conv
        assert config.count("M") == 5 and config[-1] == "M"


def test_vgg_min_size_enforced_and_real() -> None:
    with torch.device("meta"):
        model = create_model("vgg16").eval()
        model(torch.zeros(1, 3, 32, 32))
        with pytest.raises(ConvzooError, match=r"'vgg16'.*32x32"):
            model(torch.zeros(1, 3, 31, 31))
        # Without the check, torch fails inside the fifth pooling.
        model.check_input = lambda *a, **k: None
        with pytest.raises(RuntimeError, match="too small"):
            model(torch.zeros(1, 3, 31, 31))


def test_vgg_init_is_torchvisions() -> None:
    # The ImageNet and CIFAR forms share the initialiser; the small one is quicker to build.
    torch.manual_seed(0)
    model = create_model("vgg11_cifar", num_classes=100)
    conv = model.features[4]  # 64 -> 128, fan-out 128 * 9
    assert torch.all(conv.bias == 0)
    assert conv.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.05)
    assert model.classifier.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert isinstance(model.features[1], nn.BatchNorm2d) and torch.all(
        model.features[1].weight == 1
    )


# AlexNet as in Krizhevsky et al. 2012.


def test_alexnet_paper_parameter_count_by_hand() -> None:
    # Fig. 2 / §3.5, layer by layer (weights + biases); groups=2 halves conv2, conv4 and conv5.
    by_hand = (
        (96 * 3 * 11 * 11 + 96)  # conv1
        + (256 * 48 * 5 * 5 + 256)  # conv2, each half sees 48 maps
        + (384 * 256 * 3 * 3 + 384)  # conv3, sees both halves
        + (384 * 192 * 3 * 3 + 384)  # conv4
        + (256 * 192 * 3 * 3 + 256)  # conv5
        + (256 * 6 * 6 * 4096 + 4096)  # fc6
        + (4096 * 4096 + 4096)  # fc7
        + (4096 * 1000 + 1000)  # fc8
    )
    assert by_hand == 60_965_224
    with torch.device("meta"):
        model = create_model("alexnet_paper")
    assert _n_params(model) == by_hand
    groups = [m.groups for m in model.features if isinstance(m, nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]


def test_alexnet_paper_shapes() -> None:
    with torch.device("meta"):  # shapes only
        model = create_model("alexnet_paper").eval()
        h = torch.zeros(2, 3, 224, 224)
        sizes = []
        for m in model.features:
            h = m(h)
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                sizes.append(tuple(h.shape[1:]))
        out = model(torch.zeros(2, 3, 224, 224))
    # Fig. 2: 55x55x96 after conv1, 27x27x256 after conv2, 13x13 for conv3-5, 6x6 into fc6.
    assert sizes == [
        (96, 55, 55),
        (96, 27, 27),
        (256, 27, 27),
        (256, 13, 13),
        (384, 13, 13),
        (384, 13, 13),
        (256, 13, 13),
        (256, 6, 6),
    ]
    assert out.shape == (2, 1000)


def test_alexnet_paper_init() -> None:
    torch.manual_seed(0)
    model = create_model("alexnet_paper", num_classes=10)
    # §5: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5, fc6, fc7 and 0 elsewhere.
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [float(m.bias.detach().unique()) for m in layers] == [0, 1, 0, 1, 1, 1, 1, 0]
    for m in layers:
        assert m.weight.std().item() == pytest.approx(0.01, rel=0.05)


def _lrn_paper_float64(
    a: torch.Tensor, *, k: float, n: int, alpha: float, beta: float
) -> torch.Tensor:
    """§3.3 as printed: b_i = a_i / (k + alpha * sum_j a_j^2)^beta, j from max(0, i - n/2) to
    min(N - 1, i + n/2)."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(dim=1)
        out[:, i] = a[:, i] / (k + alpha * s) ** beta
    return out


def test_alexnet_paper_lrn_is_the_papers_equation() -> None:
    with torch.device("meta"):
        model = create_model("alexnet_paper")
    lrns = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2  # after conv1 and conv2 (§3.3)
    lrn = lrns[0]
    assert (lrn.size, lrn.k, lrn.beta) == (5, 2.0, 0.75)
    # Post-ReLU magnitudes of ~50 make alpha * sum(a^2) comparable to k, so the convention shows.
    a = torch.rand(2, 12, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = 60 * a
    expected = _lrn_paper_float64(a, k=2.0, n=5, alpha=1e-4, beta=0.75)
    torch.testing.assert_close(lrn(a), expected, rtol=1e-12, atol=0)
    # torch's own convention with the paper's alpha (alpha / n inside) is a different function.
    naive = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert (naive - expected).abs().max() > 1e-3


# Small-image forms.


@pytest.mark.parametrize("name", list(SMALL_PARAMS))
def test_small_forms_metadata_count_and_shapes(name: str) -> None:
    info = model_info(name)
    assert (info.form, info.default_num_classes, info.input_size) == ("small", 10, (3, 32, 32))
    with torch.device("meta"):  # shapes only; test_zoo.py runs every small form on real data
        assert _n_params(create_model(name)) == SMALL_PARAMS[name]
        assert create_model(name)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        assert create_model(name, in_chans=1)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert create_model(name, num_classes=100)(torch.zeros(1, 3, 64, 48)).shape == (1, 100)


@pytest.mark.parametrize("name", ["alexnet_cifar", "vgg11_cifar"])
def test_small_forms_train_on_mnist_digits(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_chans=1).train()
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    nn.functional.cross_entropy(out, torch.tensor([3, 7])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.features[0].weight.grad.abs().sum() > 0  # the gradient reaches the first layer


@pytest.mark.parametrize("name", ["alexnet_cifar", "vgg11_cifar"])
def test_small_forms_min_size(name: str) -> None:
    side = model_info(name).min_size
    model = create_model(name).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, side, side)).shape == (1, 10)
        with pytest.raises(ConvzooError, match=rf"'{name}'.*{side}x{side}"):
            model(torch.randn(1, 3, side - 1, side))


def test_vgg_cifar_has_batch_norm_by_default() -> None:
    with torch.device("meta"):
        bn = create_model("vgg16_cifar")
        plain = create_model("vgg16_cifar", batch_norm=False)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 13
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_reset_head_reinitialises_only_the_last_layer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_model("alexnet_cifar")
    path = tmp_path / "alexnet_cifar.pth"
    torch.save(source.state_dict(), path)  # a plain torch checkpoint, as torchvision's are
    with pytest.raises(ConvzooError, match="classifier.6.weight"):
        create_model("alexnet_cifar", num_classes=4, weights=str(path))
    tuned = create_model("alexnet_cifar", num_classes=4, weights=str(path), reset_head=True)
    src, new = source.state_dict(), tuned.state_dict()
    assert new["classifier.6.weight"].shape == (4, 1024)
    for key in src:
        if not key.startswith("classifier.6."):
            assert torch.equal(src[key], new[key]), key  # fc6 and fc7 are kept
