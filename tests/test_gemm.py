"""convzoo.gemm: unfold + matmul convolution equals nn.Conv2d (values and gradients), and a
converted zoo model equals the original."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from convzoo import gemm
from convzoo.registry import create_model, list_models

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@st.composite
def conv_settings(draw):
    groups = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    if mode == "zeros":
        padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                                 st.tuples(st.integers(0, 2), st.integers(0, 2))))
    else:
        padding = draw(st.one_of(st.just("same"), st.integers(0, 1)))
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return dict(cin=groups * draw(st.integers(1, 3)), cout=groups * draw(st.integers(1, 3)),
                kernel_size=(kh, kw), stride=stride, padding=padding, dilation=dil,
                groups=groups, bias=draw(st.booleans()), padding_mode=mode,
                n=draw(st.integers(1, 3)), h=draw(st.integers(dil[0] * (kh - 1) + 1, 9)),
                w=draw(st.integers(dil[1] * (kw - 1) + 1, 9)), seed=draw(st.integers(0, 2**16)))


def check_same(ref: nn.Module, new: nn.Module, x: torch.Tensor, tol: float) -> None:
    """Outputs, input gradients and parameter gradients of ``new`` equal those of ``ref``."""
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y1, y2 = ref(x1), new(x2)
    assert y2.shape == y1.shape
    assert rel_err(y2, y1) <= tol
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    assert rel_err(x2.grad, x1.grad) <= tol
    p_ref, p_new = dict(ref.named_parameters()), dict(new.named_parameters())
    assert p_ref.keys() == p_new.keys()
    for k in p_ref:
        if p_ref[k].grad is None:
            assert p_new[k].grad is None, k
        else:
            assert rel_err(p_new[k].grad, p_ref[k].grad) <= tol, k


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(s=conv_settings())
def test_gemm_conv_equals_nn_conv2d(device, dtype, tol, s):
    torch.manual_seed(s["seed"])
    ref = nn.Conv2d(s["cin"], s["cout"], s["kernel_size"], stride=s["stride"],
                    padding=s["padding"], dilation=s["dilation"], groups=s["groups"],
                    bias=s["bias"], padding_mode=s["padding_mode"]).to(device, dtype)
    new = gemm.GemmConv2d.from_conv(copy.deepcopy(ref))
    assert isinstance(new, nn.Conv2d) and new.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(s["n"], s["cin"], s["h"], s["w"], device=device, dtype=dtype)
    check_same(ref, new, x, tol)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_functional_matches_and_handles_unbatched_input():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    w = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    assert rel_err(gemm.conv2d(x, w, padding="same"), F.conv2d(x, w, padding="same")) <= 1e-12
    with pytest.raises(ValueError, match="strided"):
        gemm.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="channels"):
        gemm.conv2d(x, torch.randn(4, 2, 2, 2, dtype=torch.float64))


def test_weight_gradient_only_when_input_needs_none():
    # The first layer of a network: no input gradient is asked for; weights still get theirs.
    conv = nn.Conv2d(2, 3, 3).double()
    new = gemm.GemmConv2d.from_conv(copy.deepcopy(conv))
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    conv(x).square().sum().backward()
    new(x).square().sum().backward()
    assert rel_err(new.weight.grad, conv.weight.grad) <= 1e-12
    assert rel_err(new.bias.grad, conv.bias.grad) <= 1e-12


def test_output_can_be_modified_in_place():
    # AlexNet and VGG follow each conv by ReLU(inplace=True): the output must not be a view.
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(inplace=True)).double()
    new = gemm.convert(copy.deepcopy(ref))
    check_same(ref, new, torch.randn(2, 2, 6, 6, dtype=torch.float64), 1e-12)


def test_from_conv_shares_parameters():
    conv = nn.Conv2d(2, 3, 3)
    new = gemm.GemmConv2d.from_conv(conv)
    assert new.weight is conv.weight and new.bias is conv.bias


def _zoo_cases():
    cases = [pytest.param("lenet5", (2, 1, 28, 28), id="lenet5"),
             pytest.param("lenet", (2, 3, 32, 32), id="lenet")]
    registered = set(list_models())
    if "resnet20" in registered:
        cases.append(pytest.param("resnet20", (2, 3, 32, 32), id="resnet20"))
    if "resnet18_cifar" in registered:  # 11M float64 parameters: seconds per pass on a CPU
        cases.append(pytest.param("resnet18_cifar", (2, 3, 32, 32), id="resnet18_cifar",
                                  marks=pytest.mark.slow))
    return cases


@pytest.mark.parametrize("name, shape", _zoo_cases())
def test_converted_zoo_model_gives_same_outputs_and_gradients(name, shape):
    torch.manual_seed(0)
    ref = create_model(name, in_chans=shape[1]).double()
    new = gemm.convert(copy.deepcopy(ref))
    n_conv = sum(type(m) is nn.Conv2d for m in ref.modules())
    assert n_conv > 0
    assert sum(isinstance(m, gemm.GemmConv2d) for m in new.modules()) == n_conv
    assert not any(type(m) is nn.Conv2d for m in new.modules())
    assert list(new.state_dict()) == list(ref.state_dict())
    x = torch.randn(*shape, dtype=torch.float64)
    check_same(ref, new, x, 1e-10)  # training mode: batch norm uses batch statistics
    ref.eval()
    new.eval()
    assert rel_err(new(x), ref(x)) <= 1e-10


def test_convert_keeps_optimizer_parameters_and_a_conv_itself():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    before = [id(p) for p in model.parameters()]
    assert gemm.convert(model) is model
    assert [id(p) for p in model.parameters()] == before
    single = gemm.convert(nn.Conv2d(1, 2, 3))
    assert isinstance(single, gemm.GemmConv2d)
