"""GoogLeNet and Inception v3: torchvision equality (with and without auxiliary heads, with and
without ``transform_input``), parameter counts, the NamedTuple outputs in both modes, loading
torchvision checkpoints into either form, ``reset_head`` with auxiliary heads, the smallest inputs,
and the CIFAR forms.

torchvision only computes its auxiliary heads in training mode; to compare ours (which computes
them in every mode) it runs in training mode with dropout and batch norm switched to evaluation,
so that both sides are deterministic and use the same statistics.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from convzoo import ConvzooError, create_model, model_info
from convzoo.models.googlenet import GoogLeNetOutputs
from convzoo.models.inception import InceptionOutputs

# ../shared/REFERENCES.md: googlenet 6,624,904 without aux heads (13,004,888 with); inception_v3
# 27,161,264 with its aux head (23,834,568 without).
TV_PARAMS = {
    ("googlenet", False): 6_624_904,
    ("googlenet", True): 13_004_888,
    ("inception_v3", False): 23_834_568,
    ("inception_v3", True): 27_161_264,
}
# Smallest inputs: torchvision's Weights.meta min_size without aux heads; with them, ours (the
# aux heads run in eval mode too, and Inception's 5x5/3 pool + 5x5 conv need the full 17x17 grid).
MIN_SIZE = {
    ("googlenet", False): 15,
    ("googlenet", True): 15,
    ("inception_v3", False): 75,
    ("inception_v3", True): 299,
}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _tv(name: str, **kwargs: object) -> nn.Module:
    """torchvision's model with random batch-norm statistics (so BN keys are really tested)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's FutureWarning about init_weights
        tv = torchvision.models.get_model(name, weights=None, init_weights=True, **kwargs)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.2, 0.2, generator=gen)
                m.running_mean.uniform_(-0.1, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return tv


def _tv_with_aux_outputs(tv: nn.Module) -> nn.Module:
    """Training mode (torchvision returns aux outputs only then) with deterministic layers."""
    tv.train()
    for m in tv.modules():
        if isinstance(m, (nn.Dropout, nn.BatchNorm2d)):
            m.eval()
    return tv


@pytest.mark.parametrize(
    ("name", "transform_input"), [("googlenet", True), ("inception_v3", False)]
)
def test_matches_torchvision_without_aux(name: str, transform_input: bool) -> None:
    tv = _tv(name, aux_logits=False, transform_input=transform_input).eval()
    ours = create_model(name, transform_input=transform_input).eval()
    assert _n_params(ours) == _n_params(tv) == TV_PARAMS[(name, False)]
    ours.load_state_dict(tv.state_dict(), strict=True)
    torch.manual_seed(1)
    side = MIN_SIZE[(name, False)]
    inputs = [torch.randn(2, 3, side, side)]
    if name == "googlenet":
        inputs.append(torch.randn(1, 3, 96, 80))  # non-square, 3x3 maps at the end
    with torch.no_grad():
        for x in inputs:
            out, ref = ours(x), tv(x)
            assert isinstance(out, torch.Tensor) and out.shape == (x.shape[0], 1000)
            assert _rel_err(out, ref) <= 1e-5


def _check_aux_equal(name: str, side: int, batch: int) -> None:
    tv = _tv_with_aux_outputs(_tv(name, aux_logits=True, transform_input=True))
    ours = create_model(name, aux_logits=True, transform_input=True).eval()
    assert _n_params(ours) == _n_params(tv) == TV_PARAMS[(name, True)]
    ours.load_state_dict(tv.state_dict(), strict=True)
    torch.manual_seed(2)
    x = torch.randn(batch, 3, side, side)
    with torch.no_grad():
        out, ref = ours(x), tv(x)
    assert type(out).__name__ == type(ref).__name__  # GoogLeNetOutputs / InceptionOutputs
    assert out._fields == ref._fields  # torchvision's field names and order, logits first
    for mine, theirs in zip(out, ref, strict=True):
        assert mine.shape == (batch, 1000)
        assert _rel_err(mine, theirs) <= 1e-5


def test_googlenet_matches_torchvision_with_aux() -> None:
    _check_aux_equal("googlenet", side=64, batch=2)


@pytest.mark.slow
def test_inception_v3_matches_torchvision_with_aux() -> None:
    _check_aux_equal("inception_v3", side=299, batch=1)  # the aux head needs 299x299


def test_inception_v3_aux_head_matches_torchvision() -> None:
    # The fast stand-in for the test above: the head alone on a 17x17 grid (and the trunk's
    # equality is test_matches_torchvision_without_aux).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    tv_head = tv.AuxLogits.eval()
    with torch.device("meta"):
        ours = create_model("inception_v3", aux_logits=True)
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 768, 17, 17)
    with torch.no_grad():
        assert _rel_err(ours.AuxLogits.eval()(x), tv_head(x)) <= 1e-5


