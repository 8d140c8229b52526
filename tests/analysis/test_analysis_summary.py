"""summary: MACs from torch's flop counter, receptive fields, totals against published figures."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from convzoo import ConvzooError, list_models, model_info
from convzoo.analysis.summary import parse_input_size, summarize
from convzoo.cli import main

# torchvision 0.29 "GFLOPS" (= MACs) at 224 (299 for inception_v3), ../shared/REFERENCES.md.
PUBLISHED_GMACS = {
    "alexnet": 0.714, "vgg11": 7.609, "vgg11_bn": 7.609, "vgg13": 11.308, "vgg13_bn": 11.308,
    "vgg16": 15.470, "vgg16_bn": 15.470, "vgg19": 19.632, "vgg19_bn": 19.632,
    "googlenet": 1.498, "inception_v3": 5.713, "resnet18": 1.814, "resnet34": 3.664,
    "resnet50": 4.089, "resnet101": 7.801, "resnet152": 11.514, "densenet121": 2.834,
    "densenet161": 7.728, "densenet169": 3.360, "densenet201": 4.291,
}
PUBLISHED_PARAMS = {"alexnet": 61_100_840, "vgg16": 138_357_544, "googlenet": 6_624_904,
                    "inception_v3": 23_834_568, "resnet18": 11_689_512, "resnet50": 25_557_032,
                    "densenet121": 7_978_856}


def _side(tv_name: str) -> int:
    return 299 if tv_name == "inception_v3" else 224


# One of each family by default; the heavier ones (more Python-dispatched ops) are slow.
FAST = {"alexnet", "vgg11", "vgg16", "googlenet", "inception_v3", "resnet18", "resnet50",
        "densenet121"}
FAST_TV = {"alexnet", "vgg16", "googlenet", "resnet18"}


def _params(names, fast):
    return [pytest.param(n, marks=() if n in fast else pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _params(sorted(PUBLISHED_PARAMS), FAST_TV))
def test_torchvision_builders_match_published_gmacs(name):
    kwargs = {"aux_logits": False, "init_weights": False} if name in (
        "googlenet", "inception_v3") else {}
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(**kwargs)
    s = summarize(model, (3, _side(name), _side(name)))
    assert s.macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.02)
    assert s.params == PUBLISHED_PARAMS[name]
    assert sum(r.params for r in s.rows) == s.params


REGISTERED_IMAGENET = [n for n in list_models()
                       if model_info(n).torchvision_name in PUBLISHED_GMACS]
FAST_REGISTERED = {n for n in REGISTERED_IMAGENET if model_info(n).torchvision_name in FAST}


@pytest.mark.parametrize("name", _params(REGISTERED_IMAGENET, FAST_REGISTERED))
def test_registered_imagenet_forms_match_published_gmacs(name):
    tv = model_info(name).torchvision_name
    s = summarize(name, (3, _side(tv), _side(tv)))
    assert s.macs / 1e9 == pytest.approx(PUBLISHED_GMACS[tv], rel=0.02)


def test_lenet5_macs_by_hand():
    # LeNet-5 on a 28x28 digit padded to 32x32: C1 6x28x28 outputs of a 1x5x5 window, C3
    # 16x10x10 of 6x5x5, then fully connected 400-120-84-10.
    c1, c3 = 6 * 28 * 28 * 25, 16 * 10 * 10 * 6 * 25
    fc = 400 * 120 + 120 * 84 + 84 * 10
    s = summarize("lenet5")
    assert s.macs == c1 + c3 + fc == 416_520
    assert s.flops == 2 * s.macs
    assert s.params == 61_706
    convs = [r for r in s.rows if r.type == "Conv2d"]
    assert [r.macs for r in convs] == [c1, c3]
    assert convs[1].output_shape == [1, 16, 10, 10]
    assert convs[0].act_bytes == 6 * 28 * 28 * 4
    # The receptive field of LeNet's output covers its 32x32 (padded) input exactly.
    assert s.rf == [32, 32]


def test_lenet_and_batch_scale():
    s1, s4 = summarize("lenet"), summarize("lenet", batch_size=4)
    assert s1.params == 62_006 and s4.macs == 4 * s1.macs


def test_receptive_field_of_a_simple_stack_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # r = 3, j = 1
        nn.Conv2d(4, 4, 3, stride=2),  # r = 3 + 2*1 = 5, j = 2
        nn.MaxPool2d(2),  # r = 5 + 1*2 = 7, j = 4
        nn.Conv2d(4, 4, 3, dilation=2, padding=2),  # effective k 5: r = 7 + 4*4 = 23, j = 4
        nn.AvgPool2d(3, stride=1),  # r = 23 + 2*4 = 31, j = 4
        nn.ReLU(),
    )
    s = summarize(net, (3, 64, 64))
    rows = {r.name: r for r in s.rows}
    assert [rows[k].rf[0] for k in ("0", "1", "2", "3", "4", "5")] == [3, 5, 7, 23, 31, 31]
    assert [rows[k].jump[0] for k in ("0", "1", "2", "3", "4")] == [1, 2, 4, 4, 4]
    # The field's centre (Araujo et al. eq. 7-8): c + (d (k - 1) / 2 - p) * j, from c = 0.
    # 0 + (1 - 1) 1 = 0; 0 + (1 - 0) 1 = 1; 1 + (0.5 - 0) 2 = 2; 2 + (2 - 2) 4 = 2; 2 + 1 * 4.
    assert [rows[k].centre[0] for k in ("0", "1", "2", "3", "4")] == [0, 1, 2, 2, 6]
    # LeNet-5's F.pad moves it: conv2's output (0, 0) looks at the digit around pixel 4.5, 4.5.
    lenet = {r.name: r for r in summarize("lenet5").rows}
    assert lenet["pad"].centre == [-2, -2] and lenet["features.0"].centre == [0, 0]
    assert lenet["features.3"].centre == [4.5, 4.5] and lenet["features.3"].jump == [2, 2]


class _TwoPaths(nn.Module):
    """A 1x1 path and a 3x3-3x3 path concatenated: the larger (5) wins; then 1x7 is anisotropic."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 1)
        self.b1 = nn.Conv2d(1, 2, 3, padding=1)
        self.b2 = nn.Conv2d(2, 2, 3, padding=1)
        self.c = nn.Conv2d(4, 1, (1, 7), padding=(0, 3))
        self.fc = nn.Linear(16 * 16, 3)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b2(self.b1(x))], 1)
        y = self.c(y) + 0.5
        return self.fc(y.flatten(1))


