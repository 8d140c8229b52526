"""One parametrized suite over every registered model (``convzoo.list_models()``).

The names are collected at import time, so a family registered later is covered without editing
this file. Per model: output shape at the smallest input it accepts, a ConvzooError one pixel below
it, one backward pass with finite gradients for every parameter, and parameter counts. For the
ImageNet forms: the same count as the torchvision builder named by ``ModelInfo.torchvision_name``
with the same options, and equal outputs after loading its state dict. The model under test is
built once per name by a module-scoped fixture (pytest groups the tests by it, so one model at a
time is alive) and the torchvision twin is built lazily once per name.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import convzoo
from convzoo import ConvzooError, create_model, list_models, model_info

ALL = list_models()
INFO = {name: model_info(name) for name in ALL}
SMALL = [n for n in ALL if INFO[n].form == "small"]
TV_COMPAT = [n for n in ALL if INFO[n].torchvision_name]
AUX = [n for n in ALL if "aux_logits" in inspect.signature(INFO[n].builder).parameters]
NUM_CLASSES = 7  # not any model's default, so a head that ignores num_classes shows up
EQUIV_SIZE = 64  # input side for the torchvision comparisons, raised to min_size where larger
# Input side for the backward pass (raised to min_size): at the 1x1 maps of a 1x1 input, train-mode
# BN sees only the batch's 2 values per channel, whose variance can be 0 (gradients blow up).
BACKWARD_SIZE = {"imagenet": 64, "small": 16}

# Builder options that torchvision's builder also takes: mirror our default into it, so both
# models are built "with the same options" (e.g. torchvision's googlenet defaults aux_logits on).
MIRRORED = ("aux_logits", "transform_input")

# Published parameter counts of forms torchvision does not have, with the precision the source
# gives: (count, tolerance). LeNet exact (course slide, lenet.py); He et al. 2016 Table 6 for the
# CIFAR ResNets (0.27M ...); Huang et al. 2017 Table 2 for DenseNet-BC (L=100, k=12), 0.8M.
PUBLISHED = {
    "lenet": (62_006, 0),
    "lenet5": (61_706, 0),
    "resnet20": (270_000, 5_000),
    "resnet32": (460_000, 5_000),
    "resnet44": (660_000, 5_000),
    "resnet56": (850_000, 5_000),
    "resnet110": (1_700_000, 50_000),
    "densenet_bc100": (800_000, 50_000),
}

# Models without an input-size check in forward (they fail inside a layer, or accept a smaller
# input than their min_size). Expected failures, strict: a fix makes them pass and shows up here.
NO_SIZE_CHECK: set[str] = set()
# Models whose classifier takes one fixed map size, so they accept only their own input_size.
FIXED_INPUT = {"lenet", "lenet5", "mlp3_mnist", "cnn_dropout_cifar", "cuda_convnet_18pct"}


def _first(out: Any) -> torch.Tensor:
    """Logits: the output itself, or the first field of an auxiliary-heads NamedTuple."""
    return out if isinstance(out, torch.Tensor) else out[0]


def _tv_kwargs(name: str, **options: Any) -> dict[str, Any]:
    params = inspect.signature(INFO[name].builder).parameters
    kwargs = {k: params[k].default for k in MIRRORED if k in params}
    kwargs.update(options)
    if INFO[name].torchvision_name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # torchvision warns when it has to choose
    return kwargs


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


class Entry:
    """One registered model built with ``num_classes=NUM_CLASSES``, and its torchvision twin."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.info = INFO[name]
        torch.manual_seed(0)
        self.model = create_model(name, num_classes=NUM_CLASSES)
        self._tv: nn.Module | None = None

    def tv(self) -> nn.Module:
        if self._tv is None:
            tv_name = self.info.torchvision_name
            assert tv_name is not None
            self._tv = torchvision.models.get_model(
                tv_name, weights=None, **_tv_kwargs(self.name, num_classes=NUM_CLASSES)
            )
        return self._tv

    def input(self, batch: int, side: int | None = None) -> torch.Tensor:
        side = self.info.min_size if side is None else side
        return torch.randn(batch, self.info.input_size[0], side, side)


@pytest.fixture(scope="module", params=ALL)
def entry(request: pytest.FixtureRequest) -> Iterator[Entry]:
    yield Entry(request.param)


def test_zoo_is_populated() -> None:
    # The two families of this module's authors at least; the others join as they register.
    assert {"resnet50", "densenet121", "resnet20", "densenet_bc100", "lenet5"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_metadata(name: str) -> None:
    info = INFO[name]
    params = inspect.signature(info.builder).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()), name
    assert {"num_classes", "in_chans"} <= set(params)
    assert params["num_classes"].default == info.default_num_classes
    assert params["in_chans"].default == info.input_size[0]
    assert info.form in ("imagenet", "small")
    assert 1 <= info.min_size <= info.input_size[1] == info.input_size[2]
    if info.form == "small":
        assert info.input_size[1] in (28, 32) and info.default_num_classes == 10
    if info.torchvision_name is not None:
        assert info.form == "imagenet"
        torchvision.models.get_model_builder(info.torchvision_name)  # raises if unknown


def test_forward_shape_at_min_size(entry: Entry) -> None:
    model = entry.model.eval()
    with torch.no_grad():
        out = _first(model(entry.input(1)))
    assert out.shape == (1, NUM_CLASSES)
    assert torch.isfinite(out).all()