@pytest.mark.parametrize(
    ("name", "outputs"),
    [
        ("googlenet", GoogLeNetOutputs),
        ("googlenet_cifar", GoogLeNetOutputs),
        ("inception_v3_cifar", InceptionOutputs),
    ],
)
def test_aux_output_type_is_the_same_in_train_and_eval(name: str, outputs: type) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, aux_logits=True)
    side = model_info(name).min_size
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        for training in (True, False):
            out = model.train(training)(x)
            assert type(out) is outputs, (name, training)
            assert all(t.shape == (2, 5) and torch.isfinite(t).all() for t in out)
    with torch.device("meta"):
        plain = create_model(name, num_classes=5)
        for training in (True, False):
            assert isinstance(plain.train(training)(torch.zeros(2, 3, side, side)), torch.Tensor)


def test_aux_loss_reaches_every_head() -> None:
    # §5's training loss, auxiliary losses weighted 0.3, on MNIST-sized digits.
    torch.manual_seed(0)
    model = create_model("googlenet_cifar", in_chans=1, aux_logits=True).train()
    logits, *aux = model(torch.randn(2, 1, 28, 28))
    assert len(aux) == 2
    target = torch.tensor([1, 4])
    loss = nn.functional.cross_entropy(logits, target)
    loss = loss + 0.3 * sum(nn.functional.cross_entropy(a, target) for a in aux)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    for head in (model.aux1, model.aux2, model.conv1):
        assert all(p.grad.abs().sum() > 0 for p in head.parameters())


def test_inception_v3_aux_type_in_train_and_eval() -> None:
    with torch.device("meta"):  # types and shapes only: no memory, no arithmetic
        model = create_model("inception_v3", num_classes=5, aux_logits=True)
        x = torch.zeros(2, 3, 299, 299)
        for training in (True, False):
            out = model.train(training)(x)
            assert type(out) is InceptionOutputs and out._fields == ("logits", "aux_logits")
            assert out.logits.shape == out.aux_logits.shape == (2, 5)


@pytest.mark.parametrize(("name", "size"), [(k[0], v) for k, v in MIN_SIZE.items() if not k[1]])
def test_registered_min_size_is_torchvisions(name: str, size: int) -> None:
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    assert meta["min_size"] == (size, size) == (model_info(name).min_size,) * 2


@pytest.mark.parametrize(("name", "aux"), list(MIN_SIZE))
def test_min_size_error_and_true_minimum(name: str, aux: bool) -> None:
    side = MIN_SIZE[(name, aux)]
    with torch.device("meta"):
        model = create_model(name, aux_logits=aux).eval()
        out = model(torch.zeros(1, 3, side, side))
        assert (out[0] if aux else out).shape == (1, 1000)
        with pytest.raises(ConvzooError, match=rf"'{name}'.*{side}x{side}.*got {side}x{side - 1}"):
            model(torch.zeros(1, 3, side, side - 1))
        # Without the check, the network itself fails one pixel below.
        model.check_input = lambda *a, **k: None
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, side - 1, side - 1))