def test_receptive_field_takes_the_largest_path():
    s = summarize(_TwoPaths(), (1, 16, 16))
    rows = {r.name: r for r in s.rows}
    assert rows["a"].rf == [1, 1] and rows["b2"].rf == [5, 5]
    assert rows["c"].rf == [5, 11]  # (H, W): 1x7 widens only W
    # A fully connected layer over a 16x16 map at jump 1 sees 15 more pixels each way.
    assert rows["fc"].rf == [20, 26]


class _FunctionalHead(nn.Module):
    """A fully connected layer written as ``F.linear`` in ``forward``, after a module."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.w = nn.Parameter(torch.randn(5, 2 * 6 * 6))

    def forward(self, x):
        return torch.nn.functional.linear(torch.flatten(self.conv(x), 1), self.w)


def test_every_operation_in_forward_is_a_row():
    # LeNet-5 pads its 28x28 digit to 32x32 in forward (F.pad): the first row says so.
    pad = summarize("lenet5").rows[0]
    assert (pad.name, pad.type, pad.output_shape, pad.functional) == ("pad", "F.pad",
                                                                      [1, 1, 32, 32], True)
    # A residual block's `out += identity`, between its bn2 and its last ReLU; no memory of its own.
    rows = summarize("resnet20").rows
    names = [r.name for r in rows]
    add = rows[names.index("layer1.0.add")]
    assert names[names.index("layer1.0.add") - 1] == "layer1.0.bn2"
    assert (add.type, add.output_shape, add.act_bytes, add.rf) == ("Tensor.add_",
                                                                   [1, 16, 32, 32], 0, [7, 7])
    assert sum(r.type == "Tensor.add_" for r in rows) == 9 and "flatten" in names
    # Inception modules concatenate their four branches; DenseNet layers their inputs.
    g = summarize("googlenet")
    cat = next(r for r in g.rows if r.name == "inception3a.cat")
    assert cat.type == "torch.cat" and cat.output_shape == [1, 256, 28, 28]
    assert sum(r.type == "F.relu" for r in g.rows) == 57  # BasicConv2d's functional ReLU
    d = summarize("densenet121")
    assert sum(r.type == "torch.cat" for r in d.rows) == 62
    # A functional op's multiply-adds are its own row's; none are left over.
    s = summarize(_FunctionalHead(), (1, 8, 8))
    assert [(r.name, r.type, r.macs) for r in s.rows] == [
        ("conv", "Conv2d", 2 * 6 * 6 * 9), ("flatten", "torch.flatten", 0),
        ("linear", "F.linear", 5 * 72)]
    assert sum(r.macs for r in s.rows) == s.macs


def test_input_smaller_than_minimum_names_it():
    with pytest.raises(ConvzooError, match="28x28"):
        summarize("lenet5", (1, 20, 20))


def test_parse_input_size():
    assert parse_input_size("3x224x224") == (3, 224, 224)
    assert parse_input_size("64", 1) == (1, 64, 64)
    with pytest.raises(ConvzooError, match="CxHxW"):
        parse_input_size("big")


def test_cli_summary_json_and_errors(capsys):
    assert main(["summary", "lenet5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"] == 61_706 and d["macs"] == 416_520 and len(d["rows"]) == 13  # F.pad
    assert main(["summary", "lenet5"]) == 0
    assert "416,520" in capsys.readouterr().out
    assert main(["summary", "lenet5", "--input", "1x8x8"]) == 2
    assert "minimum input size is 28x28" in capsys.readouterr().err


def test_depth_rows_sum_to_the_blocks(capsys):
    s = summarize("resnet18")
    rows = s.rows_at_depth(1)
    assert [r.name for r in rows] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                      "layer3", "layer4", "avgpool", "flatten", "fc"]
    assert sum(r.params for r in rows) == s.params and sum(r.macs for r in rows) == s.macs
    layer1 = rows[4]
    assert layer1.type == "Sequential" and layer1.output_shape == [1, 64, 56, 56]
    assert layer1.params == sum(p.numel() for p in torchvision.models.resnet18().layer1
                                .parameters())
    assert [r.name for r in s.rows_at_depth(2)][4:7] == ["layer1.0", "layer1.1", "layer2.0"]
    # The Inception modules concatenate in forward: a block's output is its own, not a branch's.
    inc = next(r for r in summarize("googlenet").rows_at_depth(1) if r.name == "inception3a")
    assert inc.output_shape == [1, 256, 28, 28]
    assert main(["summary", "googlenet", "--depth", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) < 30
    assert main(["summary", "lenet5", "--depth", "0"]) == 2


def test_notes_where_torchvision_departs_from_the_paper(capsys):
    assert main(["summary", "googlenet", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert '"5x5" branch is a 3x3' in out
    assert "6,624,904 without" in out and "13,004,888 with" in out
    notes = summarize("inception_v3").notes
    assert any("23,834,568 without" in n and "27,161,264 with" in n for n in notes)
    assert summarize("resnet20").notes == []