def test_below_min_size_raises(entry: Entry) -> None:
    side = entry.info.min_size - 1
    try:
        with torch.no_grad(), pytest.raises(ConvzooError) as e:
            entry.model.eval()(entry.input(1, side))
    except (RuntimeError, pytest.fail.Exception):
        if entry.name in NO_SIZE_CHECK:
            pytest.xfail(f"{entry.name} has no input-size check in forward")
        raise
    assert entry.name not in NO_SIZE_CHECK, f"{entry.name} checks its size now: update the test"
    assert entry.name in str(e.value) and str(entry.info.min_size) in str(e.value)


def test_backward_finite_grads(entry: Entry) -> None:
    model = entry.model.train()
    model.zero_grad(set_to_none=True)
    side = max(BACKWARD_SIZE[entry.info.form], entry.info.min_size)
    out = _first(model(entry.input(2, side)))
    assert out.shape == (2, NUM_CLASSES)
    out.logsumexp(dim=1).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{entry.name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{entry.name}: non-finite gradient in {pname}"


def test_param_count(entry: Entry) -> None:
    n = _n_params(entry.model)
    if entry.info.torchvision_name:
        assert n == _n_params(entry.tv())
    if entry.name in PUBLISHED:
        expected, tol = PUBLISHED[entry.name]
        n_default = entry.info.num_params()  # the published count is for the default classes
        assert abs(n_default - expected) <= tol, (entry.name, n_default)
    if not entry.info.torchvision_name and entry.name not in PUBLISHED:
        pytest.skip(f"no reference count for {entry.name}")


def test_torchvision_equivalence(entry: Entry) -> None:
    if not entry.info.torchvision_name:
        pytest.skip(f"{entry.name} has no torchvision counterpart")
    tv = entry.tv().eval()
    model = entry.model.eval()
    model.load_state_dict(tv.state_dict(), strict=True)
    torch.manual_seed(1)
    x = entry.input(2, max(EQUIV_SIZE, entry.info.min_size))
    with torch.no_grad():
        ours, theirs = _first(model(x)), _first(tv(x))
    assert ours.shape == theirs.shape == (2, NUM_CLASSES)
    assert _rel_err(ours, theirs) <= 1e-5


@pytest.mark.parametrize("name", AUX)
def test_aux_heads(name: str) -> None:
    """Built with aux_logits=True: a NamedTuple (logits first) in train and eval mode alike."""
    info = INFO[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES, aux_logits=True)
    x = torch.randn(2, *info.input_size)
    with torch.no_grad():
        for mode in (True, False):
            out = model.train(mode)(x)
            assert isinstance(out, tuple) and hasattr(out, "_fields"), (name, mode)
            assert all(t.shape == (2, NUM_CLASSES) for t in out)
    if info.torchvision_name:
        tv = torchvision.models.get_model(
            info.torchvision_name, weights=None,
            **_tv_kwargs(name, num_classes=NUM_CLASSES, aux_logits=True),
        )
        assert _n_params(model) == _n_params(tv)
        model.load_state_dict(tv.state_dict(), strict=True)
        with torch.no_grad():
            ours, theirs = _first(model.eval()(x)), _first(tv.eval()(x))
        assert _rel_err(ours, theirs) <= 1e-5


@pytest.mark.parametrize("name", SMALL)
def test_small_forms_take_mnist_and_cifar_sizes(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_chans=1, num_classes=NUM_CLASSES).eval()
    with torch.no_grad():
        sides = [INFO[name].input_size[1]] if name in FIXED_INPUT else [28, 32]
        for side in sides:
            out = _first(model(torch.randn(2, 1, side, side)))
            assert out.shape == (2, NUM_CLASSES), (name, side)


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ConvzooError, match="resnet50"):
        create_model("resnet5O")
    with pytest.raises(ConvzooError, match="unknown model 'no_such_net'"):
        convzoo.create_model("no_such_net")


def test_unknown_builder_argument_is_a_convzoo_error() -> None:
    with pytest.raises(ConvzooError, match="zero_init_residual"):
        create_model("resnet20", zero_init_resdual=True)


@pytest.mark.parametrize("name", ALL)
def test_timm_classifier_api(name: str) -> None:
    """num_classes, get_classifier() and reset_classifier(n) on every model (timm's API), shapes
    checked on the meta device (no memory, no arithmetic)."""
    info = INFO[name]
    with torch.device("meta"):
        model = create_model(name, num_classes=NUM_CLASSES).eval()
        x = torch.randn(2, info.input_size[0], info.min_size, info.min_size)
        assert model.num_classes == NUM_CLASSES
        head = model.get_classifier()
        assert isinstance(head, (nn.Linear, nn.Conv2d))
        model.reset_classifier(3)
        assert model.num_classes == 3 and model.get_classifier() is not head
        assert _first(model(x)).shape == (2, 3)
        features = head.in_features if isinstance(head, nn.Linear) else head.in_channels
        model.reset_classifier(0)
        assert model.num_classes == 0
        assert _first(model(x)).shape[:2] == (2, features)


@pytest.mark.parametrize("name", AUX)
def test_reset_classifier_resets_aux_heads(name: str) -> None:
    info = INFO[name]
    with torch.device("meta"):
        model = create_model(name, aux_logits=True).train()
        model.reset_classifier(5)
        out = model(torch.randn(2, *info.input_size))
    assert [tuple(t.shape) for t in out] == [(2, 5)] * len(out)


def test_reset_classifier_refuses_negative() -> None:
    with pytest.raises(ConvzooError, match="reset_classifier"):
        create_model("lenet5").reset_classifier(-1)