@pytest.mark.parametrize("name", ["googlenet_cifar", "inception_v3_cifar"])
def test_small_forms_mnist_and_cifar(name: str) -> None:
    info = model_info(name)
    assert (info.form, info.default_num_classes, info.input_size) == ("small", 10, (3, 32, 32))
    with torch.device("meta"):  # shapes only; test_zoo.py runs every small form on real data
        assert create_model(name, in_chans=1)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert create_model(name)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # One training step's backward pass, at the smallest input (the cheapest real one).
    side = info.min_size
    torch.manual_seed(0)
    mnist = create_model(name, in_chans=1).train()
    out = mnist(torch.randn(2, 1, side, side))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    nn.functional.cross_entropy(out, torch.tensor([0, 9])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in mnist.parameters())
    with torch.no_grad(), pytest.raises(ConvzooError, match=rf"'{name}'.*{side}x{side}"):
        mnist(torch.randn(1, 1, side - 1, side - 1))


def test_small_form_parameter_counts() -> None:
    # The counts the docstrings state (10 classes); the trunks are the ImageNet forms'.
    with torch.device("meta"):
        counts = {
            (name, aux): _n_params(create_model(name, aux_logits=aux))
            for name in ("googlenet_cifar", "inception_v3_cifar")
            for aux in (False, True)
        }
    assert counts == {
        ("googlenet_cifar", False): 5_983_402,
        ("googlenet_cifar", True): 10_333_886,
        ("inception_v3_cifar", False): 21_806_058,
        ("inception_v3_cifar", True): 24_371_444,
    }


def test_googlenet_branch3_kernel() -> None:
    # torchvision's "5x5" branch is a 3x3 (pytorch/vision#906); the CIFAR form uses the paper's.
    with torch.device("meta"):
        tv_form = create_model("googlenet")
        paper_form = create_model("googlenet_cifar")
    assert tv_form.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert paper_form.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert tv_form.conv1.bn.eps == 0.001


def test_transform_input_needs_rgb() -> None:
    with pytest.raises(ConvzooError, match="transform_input needs in_chans=3"):
        create_model("googlenet", in_chans=1, transform_input=True)
    with pytest.raises(ConvzooError, match="transform_input needs in_chans=3"):
        create_model("inception_v3", in_chans=1, transform_input=True)


def test_torchvision_checkpoint_loads_into_either_googlenet(tmp_path: Path) -> None:
    tv = _tv("googlenet", aux_logits=True, transform_input=True)
    path = tmp_path / "googlenet.pth"
    torch.save(tv.state_dict(), path)  # as torchvision's own checkpoints are written
    plain = create_model("googlenet", transform_input=True, weights=str(path)).eval()
    assert not any(k.startswith("aux") for k in plain.state_dict())
    with_aux = create_model("googlenet", aux_logits=True, transform_input=True, weights=str(path))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = _tv_with_aux_outputs(tv)(x)
        assert _rel_err(plain(x), ref.logits) <= 1e-5
        out = with_aux.eval()(x)
        assert _rel_err(out.aux_logits1, ref.aux_logits1) <= 1e-5


def test_torchvision_checkpoint_loads_into_inception_v3_without_aux(tmp_path: Path) -> None:
    tv = _tv("inception_v3", aux_logits=True)
    path = tmp_path / "inception_v3.pth"
    torch.save(tv.state_dict(), path)
    plain = create_model("inception_v3", weights=str(path)).eval()
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        assert _rel_err(plain(x), tv.eval()(x)) <= 1e-5


def test_reset_head_reinitialises_every_class_dependent_layer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_model("googlenet_cifar", aux_logits=True)
    path = tmp_path / "googlenet_cifar.pth"
    torch.save(source.state_dict(), path)
    tuned = create_model(
        "googlenet_cifar", num_classes=3, aux_logits=True, weights=str(path), reset_head=True
    )
    heads = ("fc.", "aux1.fc2.", "aux2.fc2.")
    src, new = source.state_dict(), tuned.state_dict()
    for key in src:
        if key.startswith(heads):
            assert new[key].shape[0] == 3, key
        else:
            assert torch.equal(src[key], new[key]), key
    with torch.device("meta"):
        inception = create_model("inception_v3", aux_logits=True)
    assert inception.head_prefixes == ("fc.", "AuxLogits.fc.")
